import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { reportMode } from '../selected.js';

/**
 * IDLE (RFC 2177): while idling, changes made by other sessions to the selected folder (EXISTS, EXPUNGE,
 * FETCH FLAGS; VANISHED with QRESYNC) are pushed as they are committed; `DONE` ends it. The authenticated idle timeout still
 * applies (clients re-issue IDLE well within 30 minutes).
 */
export default defineCommand({
  name: 'IDLE',
  states: AUTHENTICATED,
  parse: () => null,
  async run(session) {
    const line = await session.idle('idling', async () => {
      if (session.selected && session.state === 'selected') {
        await session.selected.flush((data) => session.send(data), reportMode(session.enabled));
      }
    });
    if (line === null || line.toString('latin1').toUpperCase() !== 'DONE') throw new ImapError('BAD', 'Expected DONE to end IDLE');
    return { text: 'IDLE terminated' };
  },
});
