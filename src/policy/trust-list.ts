import { createHash } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import type { TrustDomainRow } from '../store/trust-types.js';
import { DnSyntaxError, parseDn } from './dn.js';

/**
 * The trust-space list in the national authority's XML format ("liste blanche MSSanté"):
 *
 * ```xml
 * <ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
 *   <DateDeGeneration>2025-03-13T14:54:10Z</DateDeGeneration>
 *   <ListeDomaines>
 *     <Domaine><Nom/><Description/><DNCertificatOperateur/><ResponsableContact/><SupportContact/><DateMAJ/></Domaine>…
 * ```
 *
 * Parsing refuses DOCTYPE and entity declarations (no expansion, no external entity) and files over a size
 * limit; each `Domaine` is validated (zod), unusable ones are skipped and reported. `exportTrustList` writes
 * the same format, so another instance can import our entries.
 */

export const TRUST_LIST_NAMESPACE = 'https://listeblanche.mssante.fr/schema';
export const DEFAULT_MAX_TRUST_LIST_BYTES = 32 * 1024 * 1024;

/** The list cannot be used at all: nothing is imported and the last good list stays. */
export class TrustListError extends Error {}

export type TrustDomain = TrustDomainRow;

export interface SkippedDomain {
  /** 1-based position among the `Domaine` elements. */
  index: number;
  name: string | null;
  reason: string;
}

export interface ParsedTrustList {
  /** `DateDeGeneration`, ms since epoch. */
  generatedAt: number;
  domains: TrustDomain[];
  skipped: SkippedDomain[];
  /** SHA-256 of the bytes parsed, lower-case hex. */
  sha256: string;
}

const DOMAIN_NAME = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const isoDate = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
const text = z.string().max(4096);

const domainSchema = z.object({
  Nom: z.string().regex(DOMAIN_NAME, 'not a domain name'),
  Description: text.default(''),
  DNCertificatOperateur: z
    .string()
    .min(1, 'empty DNCertificatOperateur')
    .max(4096)
    .superRefine((dn, ctx) => {
      try {
        parseDn(dn);
      } catch (err) {
        if (!(err instanceof DnSyntaxError)) throw err;
        ctx.addIssue({ code: 'custom', message: `DNCertificatOperateur: ${err.message}` });
      }
    }),
  ResponsableContact: text.default(''),
  SupportContact: text.default(''),
  DateMAJ: isoDate.optional(),
});

