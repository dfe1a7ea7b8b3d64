import { ANY_STATE, defineCommand } from '../command.js';
import { atom, untagged } from '../serializer.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * ID (RFC 2971): the client's fields are checked against the RFC's bounds and otherwise ignored (not logged:
 * they can name the user's device); the server answers with its name only.
 */
export default defineCommand({
  name: 'ID',
  states: ANY_STATE,
  parse: (args) => {
    const t = args.token('ID parameters');
    if (t.type === 'atom' && !t.section && t.value.toUpperCase() === 'NIL') return null;
    if (t.type !== 'list') throw new ImapSyntaxError('Expected NIL or a list of field-value pairs');
    if (t.items.length % 2 !== 0 || t.items.length > 60) throw new ImapSyntaxError('Expected at most 30 field-value pairs');
    t.items.forEach((item, i) => {
      const nil = item.type === 'atom' && !item.section && item.value.toUpperCase() === 'NIL';
      if (item.type !== 'string' && !(nil && i % 2 === 1)) throw new ImapSyntaxError('ID fields and values are strings');
      if (item.type === 'string' && item.value.length > (i % 2 === 0 ? 30 : 1024)) throw new ImapSyntaxError('ID field or value too long');
    });
    return null;
  },
  async run(session) {
    await session.send(untagged([atom('ID'), ['name', 'mss']]));
    return { text: 'ID completed' };
  },
});
