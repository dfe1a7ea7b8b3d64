import { describe, expect, it } from 'vitest';
import { Args } from '../../src/imap/args.js';
import { CommandReader, type LiteralPolicy, type ReaderEvent } from '../../src/imap/parser.js';
import { parseSequenceSet, resolveSequenceNumbers, resolveUids } from '../../src/imap/sequence.js';
import { ImapSyntaxError, tokenize, type Token } from '../../src/imap/tokenizer.js';

const allow: LiteralPolicy = () => null;

function drain(reader: CommandReader): ReaderEvent[] {
  const out: ReaderEvent[] = [];
  for (let e = reader.next(); e; e = reader.next()) out.push(e);
  return out;
}

function feed(input: string | Buffer, options: { max?: number; policy?: LiteralPolicy; chunk?: number } = {}): ReaderEvent[] {
  const reader = new CommandReader(options.max ?? 1024, options.policy ?? allow);
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
  const chunk = options.chunk ?? bytes.length;
  const out: ReaderEvent[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    reader.push(bytes.subarray(i, i + chunk));
    out.push(...drain(reader));
  }
  return out;
}

function argsOf(line: string | Buffer): Token[] {
  const event = feed(line).find((e) => e.kind !== 'continue');
  if (event?.kind !== 'command') throw new Error(`expected a command, got ${JSON.stringify(event)}`);
  return tokenize(event.frame.segments, event.frame.argsOffset);
}

const simplify = (tokens: Token[]): unknown =>
  tokens.map((t) =>
    t.type === 'list'
      ? simplify(t.items)
      : t.type === 'string'
        ? `"${t.value.toString('utf8')}"${t.literal ? '{L}' : ''}`
        : t.type === 'literal8'
          ? `~"${t.value.toString('utf8')}"`
          : t.section
          ? { atom: t.value, section: simplify(t.section), partial: t.partial }
          : t.value,
  );

