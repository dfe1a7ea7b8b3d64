import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, parseMime } from '../../src/mime/structure.js';
import type { MimeNode } from '../../src/mime/types.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/email/${name}`, import.meta.url));
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const slice = (raw: Buffer, a: number, b: number) => raw.subarray(a, b).toString('utf8');
const body = (raw: Buffer, n: MimeNode) => slice(raw, n.bodyStart, n.bodyEnd);

describe('parseMime', () => {
  it('defaults to text/plain us-ascii without Content-Type', () => {
    const raw = crlf('Subject: hi\n\nhello\nworld\n');
    const node = parseMime(raw);
    expect(node).toMatchObject({ type: 'text', subtype: 'plain', params: [['charset', 'us-ascii']], encoding: '7bit', lines: 2 });
    expect(body(raw, node)).toBe('hello\r\nworld\r\n');
    expect(node.headerStart).toBe(0);
    expect(node.bodyEnd).toBe(raw.length);
  });

  it('handles a message with no body and no blank line', () => {
    const raw = crlf('Subject: only a header\n');
    const node = parseMime(raw);
    expect(node.bodyStart).toBe(raw.length);
    expect(node.lines).toBe(0);
  });

  it('splits multipart with preamble and epilogue, CRLF before a delimiter belonging to it', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary="b1"\n\npreamble\n--b1\nContent-Type: text/plain\n\nfirst\n--b1\n\nsecond\n\n--b1--\nepilogue\n',
    );
    const node = parseMime(raw);
    expect(node.type).toBe('multipart');
    expect(node.children).toHaveLength(2);
    const [a, b] = node.children as [MimeNode, MimeNode];
    expect(body(raw, a)).toBe('first');
    expect(a.lines).toBe(1);
    expect(slice(raw, a.headerStart, a.bodyStart)).toBe('Content-Type: text/plain\r\n\r\n');
    expect(body(raw, b)).toBe('second\r\n');
    expect(b.headerStart).toBe(b.bodyStart - 2);
    expect(b.params).toEqual([['charset', 'us-ascii']]);
  });

  it('parses nested multipart and does not take a longer boundary for a shorter one', () => {
    const raw = crlf(
      [
        'Content-Type: multipart/mixed; boundary=abc',
        '',
        '--abc',
        'Content-Type: multipart/alternative; boundary=abcd',
        '',
        '--abcd',
        'Content-Type: text/plain',
        '',
        'plain',
        '--abcd',
        'Content-Type: text/html',
        '',
        '<p>html</p>',
        '--abcd--',
        '--abc',
        'Content-Type: application/octet-stream; name=x.bin',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename="x.bin"',
        '',
        'AAAA',
        '--abc--',
        '',
      ].join('\n'),
    );
    const node = parseMime(raw);
    expect(node.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['multipart/alternative', 'application/octet-stream']);
    const alt = node.children[0]!;
    expect(alt.children.map((c) => body(raw, c))).toEqual(['plain', '<p>html</p>']);
    const att = node.children[1]!;
    expect(att.encoding).toBe('base64');
    expect(att.disposition).toEqual({ type: 'attachment', params: [['filename', 'x.bin']] });
    expect(body(raw, att)).toBe('AAAA');
  });

  it('ends the last part at the end of the body when the close delimiter is missing', () => {
    const raw = crlf('Content-Type: multipart/mixed; boundary=z\n\n--z\n\nonly part\nstill it\n');
    const node = parseMime(raw);
    expect(node.children).toHaveLength(1);
    expect(body(raw, node.children[0]!)).toBe('only part\r\nstill it\r\n');
  });

  it('gives a multipart without delimiters one synthetic part', () => {
    const raw = crlf('Content-Type: multipart/mixed; boundary=nope\n\njust text\n');
    const node = parseMime(raw);
    expect(node.children).toHaveLength(1);
    expect(node.children[0]).toMatchObject({ type: 'text', subtype: 'plain', bodyStart: node.bodyStart, bodyEnd: raw.length });
  });

  it('recurses into message/rfc822 with an envelope', () => {
    const raw = crlf(
      [
        'Content-Type: multipart/mixed; boundary=o',
        '',
        '--o',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--o',
        'Content-Type: message/rfc822',
        '',
        'From: Alice <alice@example.org>',
        'Subject: inner',
        'Content-Type: multipart/alternative; boundary=i',
        '',
        '--i',
        '',
        'inner text',
        '--i--',
        '--o--',
        '',
      ].join('\n'),
    );
    const node = parseMime(raw);
    const msg = node.children[1]!;
    expect(msg).toMatchObject({ type: 'message', subtype: 'rfc822' });
    expect(msg.envelope?.subject).toBe('inner');
    expect(msg.envelope?.from).toEqual([{ name: 'Alice', adl: null, mailbox: 'alice', host: 'example.org' }]);
    expect(msg.children).toHaveLength(1);
    const inner = msg.children[0]!;
    expect(inner.headerStart).toBe(msg.bodyStart);
    expect(inner.type).toBe('multipart');
    expect(body(raw, inner.children[0]!)).toBe('inner text');
    expect(msg.lines).toBe(8);
  });

  it('uses message/rfc822 as the default in multipart/digest', () => {
    const raw = crlf('Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n');
    const part = parseMime(raw).children[0]!;
    expect(part).toMatchObject({ type: 'message', subtype: 'rfc822' });
    expect(part.envelope?.subject).toBe('one');
  });

  it('works with bare LF line endings (fixture) and 8-bit UTF-8 headers', () => {
    const raw = fixture('ans-mdn-ko-902.eml');
    expect(raw.includes('\r\n')).toBe(false);
    const node = parseMime(raw);
    expect(node.subtype).toBe('report');
    expect(node.children.map((c) => `${c.type}/${c.subtype}`)).toEqual([
      'text/plain',
      'message/disposition-notification',
      'message/rfc822',
      'application/zip',
      'application/pdf',
    ]);
    expect(body(raw, node.children[0]!)).toMatch(/^Le document n’a pas pu être intégré\.\n/);
    expect(node.children[4]!.params).toEqual([['name', '20220531_CR_d_imagerie_medicale_CORSE_FIGATELLIX.pdf']]);
  });

  it('parses the CRLF multipart fixture', () => {
    const raw = fixture('MessageWithAttachment.txt');
    const node = parseMime(raw);
    expect(node.children.map((c) => `${c.type}/${c.subtype}`)).toEqual(['text/plain', 'image/png']);
    expect(node.children[0]!.params).toEqual([
      ['charset', 'ISO-8859-1'],
      ['format', 'flowed'],
    ]);
    expect(body(raw, node.children[0]!)).toBe('test pic\r\n');
    expect(node.children[1]!.disposition?.params).toEqual([['filename', 'iMac-icon.png']]);
  });

  it('bounds nesting depth', () => {
    let raw = 'Content-Type: text/plain\n\ndeep\n';
    for (let i = 0; i < MAX_DEPTH + 10; i++) raw = `Content-Type: message/rfc822\n\n${raw}`;
    let node = parseMime(crlf(raw));
    let depth = 0;
    while (node.children[0]) {
      node = node.children[0];
      depth++;
    }
    expect(depth).toBe(MAX_DEPTH);
    expect(node.type).toBe('application');
  });

  it('copes with a huge number of parts', () => {
    const parts = Array.from({ length: 5000 }, (_, i) => `--p\n\n${i}\n`).join('');
    const node = parseMime(crlf(`Content-Type: multipart/mixed; boundary=p\n\n${parts}--p--\n`));
    expect(node.children.length).toBeLessThan(2001);
    expect(node.children.length).toBeGreaterThan(1000);
  });
});
