import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bodyStructureValue, envelopeValue } from '../../src/imap/bodystructure.js';
import { formatDateTime, parseDateTime } from '../../src/imap/datetime.js';
import { parseFetchItems } from '../../src/imap/fetch-items.js';
import { fetchValues } from '../../src/imap/fetch-response.js';
import { adjacent, atom, continuation, Encoded, encodedText, encodeValues, literal, status, untagged, utf8Text } from '../../src/imap/serializer.js';
import { tokenize } from '../../src/imap/tokenizer.js';
import { buildMessageMeta } from '../../src/mime/meta.js';

const text = (b: Buffer) => b.toString('utf8');
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');

describe('value encoding', () => {
  it('quotes safe strings, escapes quotes and backslashes, and writes NIL, numbers, lists', () => {
    expect(text(encodeValues([null, 42, 'a "b" \\c', [atom('\\Seen'), 'x'], []]))).toBe('NIL 42 "a \\"b\\" \\\\c" (\\Seen "x") ()');
  });

  it('uses a literal for 8-bit, CR/LF, NUL or long strings', () => {
    expect(text(encodeValues(['été']))).toBe('{5}\r\nété');
    expect(text(encodeValues(['a\r\nb']))).toBe('{4}\r\na\r\nb');
    expect(encodeValues([Buffer.from([0x41, 0])]).toString('latin1')).toBe('{2}\r\nA\0');
    expect(text(encodeValues(['x'.repeat(2000)]))).toMatch(/^\{2000\}\r\n/);
    expect(text(encodeValues([literal(Buffer.from('ab'))]))).toBe('{2}\r\nab');
  });

  it('quotes UTF-8 text for sessions that accept it, still using a literal for CR/LF, NUL or long text', () => {
    expect(text(encodeValues([utf8Text('Réunions/"été"')]))).toBe('"Réunions/\\"été\\""');
    expect(text(encodeValues([utf8Text('a\r\nb')]))).toBe('{4}\r\na\r\nb');
    expect(text(encodeValues([utf8Text('é'.repeat(600))]))).toMatch(/^\{1200\}\r\n/);
  });

  it('sends a value encoded beforehand as its own encoding would be, except one holding a long literal', () => {
    const values = [null, 42, 'a "b"', 'été', [atom('X'), adjacent([['a'], ['b']])], 'x'.repeat(2000), utf8Text('Réunion')];
    for (const v of values) expect(text(untagged([atom('A'), new Encoded(encodedText(v)!), 1]))).toBe(text(untagged([atom('A'), v, 1])));
    expect(encodedText(literal(Buffer.alloc(20_000, 0x41)))).toBeNull();
  });

  it('writes adjacent lists without separators', () => {
    expect(text(encodeValues([adjacent([['a'], ['b']])]))).toBe('(("a")("b"))');
  });

  it('formats status, untagged and continuation lines with printable text only', () => {
    expect(text(status('a1', 'OK', 'Done', 'APPENDUID 1 2'))).toBe('a1 OK [APPENDUID 1 2] Done\r\n');
    expect(text(status(null, 'BAD', 'bad\r\nline'))).toBe('* BAD bad??line\r\n');
    expect(text(untagged([3, atom('EXISTS')]))).toBe('* 3 EXISTS\r\n');
    expect(text(continuation(''))).toBe('+ \r\n');
  });
});

describe('date-time', () => {
  it('round-trips and accepts a space-padded day', () => {
    const ms = parseDateTime(' 7-Jul-1996 02:44:25 -0700');
    expect(ms).toBe(Date.UTC(1996, 6, 7, 9, 44, 25));
    expect(formatDateTime(ms!)).toBe('07-Jul-1996 09:44:25 +0000');
    expect(parseDateTime('31-Feb-2020 00:00:00 +0000')).toBeNull();
    expect(parseDateTime('1-Foo-2020 00:00:00 +0000')).toBeNull();
  });
});

