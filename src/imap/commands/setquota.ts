import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';

/**
 * SETQUOTA (RFC 9208 §4.1): refused. Limits are the operator's (the `quota` configuration), so QUOTASET is not
 * advertised; the arguments are still checked.
 */
export default defineCommand({
  name: 'SETQUOTA',
  states: AUTHENTICATED,
  parse: (args) => ({ root: args.text('quota root'), resources: args.list('resource limits') }),
  async run() {
    throw new ImapError('NO', 'Quotas are set by the operator', 'NOPERM');
  },
});
