import { AUTHENTICATED, defineCommand } from '../command.js';
import { DELIMITER } from '../mailbox-name.js';
import { atom, untagged } from '../serializer.js';

/** NAMESPACE (RFC 2342): one personal namespace, no shared ones. */
export default defineCommand({
  name: 'NAMESPACE',
  states: AUTHENTICATED,
  parse: () => null,
  async run(session) {
    await session.send(untagged([atom('NAMESPACE'), [['', DELIMITER]], null, null]));
    return { text: 'NAMESPACE completed' };
  },
});