describe('CommandReader framing', () => {
  it('frames tagged commands with CRLF or LF, byte by byte, and skips empty lines', () => {
    const events = feed('a1 NOOP\r\n\r\na2 uid fetch 1:* FLAGS\n', { chunk: 1 });
    expect(events.map((e) => (e.kind === 'command' ? [e.frame.tag, e.frame.command] : e.kind))).toEqual([
      ['a1', 'NOOP'],
      ['a2', 'UID FETCH'],
    ]);
  });

  it('asks for a continuation for a synchronising literal and none for LITERAL+', () => {
    const events = feed('a LOGIN {4}\r\nuser {4+}\r\npass\r\n');
    expect(events.map((e) => e.kind)).toEqual(['continue', 'command']);
    const cmd = events[1]!;
    if (cmd.kind !== 'command') throw new Error();
    expect(cmd.frame.segments.map((s) => s.toString())).toEqual(['a LOGIN {4}', 'user', ' {4+}', 'pass', '']);
  });

  it('keeps literal bytes exactly, including CRLF and 8-bit data, across chunks', () => {
    const body = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x7b])]);
    const input = Buffer.concat([Buffer.from(`t APPEND INBOX {${body.length}+}\r\n`), body, Buffer.from('\r\n')]);
    const events = feed(input, { chunk: 3 });
    const cmd = events[0]!;
    if (cmd.kind !== 'command') throw new Error();
    expect(cmd.frame.segments[1]).toEqual(body);
  });

  it('refuses a line longer than the limit with BAD and stays in step', () => {
    const long = 'x'.repeat(3000);
    const events = feed(`a1 NOOP ${long}\r\na2 NOOP\r\n`, { max: 1024, chunk: 100 });
    expect(events[0]).toMatchObject({ kind: 'refused', tag: 'a1', refusal: { status: 'BAD' } });
    expect(events[1]).toMatchObject({ kind: 'command', frame: { tag: 'a2' } });
  });

  it('counts every line of one command against the limit', () => {
    const part = 'y'.repeat(600);
    const events = feed(`a1 X "${part}" {1+}\r\nz "${part}"\r\na2 NOOP\r\n`, { max: 1024 });
    expect(events[0]).toMatchObject({ kind: 'refused', tag: 'a1' });
    expect(events[1]).toMatchObject({ kind: 'command', frame: { tag: 'a2' } });
  });

  it('follows a LITERAL+ announced at the end of an over-long line and skips its bytes', () => {
    const events = feed(`a1 APPEND ${'x'.repeat(2000)} {5+}\r\na2 NO\r\na3 NOOP\r\n`, { max: 1024 });
    expect(events.map((e) => e.kind)).toEqual(['refused', 'command']);
    expect(events[1]).toMatchObject({ frame: { tag: 'a3' } });
  });

  it('answers a refused synchronising literal at once; the client never sends it', () => {
    const policy: LiteralPolicy = (r) => (r.size > 10 ? { status: 'NO', code: 'TOOBIG', text: 'too big' } : null);
    const events = feed('a1 APPEND INBOX {100}\r\na2 NOOP\r\n', { policy });
    expect(events[0]).toMatchObject({ kind: 'refused', tag: 'a1', command: 'APPEND', refusal: { code: 'TOOBIG' } });
    expect(events[1]).toMatchObject({ kind: 'command', frame: { tag: 'a2' } });
  });

  it('reads and throws away a refused non-synchronising literal, then refuses the command', () => {
    const policy: LiteralPolicy = (r) => (r.size > 10 ? { status: 'NO', code: 'TOOBIG', text: 'too big' } : null);
    const events = feed(`a1 APPEND INBOX {20+}\r\n${'z'.repeat(20)}\r\na2 NOOP\r\n`, { policy, chunk: 7 });
    expect(events.map((e) => e.kind)).toEqual(['refused', 'command']);
    expect(events[0]).toMatchObject({ tag: 'a1', refusal: { status: 'NO' } });
  });

  it('passes the command name and bytes so far to the literal policy', () => {
    const seen: unknown[] = [];
    feed('a LOGIN {1}\r\nu {2}\r\npw\r\n', { policy: (r) => (seen.push([r.command, r.size, r.sync, r.received]), null) });
    expect(seen).toEqual([
      ['LOGIN', 1, true, 0],
      ['LOGIN', 2, true, 1],
    ]);
  });

  it('refuses an invalid tag', () => {
    expect(feed('* NOOP\r\n')[0]).toMatchObject({ kind: 'refused', tag: null });
    expect(feed('a+b NOOP\r\n')[0]).toMatchObject({ kind: 'refused', tag: null });
  });

  it('gives up only on an unrepresentable literal size', () => {
    expect(feed('a APPEND x {99999999999999999999}\r\n', { policy: () => ({ status: 'NO', text: 'no' }) })[0]).toMatchObject({ kind: 'fatal' });
  });

  it('reads one raw line in line mode, then commands again', () => {
    const reader = new CommandReader(1024, allow);
    reader.expectLine();
    reader.push(Buffer.from('AHVzZXIAcGFzcw==\r\na NOOP\r\n'));
    expect(reader.next()).toEqual({ kind: 'line', line: Buffer.from('AHVzZXIAcGFzcw==') });
    expect(reader.next()).toMatchObject({ kind: 'command', frame: { tag: 'a' } });
  });

  it('drops everything buffered on reset (STARTTLS)', () => {
    const reader = new CommandReader(1024, allow);
    reader.push(Buffer.from('a NOOP\r\nb NO'));
    reader.reset();
    reader.push(Buffer.from('c NOOP\r\n'));
    expect(drain(reader)).toMatchObject([{ kind: 'command', frame: { tag: 'c' } }]);
  });

  it('holds at most the line limit of an endless line', () => {
    const reader = new CommandReader(1024, allow);
    for (let i = 0; i < 1000; i++) {
      reader.push(Buffer.alloc(1000, 0x61));
      drain(reader);
      expect(reader.buffered).toBe(0);
    }
  });
});

describe('tokenize', () => {
  it('reads atoms, quoted strings with escapes, literals, nested lists and NIL', () => {
    expect(simplify(argsOf('a X atom "q \\"x\\" \\\\" {3}\r\nlit (a (b c) NIL) \\Seen\r\n'))).toEqual([
      'atom',
      '"q "x" \\"',
      '"lit"{L}',
      ['a', ['b', 'c'], 'NIL'],
      '\\Seen',
    ]);
  });

  it('reads section specs and partials', () => {
    expect(simplify(argsOf('a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (From "To")]<0.100> BODY[] RFC822)\r\n'))).toEqual([
      '1',
      [{ atom: 'BODY.PEEK', section: ['1.2.HEADER.FIELDS', ['From', '"To"']], partial: '0.100' }, { atom: 'BODY', section: [] }, 'RFC822'],
    ]);
  });

  it('treats brackets as astring characters elsewhere', () => {
    expect(simplify(argsOf('a SELECT [Gmail]/Sent\r\n'))).toEqual(['[Gmail]/Sent']);
  });

  it('reads literal8 (~{n}) as its own token, inside lists too; a bare ~ stays an atom character', () => {
    expect(simplify(argsOf('a APPEND INBOX ~{3}\r\na\0b UTF8 (~{2+}\r\nhi)\r\n'))).toEqual(['INBOX', '~"a\0b"', 'UTF8', ['~"hi"']]);
    expect(simplify(argsOf('a LIST ~/Mail/ %\r\n'))).toEqual(['~/Mail/', '%']);
    expect(() => argsOf('a X ~{x}\r\n')).toThrow(ImapSyntaxError);
    expect(() => new Args(argsOf('a LOGIN ~{1}\r\nx y\r\n')).text('user')).toThrow(/Expected user/);
  });

  it('keeps UTF-8 in quoted strings', () => {
    expect(simplify(argsOf('a LOGIN "médecin" "mot de passe"\r\n'))).toEqual(['"médecin"', '"mot de passe"']);
  });

  it('rejects malformed input', () => {
    for (const bad of ['a X "unterminated\r\n', 'a X (a b\r\n', 'a X a  b\r\n', 'a X a \r\n', 'a X "bad\\q"\r\n']) {
      expect(() => argsOf(bad)).toThrow(ImapSyntaxError);
    }
  });

  it('bounds list nesting', () => {
    expect(() => argsOf(`a X ${'('.repeat(100)}${')'.repeat(100)}\r\n`)).toThrow(/nested/);
  });
});

