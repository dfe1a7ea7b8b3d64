import { decodeCharset, decodeWords } from '../../mime/encoded-words.js';
import { readHeader } from '../../mime/headers.js';
import { paramValue } from '../../mime/params.js';
import { decodeTransfer } from '../../mime/transfer.js';
import type { MimeNode } from '../../mime/types.js';

/**
 * The texts SEARCH matches against (RFC 9051 §6.4.4): header fields with encoded words decoded, and the text of
 * the body after transfer encodings and charsets. The evaluator and the blind index read the same views, so a
 * match the evaluator finds is always one the index offers as a candidate.
 */

/** Lower-cased, NFC-normalised text, so matching ignores case (Unicode) and composition. */
export function fold(text: string): string {
  return text.normalize('NFC').toLowerCase();
}

/** An opened message, with its decoded views computed once each. */
export class Content {
  #headers: { name: string; value: string }[] | null = null;
  #headerText: string | null = null;
  #bodyText: string | null = null;

  constructor(readonly raw: Buffer) {}

  /** The top-level header fields: lower-case names, folded values. */
  headers(): { name: string; value: string }[] {
    this.#headers ??= readHeader(this.raw, 0, this.raw.length).fields.map((f) => ({ name: f.name, value: fold(decodeWords(f.value)) }));
    return this.#headers;
  }

  /** Every header field as `name: value`, one per line (TEXT). */
  headerText(): string {
    this.#headerText ??= this.headers()
      .map((f) => `${f.name}: ${f.value}`)
      .join('\n');
    return this.#headerText;
  }

  /** The folded text of the body (BODY, TEXT). */
  bodyText(mime: MimeNode): string {
    this.#bodyText ??= fold(textParts(this.raw, mime).join('\n'));
    return this.#bodyText;
  }
}

/** The decoded text of every text/* part, and of the text parts of attached messages. */
function textParts(raw: Buffer, node: MimeNode): string[] {
  if (node.children.length > 0) {
    const out: string[] = [];
    for (const child of node.children) {
      if (node.type === 'message') {
        // The attached message's headers are its text too.
        out.push(...readHeader(raw, child.headerStart, child.bodyStart).fields.map((f) => `${f.name}: ${decodeWords(f.value)}`));
      }
      out.push(...textParts(raw, child));
    }
    return out;
  }
  if (node.type !== 'text') return [];
  const bytes = decodeTransfer(raw.subarray(node.bodyStart, node.bodyEnd), node.encoding);
  return [decodeCharset(bytes, paramValue(node.params, 'charset') ?? 'us-ascii')];
}