describe('ENVELOPE and BODYSTRUCTURE', () => {
  it('encodes an envelope with touching address lists and NIL defaults', () => {
    const meta = buildMessageMeta(crlf('From: "Dr A" <a@x.fr>\nTo: b@y.fr, c@y.fr\nSubject: Hi\nMessage-ID: <1@x>\n\nbody\n'));
    const expected =
      '(NIL "Hi" (("Dr A" NIL "a" "x.fr")) (("Dr A" NIL "a" "x.fr")) (("Dr A" NIL "a" "x.fr")) ((NIL NIL "b" "y.fr")(NIL NIL "c" "y.fr")) NIL NIL NIL "<1@x>")';
    expect(text(encodeValues([envelopeValue(meta.envelope)]))).toBe(expected);
    // FETCH encodes it once per opened metadata, and sends the same bytes every time.
    const summary = { id: 1, uid: 7, modseq: 1, flags: [], internalDate: 0, size: 1, blobId: 1 };
    const fetched = () => text(encodeValues(fetchValues(parseFetchItems(tokenize([Buffer.from('(ENVELOPE)')], 0)[0]!), summary, meta, null)));
    expect(fetched()).toBe(`ENVELOPE ${expected}`);
    expect(fetched()).toBe(`ENVELOPE ${expected}`);
  });

  it('encodes a single text part with and without extension data', () => {
    const meta = buildMessageMeta(crlf('Subject: x\n\nhello\nworld\n'));
    expect(text(encodeValues([bodyStructureValue(meta.mime, true)]))).toBe('("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 14 2 NIL NIL NIL NIL)');
    expect(text(encodeValues([bodyStructureValue(meta.mime, false)]))).toBe('("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 14 2)');
  });

  it('encodes multipart with extension data and message/rfc822 with envelope, body and lines', () => {
    const raw = crlf(
      [
        'Content-Type: multipart/mixed; boundary=o',
        '',
        '--o',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Language: fr',
        '',
        'voir',
        '--o',
        'Content-Type: message/rfc822',
        'Content-Disposition: attachment; filename=fwd.eml',
        '',
        'Subject: inner',
        '',
        'x',
        '--o--',
        '',
      ].join('\n'),
    );
    const meta = buildMessageMeta(raw);
    expect(text(encodeValues([bodyStructureValue(meta.mime, true)]))).toBe(
      '(("TEXT" "PLAIN" ("charset" "utf-8") NIL NIL "7BIT" 4 1 NIL NIL "fr" NIL)' +
        '("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 19 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 1 1 NIL NIL NIL NIL) 3 NIL ("attachment" ("filename" "fwd.eml")) NIL NIL)' +
        ' "MIXED" ("boundary" "o") NIL NIL NIL)',
    );
    expect(text(encodeValues([bodyStructureValue(meta.mime, false)]))).toBe(
      '(("TEXT" "PLAIN" ("charset" "utf-8") NIL NIL "7BIT" 4 1)' +
        '("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 19 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 1 1) 3) "MIXED")',
    );
  });
});

describe('FETCH responses', () => {
  const raw = readFileSync(new URL('../fixtures/email/MessageWithAttachment.txt', import.meta.url));
  const meta = buildMessageMeta(raw);
  const msg = { id: 1, uid: 7, modseq: 1, flags: ['\\Seen'], internalDate: Date.UTC(2024, 0, 2, 3, 4, 5), size: raw.length, blobId: 1 };
  const items = (spec: string) => parseFetchItems(tokenize([Buffer.from(spec)], 0)[0]!);
  const fetch = (spec: string) => encodeValues([fetchValues(items(spec), msg, meta, raw)]).toString('latin1');

  it('answers simple items in the order asked', () => {
    expect(fetch('(UID FLAGS RFC822.SIZE INTERNALDATE)')).toBe(`(UID 7 FLAGS (\\Seen) RFC822.SIZE ${raw.length} INTERNALDATE "02-Jan-2024 03:04:05 +0000")`);
  });

  it('expands macros', () => {
    expect(items('FAST').map((i) => i.kind)).toEqual(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']);
    expect(items('FULL').map((i) => i.kind)).toEqual(['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']);
  });

  it('returns the whole message, the header, the text, a part, a part MIME header and partials', () => {
    const headerEnd = raw.indexOf('\r\n\r\n') + 4;
    expect(fetch('BODY[]')).toBe(`(BODY[] {${raw.length}}\r\n${raw.toString('latin1')})`);
    expect(fetch('BODY.PEEK[HEADER]')).toBe(`(BODY[HEADER] {${headerEnd}}\r\n${raw.toString('latin1', 0, headerEnd)})`);
    expect(fetch('RFC822.TEXT')).toBe(`(RFC822.TEXT {${raw.length - headerEnd}}\r\n${raw.toString('latin1', headerEnd)})`);
    expect(fetch('BODY[1]')).toBe('(BODY[1] {10}\r\ntest pic\r\n)');
    expect(fetch('BODY[1.MIME]')).toMatch(/^\(BODY\[1\.MIME\] \{\d+\}\r\nContent-Type: text\/plain; charset=ISO-8859-1; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\)$/);
    expect(fetch('BODY[1]<5.100>')).toBe('(BODY[1]<5> {5}\r\npic\r\n)');
    expect(fetch('BODY[1]<500.10>')).toBe('(BODY[1]<500> {0}\r\n)');
    expect(fetch('BODY[9]')).toBe('(BODY[9] NIL)');
  });

  it('filters header fields, keeping folded lines and ending with a blank line', () => {
    expect(fetch('BODY.PEEK[HEADER.FIELDS (subject content-type)]')).toBe(
      '(BODY[HEADER.FIELDS (SUBJECT CONTENT-TYPE)] {103}\r\nSubject: test pic\r\nContent-Type: multipart/mixed;\r\n boundary="------------060900020003050502060008"\r\n\r\n)',
    );
    const not = fetch('BODY.PEEK[HEADER.FIELDS.NOT (Received)]');
    expect(not).not.toMatch(/Received|JAMES/);
    expect(not).toMatch(/Subject: test pic\r\n/);
  });

  it('rejects sections that do not parse', () => {
    for (const bad of ['BODY[0]', 'BODY[MIME]', 'BODY[HEADER.FIELDS]', 'BODY[1.FOO]', 'BODY[]<1>', 'BINARY[1.TEXT]', 'BINARY.SIZE[1]<0.5>', 'WHATEVER']) {
      expect(() => items(bad), bad).toThrow();
    }
  });
});
