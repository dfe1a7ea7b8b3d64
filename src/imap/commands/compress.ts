import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';

/**
 * COMPRESS DEFLATE (RFC 4978): after the tagged OK, both directions are raw DEFLATE (RFC 1951) until the
 * connection closes. Valid once logged in, so a password never goes through the compressor. A second COMPRESS
 * gets `NO [COMPRESSIONACTIVE]`.
 */
export default defineCommand({
  name: 'COMPRESS',
  states: AUTHENTICATED,
  parse: (args) => args.atom('compression mechanism').toUpperCase(),
  async run(session, mechanism) {
    if (mechanism !== 'DEFLATE') throw new ImapError('BAD', 'Unsupported compression mechanism');
    if (session.compressed) throw new ImapError('NO', 'DEFLATE is already active', 'COMPRESSIONACTIVE');
    return { text: 'DEFLATE active', after: async () => session.startCompression() };
  },
});