describe('Args', () => {
  it('reads typed arguments and refuses leftovers', () => {
    const args = new Args(argsOf('a LOGIN user "pass word" extra\r\n'));
    expect(args.text('user')).toBe('user');
    expect(args.text('password')).toBe('pass word');
    expect(() => args.end()).toThrow(/Too many/);
  });

  it('reports what is missing', () => {
    expect(() => new Args([]).atom('mailbox name')).toThrow(/Missing mailbox name/);
  });
});

describe('sequence sets', () => {
  it('parses ranges and stars', () => {
    expect(parseSequenceSet('1,3:5,7:*,*')).toEqual([
      { from: 1, to: 1 },
      { from: 3, to: 5 },
      { from: 7, to: '*' },
      { from: '*', to: '*' },
    ]);
    for (const bad of ['', '0', '1:', 'a', '1::2', '4294967296', '1,,2']) expect(() => parseSequenceSet(bad)).toThrow();
  });

  it('resolves message sequence numbers, refusing numbers beyond EXISTS', () => {
    expect(resolveSequenceNumbers(parseSequenceSet('2:*,1'), 3)).toEqual([0, 1, 2]);
    expect(resolveSequenceNumbers(parseSequenceSet('4:2'), 4)).toEqual([1, 2, 3]);
    expect(resolveSequenceNumbers(parseSequenceSet('5'), 4)).toBeNull();
    expect(resolveSequenceNumbers(parseSequenceSet('1:*'), 0)).toBeNull();
  });

  it('resolves UIDs, ignoring missing ones; n:* includes the last message', () => {
    const uids = [3, 5, 9, 12];
    expect(resolveUids(parseSequenceSet('1:5,10:*'), uids)).toEqual([0, 1, 3]);
    expect(resolveUids(parseSequenceSet('100:*'), uids)).toEqual([3]);
    expect(resolveUids(parseSequenceSet('4,6:8'), uids)).toEqual([]);
    expect(resolveUids(parseSequenceSet('1:*'), [])).toEqual([]);
  });

  it('resolves overlapping, reversed and repeated ranges in any order to each index once, ascending', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const uids: number[] = [];
    for (let u = 1; uids.length < 300; u += 1 + random(4)) uids.push(u);
    const max = uids[uids.length - 1]!;
    for (let round = 0; round < 200; round++) {
      const parts: string[] = [];
      for (let k = 1 + random(5); k > 0; k--) {
        const end = () => (random(8) === 0 ? '*' : String(1 + random(max + 20)));
        parts.push(random(3) === 0 ? end() : `${end()}:${end()}`);
      }
      const set = parseSequenceSet(parts.join(','));
      // What the ranges select, index by index.
      const inRange = (value: number, star: number) =>
        set.some(({ from, to }) => {
          const a = from === '*' ? star : from;
          const b = to === '*' ? star : to;
          return value >= Math.min(a, b) && value <= Math.max(a, b);
        });
      const starred = set.some((r) => r.from === '*' || r.to === '*');
      const expectedUids = uids.flatMap((uid, i) => (inRange(uid, max) || (starred && i === uids.length - 1) ? [i] : []));
      expect(resolveUids(set, uids), parts.join(',')).toEqual(expectedUids);
      const count = 250;
      const fits = set.every(({ from, to }) => (from === '*' || from <= count) && (to === '*' || to <= count));
      const expectedSeq = fits ? Array.from({ length: count }, (_, i) => i).filter((i) => inRange(i + 1, count)) : null;
      expect(resolveSequenceNumbers(set, count), parts.join(',')).toEqual(expectedSeq);
    }
  });
});
