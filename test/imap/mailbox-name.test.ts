import { describe, expect, it } from 'vitest';
import { encodeMailboxName, MailboxNameError, nameFromWire, nameOnWire, newFolderName } from '../../src/imap/mailbox-name.js';

/** Mailbox names on the wire: modified UTF-7 for IMAP4rev1 sessions, UTF-8 after UTF8=ACCEPT or IMAP4rev2. */

describe('mailbox names', () => {
  it('decodes modified UTF-7 and refuses 8-bit names before UTF-8 is enabled', () => {
    expect(nameFromWire('R&AOk-unions/&-', false)).toBe('Réunions/&');
    expect(() => nameFromWire('Réunions', false)).toThrow(MailboxNameError);
    expect(() => nameFromWire('&AOk', false)).not.toThrow(); // not a shift sequence: taken as written
    expect(() => nameFromWire('&A!-', false)).toThrow(/modified UTF-7/);
  });

  it('takes UTF-8 as written once enabled (& is an ordinary character), in normal form C', () => {
    expect(nameFromWire('R&AOk-unions', true)).toBe('R&AOk-unions');
    expect(nameFromWire('E\u0301changes', true)).toBe('\u00c9changes');
    expect(() => nameFromWire('bad\ufffd', true)).toThrow(/not valid UTF-8/);
  });

  it('writes names in the session encoding', () => {
    expect(nameOnWire('Échanges & co', false)).toBe('&AMk-changes &- co');
    expect(nameOnWire('Échanges & co', true)).toBe('Échanges & co');
    expect(encodeMailboxName('日本語')).toBe('&ZeVnLIqe-');
  });

  it('validates new names in either encoding', () => {
    expect(newFolderName('Réunions/Février/', 100, true)).toBe('Réunions/Février');
    expect(newFolderName('inbox/x', 100, true)).toBe('INBOX/x');
    expect(newFolderName('R&AOk-unions', 100, false)).toBe('Réunions');
    expect(() => newFolderName('Réunions', 100, false)).toThrow(/7-bit/);
    for (const bad of ['a\u2028b', 'a\u0085b', 'a\u0001b', 'a*', '%', 'a//b', ' a', '', 'é'.repeat(51)]) {
      expect(() => newFolderName(bad, 100, true), JSON.stringify(bad)).toThrow(MailboxNameError);
    }
  });
});
