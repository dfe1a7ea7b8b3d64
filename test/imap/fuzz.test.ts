import { describe, expect, it } from 'vitest';
import { Args } from '../../src/imap/args.js';
import { COMMANDS } from '../../src/imap/commands/index.js';
import { CommandReader } from '../../src/imap/parser.js';
import { ImapSyntaxError, tokenize } from '../../src/imap/tokenizer.js';
import { MailboxNameError } from '../../src/imap/mailbox-name.js';

/** Random input never crashes the parser, never grows its memory past the limits, and only ever fails with syntax errors. */

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['a1 ', 'FETCH ', 'UID ', '1:*', ' (', ')', '[', ']', 'BODY.PEEK[', 'HEADER.FIELDS (', '<0.10>', '"', '\\', '{3}', '{2+}', '\r\n', '\n', ' ', 'NIL', '*', '%', '\x00', '\xff', 'APPEND INBOX ', 'LOGIN ', 'STORE 1 +FLAGS ', '\\Seen', 'x', '~', '~{3}', 'UTF8 (', 'PREVIEW ', '(LAZY)', 'CREATE x (USE (', 'RETURN (STATUS (DELETED APPENDLIMIT))', 'LIST ', 'é'];

describe('parser fuzzing', () => {
  it('survives random command streams', () => {
    const rand = prng(42);
    for (let round = 0; round < 300; round++) {
      const reader = new CommandReader(256, (r) => (r.received + r.size > 64 ? { status: 'NO', code: 'TOOBIG', text: 'too big' } : null));
      let input = '';
      while (input.length < 2000) input += PIECES[Math.floor(rand() * PIECES.length)];
      const bytes = Buffer.from(input, 'latin1');
      for (let i = 0; i < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 40);
        reader.push(bytes.subarray(i, i + n));
        i += n;
        for (let e = reader.next(); e; e = reader.next()) {
          if (e.kind !== 'command') continue;
          const size = e.frame.segments.reduce((sum, s) => sum + s.length, 0);
          expect(size).toBeLessThanOrEqual(256 + 64);
          const spec = COMMANDS.get(e.frame.command);
          try {
            const args = new Args(tokenize(e.frame.segments, e.frame.argsOffset));
            if (spec) {
              spec.parse(args);
              args.end();
            }
          } catch (err) {
            if (!(err instanceof ImapSyntaxError || err instanceof MailboxNameError)) throw err;
          }
        }
        expect(reader.buffered).toBeLessThan(100);
      }
    }
  });
});
