import { describe, expect, it } from 'vitest';
import { htmlText, normalisePreview, PREVIEW_MAX_CHARS, previewPart, previewText } from '../../src/imap/preview.js';
import { buildMessageMeta } from '../../src/mime/meta.js';

/** PREVIEW (RFC 8970) text, from raw messages through the MIME structure the store keeps. */

function preview(lines: string[]): string {
  const raw = Buffer.from(lines.join('\r\n'), 'utf8');
  return previewText(raw, buildMessageMeta(raw).mime);
}

function multipart(subtype: string, parts: string[][]): string[] {
  return [
    'Subject: x',
    'MIME-Version: 1.0',
    `Content-Type: multipart/${subtype}; boundary="zz"`,
    '',
    ...parts.flatMap((p) => ['--zz', ...p]),
    '--zz--',
    '',
  ];
}

describe('previewText', () => {
  it('takes a plain message, decoding its transfer encoding and charset', () => {
    expect(preview(['Subject: x', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: base64', '', Buffer.from('Résultat\tnormal\r\n\r\nà revoir', 'latin1').toString('base64'), ''])).toBe(
      'Résultat normal à revoir',
    );
    // No charset: 8-bit text is read as UTF-8 (what unlabelled mail is today).
    expect(preview(['Subject: x', '', 'Sans en-tête de type.', ''])).toBe('Sans en-tête de type.');
  });

  it('prefers text/plain in multipart/alternative, and takes HTML when it is the only text', () => {
    const html = ['Content-Type: text/html; charset=utf-8', '', '<p>Version <b>HTML</b></p>', ''];
    const plain = ['Content-Type: text/plain', '', 'Version texte', ''];
    expect(preview(multipart('alternative', [html, plain]))).toBe('Version texte');
    expect(preview(multipart('alternative', [html]))).toBe('Version HTML');
  });

  it('skips attachments and does not look inside an attached message', () => {
    const attached = ['Content-Type: text/plain', 'Content-Disposition: attachment; filename="a.txt"', '', 'pièce jointe', ''];
    const forwarded = ['Content-Type: message/rfc822', '', 'Subject: inner', '', 'texte du message joint', ''];
    const body = ['Content-Type: text/plain', '', 'Le corps', ''];
    expect(preview(multipart('mixed', [attached, forwarded]))).toBe('');
    expect(preview(multipart('mixed', [attached, forwarded, body]))).toBe('Le corps');
  });

  it('previews as empty a part in an unknown transfer encoding, and a message without text', () => {
    expect(preview(['Subject: x', 'Content-Type: text/plain', 'Content-Transfer-Encoding: x-uuencode', '', 'begin 644 a', ''])).toBe('');
    expect(preview(['Subject: x', 'Content-Type: application/pdf', '', '%PDF', ''])).toBe('');
  });

  it('bounds the text at 256 characters without splitting a character', () => {
    const text = preview(['Subject: x', 'Content-Type: text/plain; charset=utf-8', '', '😀'.repeat(300), '']);
    expect([...text]).toHaveLength(PREVIEW_MAX_CHARS);
    expect(text).toBe('😀'.repeat(256));
  });

  it('reads at most the first 128 KiB of the part', () => {
    const html = (padding: number) => preview(['Subject: x', 'Content-Type: text/html', '', `<!--${'-'.repeat(padding)}-->visible`, '']);
    expect(html(100 * 1024)).toBe('visible');
    expect(html(130 * 1024)).toBe('');
  });

  it('finds the part through nested multiparts', () => {
    const related = ['Content-Type: multipart/related; boundary="yy"', '', '--yy', 'Content-Type: text/html', '', '<div>Dans related</div>', '--yy--', ''];
    expect(previewPart(buildMessageMeta(Buffer.from(multipart('alternative', [related]).join('\r\n'))).mime)?.subtype).toBe('html');
    expect(preview(multipart('alternative', [related]))).toBe('Dans related');
  });
});

describe('htmlText', () => {
  it('drops markup, comments, head, style and script (any case), and decodes character references', () => {
    expect(htmlText('<HTML><HEAD><TITLE>t</TITLE></HEAD><body><!-- x --><P>Un&nbsp;<i>deux</i></P><SCRIPT>x<y</SCRIPT>trois &amp; &#233;&#xE8; &eacute;&bogus;</body>')).toBe(
      ' Un deux trois & éè é&bogus;',
    );
    expect(normalisePreview(htmlText('<p>a</p><p>b</p>c<br>d<b>e</b>'))).toBe('a b c de');
  });

  it('ends at an unterminated tag, comment or hidden element', () => {
    expect(htmlText('avant <p class="x" ')).toBe('avant ');
    expect(htmlText('avant <!-- jamais fermé')).toBe('avant ');
    expect(htmlText('avant <style>p{}')).toBe('avant ');
  });

  it('keeps offsets right with characters whose lower case is longer', () => {
    expect(htmlText('İİİİ<b>gras</b> <STYLE>x</STYLE>fin')).toBe('İİİİgras fin');
  });

  it('refuses invalid numeric references', () => {
    expect(htmlText('a&#0;b&#xD800;c&#99999999;d')).toBe('a b c&#99999999;d');
  });
});

describe('normalisePreview', () => {
  it('collapses white space and removes control characters', () => {
    expect(normalisePreview('  a\r\n\tb\u00a0\u00a0c\u0007d\u0085e\ufeff ')).toBe('a b cde');
  });
});
