import { describe, expect, it } from 'vitest';
import { listFolders } from '../../src/imap/list-folders.js';
import { canonicalName, decodeMailboxName, encodeMailboxName, listMatcher } from '../../src/imap/mailbox-name.js';
import { extractSection, findPart, parseSection } from '../../src/imap/sections.js';
import { tokenize } from '../../src/imap/tokenizer.js';
import { parseMime } from '../../src/mime/structure.js';
import type { FolderRow } from '../../src/store/types.js';

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const section = (spec: string) => {
  const [token] = tokenize([Buffer.from(`BODY[${spec}]`)], 0);
  if (token?.type !== 'atom' || !token.section) throw new Error('no section');
  return parseSection(token.section);
};

describe('part numbering', () => {
  const raw = crlf(
    [
      'Subject: outer',
      'Content-Type: multipart/mixed; boundary=o',
      '',
      '--o',
      '',
      'part one',
      '--o',
      'Content-Type: message/rfc822',
      '',
      'Subject: inner',
      'Content-Type: multipart/alternative; boundary=i',
      '',
      '--i',
      '',
      'inner plain',
      '--i',
      'Content-Type: text/html',
      '',
      '<p>inner</p>',
      '--i--',
      '--o',
      'Content-Type: message/rfc822',
      '',
      'Subject: simple',
      '',
      'simple body',
      '--o--',
      '',
    ].join('\n'),
  );
  const root = parseMime(raw);
  const get = (spec: string) => extractSection(raw, root, section(spec))?.toString('utf8') ?? null;

  it('walks multiparts and enters message/rfc822 parts', () => {
    expect(get('1')).toBe('part one');
    expect(get('2.1')).toBe('inner plain');
    expect(get('2.2')).toBe('<p>inner</p>');
    expect(get('2.2.MIME')).toBe('Content-Type: text/html\r\n\r\n');
    expect(get('2.HEADER')).toBe('Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n');
    expect(get('2.HEADER.FIELDS (SUBJECT)')).toBe('Subject: inner\r\n\r\n');
    expect(get('2.TEXT')).toMatch(/^--i\r\n/);
    expect(get('2')).toMatch(/^Subject: inner\r\n/);
    expect(get('3.1')).toBe('simple body');
    expect(get('3.TEXT')).toBe('simple body');
  });

  it('answers null for parts that do not exist or sections that do not apply', () => {
    expect(get('4')).toBeNull();
    expect(get('1.1')).toBeNull();
    expect(get('1.HEADER')).toBeNull();
    expect(findPart(root, [2, 3])).toBeNull();
  });

  it('numbers the body of a single-part message as 1', () => {
    const single = crlf('Subject: s\n\nbody\n');
    expect(extractSection(single, parseMime(single), section('1'))?.toString()).toBe('body\r\n');
  });
});

describe('mailbox names', () => {
  it('round-trips modified UTF-7', () => {
    for (const name of ['INBOX', 'Envoyés', 'Comptes & rendus', '日本語/サブ', 'a&b']) {
      expect(decodeMailboxName(encodeMailboxName(name))).toBe(name);
    }
    expect(encodeMailboxName('Envoyés')).toBe('Envoy&AOk-s');
    expect(encodeMailboxName('a&b')).toBe('a&-b');
    expect(() => decodeMailboxName('&Jjo!-')).toThrow();
  });

  it('canonicalises INBOX and matches wildcards', () => {
    expect(canonicalName('inBox')).toBe('INBOX');
    expect(canonicalName('inbox/Sub')).toBe('INBOX/Sub');
    expect(listMatcher('%')('A/B')).toBe(false);
    expect(listMatcher('*')('A/B')).toBe(true);
    expect(listMatcher('A/%')('A/B')).toBe(true);
    expect(listMatcher('a.b')('axb')).toBe(false);
  });
});

describe('listFolders', () => {
  const folder = (id: number, name: string, specialUse: string | null = null, subscribed = true): FolderRow => ({
    id,
    mailboxId: 1,
    name,
    uidValidity: 1,
    uidNext: 1,
    highestModseq: 0,
    specialUse,
    subscribed,
  });
  const folders = [folder(1, 'INBOX'), folder(2, 'Sent', '\\Sent'), folder(3, 'Projets/2024/Q1', null, false), folder(4, 'Trash', '\\Trash')];

  it('lists with special-use and children attributes, INBOX first', () => {
    expect(listFolders(folders, '', '*', false)).toEqual([
      { name: 'INBOX', attributes: ['\\HasNoChildren'] },
      { name: 'Projets', attributes: ['\\Noselect', '\\HasChildren'] },
      { name: 'Projets/2024', attributes: ['\\Noselect', '\\HasChildren'] },
      { name: 'Projets/2024/Q1', attributes: ['\\HasNoChildren'] },
      { name: 'Sent', attributes: ['\\HasNoChildren', '\\Sent'] },
      { name: 'Trash', attributes: ['\\HasNoChildren', '\\Trash'] },
    ]);
  });

  it('applies % and the reference, and INBOX case-insensitively', () => {
    expect(listFolders(folders, '', '%', false).map((e) => e.name)).toEqual(['INBOX', 'Projets', 'Sent', 'Trash']);
    expect(listFolders(folders, 'Projets/', '%', false).map((e) => e.name)).toEqual(['Projets/2024']);
    expect(listFolders(folders, '', 'inbox', false).map((e) => e.name)).toEqual(['INBOX']);
  });

  it('marks names that are only parents \\NonExistent when asked (IMAP4rev2, LIST-EXTENDED)', () => {
    expect(listFolders(folders, 'Projets', '*', false, '\\NonExistent').map((e) => e.attributes)).toEqual([
      ['\\NonExistent', '\\HasChildren'],
      ['\\NonExistent', '\\HasChildren'],
      ['\\HasNoChildren'],
    ]);
  });

  it('lists subscribed folders only for LSUB', () => {
    expect(listFolders(folders, '', '*', true).map((e) => e.name)).toEqual(['INBOX', 'Sent', 'Trash']);
  });
});
