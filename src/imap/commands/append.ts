import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { parseDateTime } from '../datetime.js';
import { parseFlagTokens } from '../flags.js';
import { canonicalName, decodeMailboxName } from '../mailbox-name.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * APPEND (RFC 3501 §6.3.11): the OK (with APPENDUID, RFC 4315) is sent only after the message is committed.
 * The literal's size was checked against `maxLiteralSize` before its bytes were read.
 */
export default defineCommand({
  name: 'APPEND',
  states: AUTHENTICATED,
  literal: 'message',
  parse: (args) => {
    const mailbox = args.text('mailbox name');
    const maybeFlags = args.peek();
    const flags = maybeFlags?.type === 'list' ? parseFlagTokens(args.list('flags')) : [];
    let internalDate: number | undefined;
    if (args.remaining > 1) {
      const date = parseDateTime(args.string('date-time').toString('latin1'));
      if (date === null) throw new ImapSyntaxError('Invalid date-time');
      internalDate = date;
    }
    return { mailbox, flags, internalDate, message: args.string('message literal') };
  },
  async run(session, { mailbox, flags, internalDate, message }) {
    const user = session.user!;
    const { store, mail, notifier } = session.deps;
    const folder = await store.getFolder(user.id, canonicalName(decodeMailboxName(mailbox)));
    if (!folder) throw new ImapError('NO', 'Mailbox does not exist', 'TRYCREATE');
    if (message.length === 0) throw new ImapError('NO', 'An empty message can not be stored');
    const appended = await store.transaction((tx) =>
      mail.append(tx, user, folder, message, internalDate === undefined ? { flags } : { flags, internalDate }),
    );
    notifier.publish({ kind: 'exists', mailboxId: user.id, folderId: folder.id, uid: appended.uid, modseq: appended.modseq });
    return { code: `APPENDUID ${appended.uidValidity} ${appended.uid}`, text: 'APPEND completed' };
  },
});
