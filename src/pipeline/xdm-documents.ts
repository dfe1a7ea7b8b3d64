import { XmlMalformedError, XmlUnsafeError } from '../mime/cda/xml.js';
import { parseMime } from '../mime/structure.js';
import type { MimeNode } from '../mime/types.js';
import { XdmError, XdmIntegrityError, ZipLimitError } from '../mime/xdm/errors.js';
import { CODE_CDA_HEADER, INS_HEADER, xdmHeaderDecision, type XdmHeaderDecision } from '../mime/xdm/headers.js';
import type { XdmLimits } from '../mime/xdm/limits.js';
import { Refusal } from './refusal.js';
import { stripHeaderFields } from './strip-bcc.js';

/**
 * Structured documents stage: for a message carrying CDA documents in IHE XDM archives, sets `X-MSS-CODECDA`
 * and `X-MSS-INS` (replacing whatever the sender wrote); for any other message, removes them. A document that
 * does not match its metadata (size, SHA-1, missing) is refused with `xdm-integrity`; an archive that cannot be
 * read safely (zip bomb, unsafe path, XML DOCTYPE, over a limit, malformed) with `xdm-refused`. An encrypted
 * message is left alone: run the stage again on its opened content.
 *
 * The headers are written at the top of the header block, so the MIME offsets of the input no longer hold:
 * parse the returned message again.
 */

export interface XdmStageOptions {
  limits?: Partial<XdmLimits>;
  /** Count the test and demonstration INS OIDs (`.10`, `.11`) as INS; default true. */
  acceptTestIns?: boolean;
}

export interface XdmStageResult {
  message: Buffer;
  decision: XdmHeaderDecision;
}

const HEADER_NAMES = [CODE_CDA_HEADER.toLowerCase(), INS_HEADER.toLowerCase()];

/** An identifier from the metadata, reduced to what may go in a log line. */
function loggable(id: string): string {
  return id.replace(/[^\w.:/-]/g, '?').slice(0, 64);
}

/** The refusal for an archive error; its detail names the check that failed, never content or file names. */
export function refusalForXdm(err: unknown): Refusal | null {
  if (err instanceof XdmIntegrityError) {
    return new Refusal('xdm-integrity', `${err.problem} check failed for document ${loggable(err.documentId)} in ${loggable(err.subset)}`);
  }
  if (err instanceof ZipLimitError) return new Refusal('xdm-refused', `${err.code}: ${err.limit} ${err.actual} > ${err.allowed}`);
  if (err instanceof XdmError) return new Refusal('xdm-refused', err.code);
  if (err instanceof XmlUnsafeError) return new Refusal('xdm-refused', `xml-unsafe: ${err.reason}`);
  if (err instanceof XmlMalformedError) return new Refusal('xdm-refused', 'xml-malformed');
  return null;
}

/** `Name: value` with the value folded after commas so lines stay under 78 characters. */
function headerField(name: string, value: string, eol: string): string {
  const [first = '', ...rest] = value.split(',');
  const lines: string[] = [];
  let line = `${name}: ${first}`;
  for (const piece of rest) {
    if (line.length + 1 + piece.length > 76) {
      lines.push(`${line},`);
      line = ` ${piece}`;
    } else line += `,${piece}`;
  }
  lines.push(line);
  return lines.join(eol) + eol;
}

function lineEnding(raw: Buffer): string {
  const lf = raw.indexOf(0x0a);
  return lf > 0 && raw[lf - 1] === 0x0d ? '\r\n' : '\n';
}

/** Sets or removes the XDM headers; throws a `Refusal` for an archive that fails its checks. */
export function applyXdmDocuments(raw: Buffer, options: XdmStageOptions = {}, mime: MimeNode = parseMime(raw)): XdmStageResult {
  let decision: XdmHeaderDecision;
  try {
    decision = xdmHeaderDecision(raw, mime, options);
  } catch (err) {
    throw refusalForXdm(err) ?? err;
  }
  if (decision.action === 'opaque') return { message: raw, decision };
  const stripped = stripHeaderFields(raw, HEADER_NAMES);
  if (decision.action === 'remove') return { message: stripped, decision };
  const eol = lineEnding(raw);
  const fields = decision.headers.map(([name, value]) => headerField(name, value, eol)).join('');
  return { message: Buffer.concat([Buffer.from(fields, 'latin1'), stripped]), decision };
}

/**
 * Whether the stage can have anything to do: a zip (by media type or file name, plain or encoded) or one of
 * its headers is mentioned somewhere. Most messages are not, and skip the stage's MIME parse.
 */
export function mayCarryXdm(raw: Buffer): boolean {
  return /zip|x-mss-codecda|x-mss-ins|name\*|=\?/i.test(raw.toString('latin1'));
}
