import type { Envelope, MessageMeta } from '../mime/types.js';
import type { MessageSummary } from '../store/types.js';
import { bodyStructureValue, envelopeValue } from './bodystructure.js';
import { formatDateTime } from './datetime.js';
import type { FetchItem } from './fetch-items.js';
import { decodeTransfer, isKnownEncoding } from '../mime/transfer.js';
import { previewText } from './preview.js';
import { applyPartial, extractSection, findPart } from './sections.js';
import { atom, Encoded, encodedText, literal, StreamedLiteral, utf8Text, type Value } from './serializer.js';

/**
 * ENVELOPE encoded once per opened metadata: clients fetch the same envelopes over and over, and their encoding
 * (quoting, escapes, literals for 8-bit text) was most of a FETCH ENVELOPE's time. It does not depend on the
 * session (envelope strings are never sent as UTF-8 quoted strings). Kept as long as the metadata is.
 */
const ENVELOPES = new WeakMap<Envelope, Encoded>();

function encodedEnvelope(envelope: Envelope): Value {
  let encoded = ENVELOPES.get(envelope);
  if (!encoded) {
    const value = envelopeValue(envelope);
    const text = encodedText(value);
    if (text === null) return value;
    ENVELOPES.set(envelope, (encoded = new Encoded(text)));
  }
  return encoded;
}

/**
 * The data of one `* n FETCH (...)` response, in the order the items were asked. Pure: the caller supplies
 * the message summary, its opened meta (when an item needs it) and its raw bytes (when a section or PREVIEW is
 * asked). `utf8`: the session may receive UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT).
 */
export function fetchValues(
  items: readonly FetchItem[],
  msg: MessageSummary,
  meta: MessageMeta | null,
  raw: Buffer | null,
  /**
   * `body`: without `raw`, the whole message as a stream of `size` bytes, for the items that send it whole
   * (`BODY[]`, `BODY.PEEK[]`, `RFC822` without a partial range).
   */
  options: { utf8: boolean; body?: { size: number; open: () => AsyncIterable<Buffer> } } = { utf8: false },
): Value[] {
  const out: Value[] = [];
  for (const item of items) {
    switch (item.kind) {
      case 'FLAGS':
        out.push(atom('FLAGS'), msg.flags.map(atom));
        break;
      case 'UID':
        out.push(atom('UID'), msg.uid);
        break;
      case 'MODSEQ':
        out.push(atom('MODSEQ'), [msg.modseq]);
        break;
      case 'INTERNALDATE':
        out.push(atom('INTERNALDATE'), formatDateTime(msg.internalDate));
        break;
      case 'RFC822.SIZE':
        out.push(atom('RFC822.SIZE'), msg.size);
        break;
      case 'ENVELOPE':
        out.push(atom('ENVELOPE'), encodedEnvelope(meta!.envelope));
        break;
      case 'BODYSTRUCTURE':
        out.push(atom('BODYSTRUCTURE'), bodyStructureValue(meta!.mime, true));
        break;
      case 'BODY':
        out.push(atom('BODY'), bodyStructureValue(meta!.mime, false));
        break;
      case 'PREVIEW': {
        const text = previewText(raw!, meta!.mime);
        out.push(atom('PREVIEW'), options.utf8 ? utf8Text(text) : text);
        break;
      }
      case 'section': {
        const whole = item.spec.path.length === 0 && item.spec.text === null;
        out.push(atom(item.partial ? `${item.name}<${item.partial.start}>` : item.name));
        if (whole && !item.partial && raw === null && options.body) {
          out.push(new StreamedLiteral(options.body.size, options.body.open));
          break;
        }
        const data = whole ? raw! : meta ? extractSection(raw!, meta.mime, item.spec) : null;
        out.push(data === null ? null : literal(applyPartial(data, item.partial)));
        break;
      }
      case 'binary': {
        const data = binaryPart(raw!, meta, item.path);
        if (item.sizeOnly) {
          out.push(atom(item.name), data.length);
        } else {
          const bytes = applyPartial(data, item.partial);
          out.push(atom(item.partial ? `${item.name}<${item.partial.start}>` : item.name), literal(bytes, bytes.includes(0)));
        }
        break;
      }
    }
  }
  return out;
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/**
 * `* n FETCH (...)\r\n` for summary items only (FLAGS, UID, MODSEQ, INTERNALDATE, RFC822.SIZE), written
 * straight to a string without building values: the answer to `1:* (FLAGS)` on a large folder. The same bytes
 * as `fetchValues` through the serializer; null when an item needs more than the summary, or a flag is not
 * printable ASCII (the general path then writes it).
 */
export function summaryFetchLine(seq: number, items: readonly FetchItem[], msg: MessageSummary): string | null {
  let line = `* ${seq} FETCH (`;
  for (let i = 0; i < items.length; i++) {
    if (i > 0) line += ' ';
    switch (items[i]!.kind) {
      case 'FLAGS':
        for (const flag of msg.flags) if (!PRINTABLE_ASCII.test(flag)) return null;
        line += `FLAGS (${msg.flags.join(' ')})`;
        break;
      case 'UID':
        line += `UID ${msg.uid}`;
        break;
      case 'MODSEQ':
        line += `MODSEQ (${msg.modseq})`;
        break;
      case 'INTERNALDATE':
        line += `INTERNALDATE "${formatDateTime(msg.internalDate)}"`;
        break;
      case 'RFC822.SIZE':
        line += `RFC822.SIZE ${msg.size}`;
        break;
      default:
        return null;
    }
  }
  return `${line})\r\n`;
}

/** A content-transfer-encoding we cannot undo: FETCH answers `NO [UNKNOWN-CTE]` (RFC 3516 §4.3). */
export class UnknownCteError extends Error {}

/** The decoded bytes of a part (the whole message for `[]`); a missing part reads as empty, as for BODY. */
function binaryPart(raw: Buffer, meta: MessageMeta | null, path: readonly number[]): Buffer {
  if (path.length === 0) return raw;
  const part = findPart(meta!.mime, path);
  if (!part) return Buffer.alloc(0);
  const body = raw.subarray(part.bodyStart, part.bodyEnd);
  if (part.children.length > 0) return body;
  if (!isKnownEncoding(part.encoding)) throw new UnknownCteError(part.encoding);
  return decodeTransfer(body, part.encoding);
}
