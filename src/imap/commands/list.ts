import type { Args } from '../args.js';
import { AUTHENTICATED, defineCommand, type SessionApi } from '../command.js';
import { mailboxValue } from '../folders.js';
import { listFolders, type ListEntry } from '../list-folders.js';
import { DELIMITER, nameFromWire } from '../mailbox-name.js';
import { isRev2, utf8Names } from '../modes.js';
import { atom, untagged, type Value } from '../serializer.js';
import { ImapSyntaxError, type Token } from '../tokenizer.js';
import { parseStatusItems, sendStatus, type StatusItem } from './status.js';

/**
 * LIST (RFC 9051 §6.3.9) with `*`/`%`, special-use and children attributes (RFC 6154, RFC 3348), and its
 * extended form (RFC 5258 LIST-EXTENDED: selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE;
 * return options SUBSCRIBED, CHILDREN, SPECIAL-USE, and STATUS of RFC 5819 LIST-STATUS). Names that exist only
 * as parents of deeper folders are `\NonExistent` in the extended form and in IMAP4rev2 sessions (whose LIST is
 * the extended one), `\Noselect` in a plain IMAP4rev1 LIST.
 */

export interface ListArgs {
  reference: string;
  patterns: string[];
  select: { subscribed: boolean; recursive: boolean; specialUse: boolean };
  returns: { subscribed: boolean; status: StatusItem[] | null };
  extended: boolean;
}

function word(t: Token | undefined): string | null {
  return t?.type === 'atom' && !t.section ? t.value.toUpperCase() : null;
}

function text(t: Token): string {
  if (t.type === 'string') return t.value.toString('utf8');
  if (t.type === 'atom' && !t.section) return t.value;
  throw new ImapSyntaxError('Expected a mailbox pattern');
}

export function parseList(args: Args): ListArgs {
  const select = { subscribed: false, recursive: false, specialUse: false };
  let extended = false;
  if (args.peek()?.type === 'list') {
    extended = true;
    for (const t of args.list('selection options')) {
      const name = word(t);
      if (name === 'SUBSCRIBED') select.subscribed = true;
      else if (name === 'RECURSIVEMATCH') select.recursive = true;
      else if (name === 'SPECIAL-USE') select.specialUse = true;
      else if (name !== 'REMOTE') throw new ImapSyntaxError('Unsupported selection option');
    }
    if (select.recursive && !select.subscribed && !select.specialUse) throw new ImapSyntaxError('RECURSIVEMATCH needs another selection option');
  }
  const reference = args.text('reference');
  const patternToken = args.token('mailbox pattern');
  const patterns = patternToken.type === 'list' ? patternToken.items.map(text) : [text(patternToken)];
  if (patternToken.type === 'list') extended = true;
  if (patterns.length === 0) throw new ImapSyntaxError('Empty pattern list');
  const returns: ListArgs['returns'] = { subscribed: false, status: null };
  if (args.remaining > 0) {
    if (word(args.token('RETURN')) !== 'RETURN') throw new ImapSyntaxError('Expected RETURN');
    extended = true;
    const options = args.list('return options');
    for (let i = 0; i < options.length; i++) {
      const name = word(options[i]);
      if (name === 'SUBSCRIBED') returns.subscribed = true;
      else if (name === 'STATUS') {
        const items = options[++i];
        if (items?.type !== 'list') throw new ImapSyntaxError('STATUS needs a list of items');
        returns.status = parseStatusItems(items.items);
      } else if (name !== 'CHILDREN' && name !== 'SPECIAL-USE') throw new ImapSyntaxError('Unsupported return option');
    }
  }
  return { reference, patterns, select, returns, extended };
}

export async function runList(session: SessionApi, kind: 'LIST' | 'LSUB', reference: string, pattern: string): Promise<void> {
  if (pattern === '' && kind === 'LIST') {
    await session.send(untagged([atom('LIST'), [atom('\\Noselect')], DELIMITER, '']));
    return;
  }
  const folders = await session.deps.store.listFolders(session.user!.id);
  const utf8 = utf8Names(session);
  const missing = isRev2(session) && kind === 'LIST' ? '\\NonExistent' : '\\Noselect';
  for (const entry of listFolders(folders, nameFromWire(reference, utf8), nameFromWire(pattern, utf8), kind === 'LSUB', missing)) {
    await session.send(untagged([atom(kind), entry.attributes.map(atom), DELIMITER, mailboxValue(session, entry.name)]));
  }
}

async function runExtendedList(session: SessionApi, { reference, patterns, select, returns }: ListArgs): Promise<void> {
  const folders = await session.deps.store.listFolders(session.user!.id);
  const byName = new Map(folders.map((f) => [f.name, f]));
  const subscribedNames = folders.filter((f) => f.subscribed).map((f) => f.name);
  const seen = new Set<string>();
  const entries: ListEntry[] = [];
  const utf8 = utf8Names(session);
  for (const pattern of patterns) {
    for (const entry of listFolders(folders, nameFromWire(reference, utf8), nameFromWire(pattern, utf8), false, '\\NonExistent')) {
      if (!seen.has(entry.name)) {
        seen.add(entry.name);
        entries.push(entry);
      }
    }
  }
  for (const entry of entries) {
    const folder = byName.get(entry.name);
    const subscribed = folder?.subscribed ?? false;
    const childInfo = select.recursive && select.subscribed && !subscribed && subscribedNames.some((n) => n.startsWith(entry.name + DELIMITER));
    if (select.subscribed && !subscribed && !childInfo) continue;
    if (select.specialUse && !folder?.specialUse) continue;
    const attributes = [...entry.attributes];
    if ((select.subscribed || returns.subscribed) && subscribed) attributes.push('\\Subscribed');
    const line: Value[] = [atom('LIST'), attributes.map(atom), DELIMITER, mailboxValue(session, entry.name)];
    if (childInfo) line.push(['CHILDINFO', ['SUBSCRIBED']]);
    await session.send(untagged(line));
    if (returns.status && folder) await sendStatus(session, folder, returns.status);
  }
}

export default defineCommand({
  name: 'LIST',
  states: AUTHENTICATED,
  parse: parseList,
  async run(session, args) {
    if (args.extended) await runExtendedList(session, args);
    else await runList(session, 'LIST', args.reference, args.patterns[0]!);
    return { text: 'LIST completed' };
  },
});
