import { generateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { parseMime } from '../../../src/mime/structure.js';
import type { MimeNode } from '../../../src/mime/types.js';

/** A small RFC 5322 message with CRLF line endings. */
export function sampleMessage(options: {
  from: string;
  to: string;
  subject?: string;
  contentType?: string | null;
  encoding?: string;
  body?: string | Buffer;
  extra?: string[];
}): Buffer {
  const lines = [
    `From: Sender <${options.from}>`,
    `To: <${options.to}>`,
    'Cc: copy@hopital.test',
    'Date: Wed, 25 Nov 2026 10:00:00 +0100',
    'Message-ID: <m1@hopital.test>',
    `Subject: ${options.subject ?? 'Compte rendu'}`,
    ...(options.extra ?? []),
    'MIME-Version: 1.0',
  ];
  if (options.contentType !== null) lines.push(`Content-Type: ${options.contentType ?? 'text/plain; charset=utf-8'}`);
  if (options.encoding) lines.push(`Content-Transfer-Encoding: ${options.encoding}`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8');
  const body = options.body ?? 'Bonjour,\r\nVoici le compte rendu.\r\n';
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/** The parts of a message's top-level multipart, as byte ranges and decoded text. */
export function topParts(raw: Buffer): { node: MimeNode; children: { node: MimeNode; entity: Buffer; body: Buffer }[] } {
  const node = parseMime(raw);
  return {
    node,
    children: node.children.map((child) => ({
      node: child,
      entity: raw.subarray(child.headerStart, child.bodyEnd),
      body: raw.subarray(child.bodyStart, child.bodyEnd),
    })),
  };
}

/** An RSA-1024 key pair (openpgp refuses to make one unless told to): for weak-key tests. */
export async function weakRsaKey(email: string): Promise<{ privateKey: PrivateKey; publicKey: PublicKey }> {
  return generateKey({
    type: 'rsa',
    rsaBits: 1024,
    userIDs: [{ email }],
    format: 'object',
    config: { minRSABits: 1024 },
  });
}

/** Replaces the first occurrence of `from` in `buf` by `to` (same length). */
export function replaceOnce(buf: Buffer, from: string, to: string): Buffer {
  const at = buf.indexOf(from);
  if (at < 0 || from.length !== to.length) throw new Error(`cannot replace ${from}`);
  const copy = Buffer.from(buf);
  copy.write(to, at, 'latin1');
  return copy;
}
