import { type AnyCommand, type Completion, ConnectionClosedError, ImapError, ResponseBrokenError, type SessionApi } from './command.js';
import { COMMANDS } from './commands/index.js';
import { MailboxNameError } from './mailbox-name.js';
import { reportMode } from './selected.js';
import type { CommandFrame } from './parser.js';
import { Args } from './args.js';
import { status } from './serializer.js';
import { ImapSyntaxError, tokenize } from './tokenizer.js';

/**
 * Runs one command frame: finds its spec, checks the session state, parses the arguments with the spec's
 * grammar, reports pending mailbox changes, runs the handler, reports changes again, and writes the tagged
 * response. Returns the status sent, so the session can count BADs.
 */

export function findCommand(name: string): AnyCommand | undefined {
  return COMMANDS.get(name);
}

/** Why a command is not valid in the session's state, from the states it needs. */
export function stateText(spec: AnyCommand, state: SessionApi['state']): string {
  if (state === 'not-authenticated') return 'Log in first';
  if (spec.states.includes('not-authenticated')) return 'Already logged in';
  if (state === 'selected' && spec.states.includes('authenticated')) return 'Not valid while a mailbox is selected';
  if (spec.states.includes('authenticated')) return 'Log in first';
  return 'No mailbox selected';
}

async function flushUpdates(session: SessionApi, spec: AnyCommand): Promise<void> {
  if (session.selected && session.state === 'selected') {
    await session.selected.flush((data) => session.send(data), reportMode(session.enabled, spec.expungeAllowed !== false));
  }
}

export async function dispatch(session: SessionApi, frame: CommandFrame): Promise<'OK' | 'NO' | 'BAD'> {
  const { tag } = frame;
  const spec = findCommand(frame.command);
  const reply = async (kind: 'OK' | 'NO' | 'BAD', text: string, code?: string) => {
    await session.send(status(tag, kind, text, code));
    return kind;
  };
  if (!spec) return reply('BAD', frame.command ? 'Unknown command' : 'Missing command');
  if (!spec.states.includes(session.state)) return reply('BAD', stateText(spec, session.state));
  let args: unknown;
  try {
    const reader = new Args(tokenize(frame.segments, frame.argsOffset));
    args = spec.parse(reader);
    reader.end();
  } catch (err) {
    if (err instanceof ImapSyntaxError || err instanceof MailboxNameError) return reply('BAD', `${spec.name}: ${err.message}`);
    throw err;
  }
  // Changes by other sessions are reported before the command runs (so its message numbers include
  // them) and again after it, never in the middle of its responses.
  await flushUpdates(session, spec);
  let result: { status: 'OK' | 'NO' | 'BAD'; completion: Completion };
  try {
    result = { status: 'OK', completion: await spec.run(session, args, tag) };
  } catch (err) {
    if (err instanceof ConnectionClosedError || err instanceof ResponseBrokenError) throw err;
    if (err instanceof ImapError) result = { status: err.status, completion: { text: err.message, ...(err.code ? { code: err.code } : {}) } };
    else if (err instanceof MailboxNameError) result = { status: 'BAD', completion: { text: err.message } };
    else {
      session.log.error({ err, tag, command: spec.name }, 'IMAP command failed');
      result = { status: 'NO', completion: { text: 'Internal error; the command was not completed', code: 'SERVERBUG' } };
    }
  }
  await flushUpdates(session, spec);
  await reply(result.status, result.completion.text, result.completion.code);
  if (result.status === 'OK' && result.completion.after) await result.completion.after();
  return result.status;
}
