import { paramValue } from '../../mime/params.js';
import { parseMime } from '../../mime/structure.js';
import type { MimeNode } from '../../mime/types.js';
import { toCrlf } from './canonical.js';
import { fail, ok, type PgpResult } from './failures.js';
import { decodeTransferEncoding } from './transfer-encoding.js';

/**
 * Recognises the RFC 3156 containers at the top of a message or entity and cuts out their pieces.
 * Anything else — including S/MIME multipart/signed and inline PGP — is `none`: not this agent's business.
 */
export type PgpMime =
  | { kind: 'none' }
  | {
      kind: 'encrypted';
      /** The OpenPGP message: armored text or binary packets, transfer encoding removed. */
      data: Buffer;
    }
  | {
      kind: 'signed';
      /** The signed entity as it appears in the message (for the reader). */
      entity: Buffer;
      /** The same bytes with CRLF line endings: what the signature covers. */
      signedData: Buffer;
      /** The detached signature: armored text or binary packets, transfer encoding removed. */
      signature: Buffer;
      /** The `micalg` parameter as announced (informative: the signature packet names its own hash). */
      micalg: string | null;
    };

function partBody(buf: Buffer, node: MimeNode): Buffer {
  return decodeTransferEncoding(buf.subarray(node.bodyStart, node.bodyEnd), node.encoding);
}

function protocolOf(node: MimeNode): string | null {
  return paramValue(node.params, 'protocol')?.trim().toLowerCase() ?? null;
}

/** Whether a multipart node really has delimited children (parseMime invents one leaf when it has none). */
function hasRealParts(node: MimeNode): boolean {
  const first = node.children[0];
  return first !== undefined && !(node.children.length === 1 && first.headerStart === first.bodyStart);
}

export function parsePgpMime(buf: Buffer): PgpResult<PgpMime> {
  const root = parseMime(buf);
  if (root.type !== 'multipart') return ok({ kind: 'none' });
  const protocol = protocolOf(root);
  if (root.subtype === 'encrypted' && protocol === 'application/pgp-encrypted') {
    if (!hasRealParts(root) || root.children.length !== 2) {
      return fail('malformed', `multipart/encrypted must have exactly 2 parts, found ${hasRealParts(root) ? root.children.length : 0}`);
    }
    const [control, payload] = root.children as [MimeNode, MimeNode];
    if (`${control.type}/${control.subtype}` !== 'application/pgp-encrypted') {
      return fail('malformed', `first part of multipart/encrypted is ${control.type}/${control.subtype}`);
    }
    const version = /^\s*Version\s*:\s*(\S*)\s*$/im.exec(partBody(buf, control).toString('latin1'));
    if (version && version[1] !== '1') return fail('unsupported', `PGP/MIME version ${version[1]}`);
    if (`${payload.type}/${payload.subtype}` !== 'application/octet-stream') {
      return fail('malformed', `second part of multipart/encrypted is ${payload.type}/${payload.subtype}`);
    }
    return ok({ kind: 'encrypted', data: partBody(buf, payload) });
  }
  if (root.subtype === 'signed' && protocol === 'application/pgp-signature') {
    if (!hasRealParts(root) || root.children.length !== 2) {
      return fail('malformed', `multipart/signed must have exactly 2 parts, found ${hasRealParts(root) ? root.children.length : 0}`);
    }
    const [signed, signature] = root.children as [MimeNode, MimeNode];
    if (`${signature.type}/${signature.subtype}` !== 'application/pgp-signature') {
      return fail('malformed', `second part of multipart/signed is ${signature.type}/${signature.subtype}`);
    }
    const entity = buf.subarray(signed.headerStart, signed.bodyEnd);
    return ok({
      kind: 'signed',
      entity,
      signedData: toCrlf(entity),
      signature: partBody(buf, signature),
      micalg: paramValue(root.params, 'micalg')?.trim().toLowerCase() ?? null,
    });
  }
  return ok({ kind: 'none' });
}
