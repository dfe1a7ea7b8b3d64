/** Test helpers: messages carrying attachments and IHE XDM packages, as a hospital system would submit them. */
import { randomBytes } from 'node:crypto';
import { unzipSync, zipSync } from 'fflate';

export interface TestAttachment {
  filename: string | null;
  type: string;
  content: Buffer;
}

export interface TestHeaders {
  from?: string;
  to?: string;
  subject?: string;
}

/** A multipart/mixed message with a text part and base64 attachments, CRLF line endings. */
export function mimeMessage(attachments: TestAttachment[], extraHeaders = '', headers: TestHeaders = {}): Buffer {
  const { from = 'service.auto@ch-test.mssante.test', to = 'dr.martin@ch-test.mssante.test', subject = 'XDM/1.0/DDM+Lettre de liaison PAT-TROIS DOMINIQUE 28/03/1979' } = headers;
  const parts = attachments.map((a) => {
    const name = a.filename === null ? '' : `; name="${a.filename}"`;
    const disposition = a.filename === null ? '' : `Content-Disposition: attachment; filename="${a.filename}"\r\n`;
    const body = a.content.toString('base64').replace(/.{76}/g, '$&\r\n');
    return `--b1\r\nContent-Type: ${a.type}${name}\r\nContent-Transfer-Encoding: base64\r\n${disposition}\r\n${body}\r\n`;
  });
  return Buffer.from(
    `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\n${extraHeaders}` +
      'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n' +
      '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu en pièce jointe.\r\n' +
      parts.join('') +
      '--b1--\r\n',
    'utf8',
  );
}

/** A message from `from` to `to` carrying `zip` as IHE_XDM.ZIP, with a fresh Message-ID and the extra header lines. */
export function xdmMessage(zip: Buffer, headers: Required<Pick<TestHeaders, 'from' | 'to'>> & { subject?: string; extra?: string[] }): string {
  const extra = [`Message-ID: <${randomBytes(8).toString('hex')}@test>`, ...(headers.extra ?? [])].map((line) => `${line}\r\n`).join('');
  return mimeMessage([{ filename: 'IHE_XDM.ZIP', type: 'application/zip', content: zip }], extra, headers).toString('utf8');
}

/** The package with its first document's bytes changed after the metadata recorded their size and SHA-1. */
export function tamperedXdm(zip: Buffer): Buffer {
  const entries = unzipSync(zip);
  const name = Object.keys(entries).find((n) => /SUBSET01\/DOC0001\.XML$/i.test(n))!;
  const doc = Buffer.from(entries[name]!);
  doc[doc.indexOf('TSH')] = 'X'.charCodeAt(0);
  entries[name] = doc;
  return Buffer.from(zipSync(entries));
}