function issueText(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** The XML, decoded and checked for what is refused before any parsing. */
function checkedText(xml: Buffer | string, maxBytes: number): string {
  const size = typeof xml === 'string' ? Buffer.byteLength(xml) : xml.length;
  if (size > maxBytes) throw new TrustListError(`the list is ${size} bytes, over the ${maxBytes}-byte limit`);
  let s: string;
  try {
    s = typeof xml === 'string' ? xml : new TextDecoder('utf-8', { fatal: true }).decode(xml);
  } catch {
    throw new TrustListError('the list is not UTF-8 text');
  }
  if (/<!DOCTYPE/i.test(s) || /<!ENTITY/i.test(s)) throw new TrustListError('DOCTYPE and entity declarations are refused in a trust list');
  return s.replace(/^\uFEFF/, '');
}

type XmlNode = Record<string, unknown>;

const isNode = (v: unknown): v is XmlNode => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and validates a list. Throws `TrustListError` when it cannot be used at all. */
export function parseTrustList(xml: Buffer | string, options: { maxBytes?: number } = {}): ParsedTrustList {
  const source = checkedText(xml, options.maxBytes ?? DEFAULT_MAX_TRUST_LIST_BYTES);
  const valid = XMLValidator.validate(source);
  if (valid !== true) throw new TrustListError(`not well-formed XML (line ${valid.err.line}, column ${valid.err.col}): ${valid.err.msg}`);
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    processEntities: true,
    htmlEntities: false,
    isArray: (name) => name === 'Domaine' || name.endsWith(':Domaine'),
  });
  const doc = parser.parse(source) as XmlNode;
  const rootName = Object.keys(doc).find((k) => !k.startsWith('?') && !k.startsWith('#'));
  const root = rootName === undefined ? undefined : doc[rootName];
  const colon = rootName?.indexOf(':') ?? -1;
  const prefix = rootName && colon > 0 ? rootName.slice(0, colon) : '';
  if (!rootName || rootName.slice(colon + 1) !== 'ListeBlancheMSSante' || !isNode(root)) {
    throw new TrustListError(`the root element is ${rootName ? `<${rootName}>` : 'missing'}, not <ListeBlancheMSSante>`);
  }
  const namespace = root[prefix ? `@_xmlns:${prefix}` : '@_xmlns'];
  if (namespace !== TRUST_LIST_NAMESPACE) {
    throw new TrustListError(`the root element is not in the namespace ${TRUST_LIST_NAMESPACE} (found ${namespace === undefined ? 'none' : JSON.stringify(namespace)})`);
  }
  const child = (node: XmlNode, name: string): unknown => node[prefix ? `${prefix}:${name}` : name];

  const generated = isoDate.safeParse(child(root, 'DateDeGeneration'));
  if (!generated.success) throw new TrustListError('DateDeGeneration is missing or not an ISO 8601 date-time');
  const listNode = child(root, 'ListeDomaines');
  const entries = isNode(listNode) ? child(listNode, 'Domaine') : undefined;
  const elements = Array.isArray(entries) ? (entries as unknown[]) : [];

  const domains: TrustDomain[] = [];
  const skipped: SkippedDomain[] = [];
  elements.forEach((element, i) => {
    const fields: Record<string, unknown> = {};
    if (isNode(element)) {
      for (const name of ['Nom', 'Description', 'DNCertificatOperateur', 'ResponsableContact', 'SupportContact', 'DateMAJ']) {
        const value = child(element, name);
        // An empty element (<SupportContact/>) comes back as "".
        if (value !== undefined) fields[name] = value;
      }
    }
    const parsed = domainSchema.safeParse(fields);
    if (!parsed.success) {
      skipped.push({ index: i + 1, name: typeof fields.Nom === 'string' ? fields.Nom : null, reason: issueText(parsed.error) });
      return;
    }
    const d = parsed.data;
    domains.push({
      name: d.Nom,
      description: d.Description,
      operatorDn: d.DNCertificatOperateur,
      responsableContact: d.ResponsableContact,
      supportContact: d.SupportContact,
      updatedAt: d.DateMAJ ?? generated.data,
    });
  });
  if (domains.length === 0) {
    throw new TrustListError(elements.length === 0 ? 'the list holds no Domaine entry' : `none of the ${elements.length} Domaine entries is usable (first: ${skipped[0]?.reason})`);
  }
  const sha256 = createHash('sha256').update(typeof xml === 'string' ? Buffer.from(xml) : xml).digest('hex');
  return { generatedAt: generated.data, domains, skipped, sha256 };
}

// ---------------------------------------------------------------------------------------------------------
// Export

/** XML 1.0 text: markup characters escaped, characters XML cannot carry dropped. */
function xmlText(value: string): string {
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** ISO 8601 in UTC to the second, as the authority writes it (`2025-03-13T14:54:10Z`). */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A list in the authority's format (UTF-8), entries in the order given. */
export function exportTrustList(list: { generatedAt: number; domains: readonly TrustDomain[] }): string {
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?><ListeBlancheMSSante xmlns="${TRUST_LIST_NAMESPACE}">`,
    `    <DateDeGeneration>${isoSeconds(list.generatedAt)}</DateDeGeneration>`,
    '    <ListeDomaines>',
  ];
  for (const d of list.domains) {
    lines.push(
      '        <Domaine>',
      `            <Nom>${xmlText(d.name)}</Nom>`,
      `            <Description>${xmlText(d.description)}</Description>`,
      `            <DNCertificatOperateur>${xmlText(d.operatorDn)}</DNCertificatOperateur>`,
      `            <ResponsableContact>${xmlText(d.responsableContact)}</ResponsableContact>`,
      `            <SupportContact>${xmlText(d.supportContact)}</SupportContact>`,
      `            <DateMAJ>${isoSeconds(d.updatedAt)}</DateMAJ>`,
      '        </Domaine>',
    );
  }
  lines.push('    </ListeDomaines>', '</ListeBlancheMSSante>', '');
  return lines.join('\n');
}
