import type { AppendedMessage } from '../../store/types.js';
import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { parseDateTime } from '../datetime.js';
import { parseFlagTokens } from '../flags.js';
import { folderName } from '../folders.js';
import { UTF8_ACCEPT } from '../modes.js';
import { checkQuota } from '../quota.js';
import { formatUidSet } from '../sequence.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * APPEND (RFC 3501 §6.3.11) and MULTIAPPEND (RFC 3502): one or more messages, each with its optional flags and
 * date, stored all or none in one unit of work; the OK (with APPENDUID, RFC 4315, naming every UID) is sent only
 * after the commit. Each literal's size was checked against `maxLiteralSize` before its bytes were read, and the
 * literals of one command together may not pass it by more than a line (the command is held in memory whole).
 * A message may be a literal8 (`~{n}`, RFC 3516 §4.4), and, once the client enabled UTF8=ACCEPT, `UTF8 (literal)`
 * (RFC 6855 §4: a message with UTF-8 headers); before that, UTF8 gets BAD.
 */

export interface AppendMessageArgs {
  flags: string[];
  internalDate: number | undefined;
  message: Buffer;
  /** Sent as `UTF8 (…)`. */
  utf8: boolean;
}

function messageData(args: Args): { message: Buffer; utf8: boolean } {
  const t = args.token('message literal');
  if (t.type === 'string' || t.type === 'literal8') return { message: t.value, utf8: false };
  if (t.type === 'atom' && !t.section && t.value.toUpperCase() === 'UTF8') {
    const [inner, extra] = args.list('UTF8 message');
    if (!inner || extra || !(inner.type === 'literal8' || (inner.type === 'string' && inner.literal))) {
      throw new ImapSyntaxError('UTF8 takes one literal in parentheses');
    }
    return { message: inner.value, utf8: true };
  }
  throw new ImapSyntaxError('Expected message literal');
}

function parseOne(args: Args): AppendMessageArgs {
  const maybeFlags = args.peek();
  const flags = maybeFlags?.type === 'list' ? parseFlagTokens(args.list('flags')) : [];
  let internalDate: number | undefined;
  // A date-time is a quoted string followed by the message; the message itself is a literal.
  const next = args.peek();
  if (next?.type === 'string' && args.remaining > 1 && !next.literal) {
    const date = parseDateTime(args.string('date-time').toString('latin1'));
    if (date === null) throw new ImapSyntaxError('Invalid date-time');
    internalDate = date;
  }
  return { flags, internalDate, ...messageData(args) };
}

export function parseAppend(args: Args): { mailbox: string; messages: AppendMessageArgs[] } {
  const mailbox = args.text('mailbox name');
  const messages = [parseOne(args)];
  while (args.remaining > 0) messages.push(parseOne(args));
  return { mailbox, messages };
}

export default defineCommand({
  name: 'APPEND',
  states: AUTHENTICATED,
  literal: 'message',
  parse: parseAppend,
  async run(session, { mailbox, messages }) {
    const user = session.user!;
    const { store, mail, notifier } = session.deps;
    if (messages.some((m) => m.utf8) && !session.enabled.has(UTF8_ACCEPT)) throw new ImapError('BAD', 'APPEND UTF8 needs ENABLE UTF8=ACCEPT first');
    const folder = await store.getFolder(user.id, folderName(session, mailbox));
    if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'TRYCREATE');
    if (messages.some((m) => m.message.length === 0)) throw new ImapError('NO', 'An empty message can not be stored');
    const appended = await store.transaction(async (tx) => {
      await checkQuota(session, tx, { messages: messages.length, bytes: messages.reduce((n, m) => n + m.message.length, 0) });
      const out: AppendedMessage[] = [];
      for (const { flags, internalDate, message } of messages) {
        out.push(await mail.append(tx, user, folder, message, internalDate === undefined ? { flags } : { flags, internalDate }));
      }
      return out;
    });
    for (const a of appended) notifier.publish({ kind: 'exists', mailboxId: user.id, folderId: folder.id, uid: a.uid, modseq: a.modseq });
    const uids = formatUidSet(appended.map((a) => a.uid));
    return { code: `APPENDUID ${appended[0]!.uidValidity} ${uids}`, text: 'APPEND completed' };
  },
});
