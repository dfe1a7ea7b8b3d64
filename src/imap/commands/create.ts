import { appendAudit } from '../../audit/journal.js';
import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, ImapError } from '../command.js';
import { checkFolderLimit, superiorNames, validNewName } from '../folders.js';
import { ImapSyntaxError } from '../tokenizer.js';

/**
 * CREATE (RFC 9051 §6.3.4) with CREATE-SPECIAL-USE (RFC 6154 §3: `CREATE name (USE (\Sent))`). Missing superior
 * levels are created too (`a/b` creates `a`); a trailing `/` is dropped. New folders are subscribed. A folder
 * has at most one special use, one a real folder can hold (\All and \Flagged are virtual views here): anything
 * else gets NO [USE] and nothing is created. Limits: `maxFolders`, `maxMailboxNameLength`.
 */

/** The special uses a created folder may take, in their canonical spelling. */
export const CREATABLE_USES = ['\\Archive', '\\Drafts', '\\Junk', '\\Sent', '\\Trash'] as const;

export interface CreateArgs {
  mailbox: string;
  /** The USE attributes as written (`\sent`), empty when none were given. */
  uses: string[];
}

export function parseCreate(args: Args): CreateArgs {
  const mailbox = args.text('mailbox name');
  const uses: string[] = [];
  if (args.remaining > 0) {
    const params = args.list('create parameters');
    for (let i = 0; i < params.length; i++) {
      const name = params[i];
      const value = params[i + 1];
      if (name?.type !== 'atom' || name.section || name.value.toUpperCase() !== 'USE' || value?.type !== 'list') {
        throw new ImapSyntaxError('Unsupported create parameter');
      }
      for (const t of value.items) {
        if (t.type !== 'atom' || t.section || !t.value.startsWith('\\')) throw new ImapSyntaxError('USE needs special-use attributes');
        uses.push(t.value);
      }
      i++;
    }
  }
  return { mailbox, uses };
}

function specialUse(uses: readonly string[]): string | null {
  const distinct = [...new Set(uses.map((u) => u.toLowerCase()))];
  if (distinct.length === 0) return null;
  if (distinct.length > 1) throw new ImapError('NO', 'A mailbox can have only one special use here', 'USE');
  const use = CREATABLE_USES.find((u) => u.toLowerCase() === distinct[0]);
  if (!use) throw new ImapError('NO', `Special use ${uses[0]!.slice(0, 40)} is not supported`, 'USE');
  return use;
}

export default defineCommand({
  name: 'CREATE',
  states: AUTHENTICATED,
  parse: parseCreate,
  async run(session, { mailbox, uses }) {
    const user = session.user!;
    const name = validNewName(session, mailbox);
    const use = specialUse(uses);
    await session.deps.store.transaction(async (tx) => {
      if (await tx.getFolder(user.id, name)) throw new ImapError('NO', 'Mailbox already exists', 'ALREADYEXISTS');
      const missing: string[] = [];
      for (const parent of superiorNames(name)) if (!(await tx.getFolder(user.id, parent))) missing.push(parent);
      await checkFolderLimit(session, tx, missing.length + 1);
      for (const folder of missing) await tx.insertFolder({ mailboxId: user.id, name: folder, specialUse: null, subscribed: true });
      await tx.insertFolder({ mailboxId: user.id, name, specialUse: use, subscribed: true });
      await appendAudit(tx, {
        actor: user.address,
        action: 'folder-create',
        object: user.address,
        outcome: 'ok',
        detail: { protocol: 'imap', folder: name, created: missing.length + 1, ...(use ? { specialUse: use } : {}) },
      });
    });
    return { text: 'CREATE completed' };
  },
});
