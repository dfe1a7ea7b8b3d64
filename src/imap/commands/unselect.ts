import { defineCommand, SELECTED } from '../command.js';

/** UNSELECT (RFC 3691): leaves the selected state without expunging. */
export default defineCommand({
  name: 'UNSELECT',
  states: SELECTED,
  parse: () => null,
  async run(session) {
    session.select(null);
    return { text: 'UNSELECT completed' };
  },
});
