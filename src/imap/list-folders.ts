import type { FolderRow } from '../store/types.js';
import { canonicalName, DELIMITER, listMatcher } from './mailbox-name.js';

/**
 * LIST / LSUB selection (RFC 3501 §6.3.8-9, RFC 9051 §6.3.9, RFC 6154 special-use attributes). Pure. Names that
 * exist only as a prefix of deeper folders are listed too, so that `%` walks the hierarchy: as `\Noselect`
 * (IMAP4rev1 LIST) or `\NonExistent` (IMAP4rev2 and LIST-EXTENDED, RFC 5258 §3: it implies \Noselect).
 */

export interface ListEntry {
  name: string;
  attributes: string[];
}

export type MissingAttribute = '\\Noselect' | '\\NonExistent';

/** The attributes LIST gives an existing folder: children (RFC 3348) and special use (RFC 6154). */
export function folderAttributes(folders: readonly FolderRow[], folder: FolderRow): string[] {
  const children = folders.some((f) => f.name.startsWith(folder.name + DELIMITER));
  return [children ? '\\HasChildren' : '\\HasNoChildren', ...(folder.specialUse ? [folder.specialUse] : [])];
}

export function listFolders(
  folders: readonly FolderRow[],
  reference: string,
  pattern: string,
  subscribedOnly: boolean,
  missing: MissingAttribute = '\\Noselect',
): ListEntry[] {
  const candidates = folders.filter((f) => !subscribedOnly || f.subscribed);
  const real = new Map(candidates.map((f) => [f.name, f]));
  const names = new Set(real.keys());
  for (const name of real.keys()) {
    const parts = name.split(DELIMITER);
    for (let i = 1; i < parts.length; i++) names.add(parts.slice(0, i).join(DELIMITER));
  }
  const allNames = new Set(folders.map((f) => f.name));
  const hasChildren = (name: string) => [...allNames].some((n) => n.startsWith(name + DELIMITER));
  const matches = listMatcher(reference + pattern);
  const selected = [...names].filter((name) => matches(canonicalName(name)));
  selected.sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  return selected.map((name) => {
    const folder = real.get(name);
    const attributes: string[] = [];
    if (!folder) attributes.push(missing);
    if (!subscribedOnly) {
      attributes.push(hasChildren(name) ? '\\HasChildren' : '\\HasNoChildren');
      if (folder?.specialUse) attributes.push(folder.specialUse);
    }
    return { name, attributes };
  });
}
