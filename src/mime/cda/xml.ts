import { XMLParser, XMLValidator } from 'fast-xml-parser';

/**
 * Safe XML reading for documents that come from outside (CDA R2, IHE XDM metadata): a document type
 * declaration is refused outright, which rules out external entities (XXE) and entity expansion (billion
 * laughs) without having to trust any entity handling; size and nesting depth are bounded; the document must
 * be well-formed. Only the five predefined entities and character references are decoded.
 *
 * The result is a small namespace-aware tree: elements (with the resolved namespace URI of their prefix) and
 * text strings, in document order, which mixed content such as CDA narrative blocks needs.
 */

export interface XmlLimits {
  /** Largest document accepted, in bytes. */
  maxBytes: number;
  /** Deepest element nesting accepted. */
  maxDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = {
  maxBytes: 32 * 1024 * 1024,
  maxDepth: 200,
};

export type XmlUnsafeReason = 'doctype' | 'too-large' | 'too-deep';

/** The document was refused before or while parsing because reading it could be dangerous. */
export class XmlUnsafeError extends Error {
  constructor(
    readonly reason: XmlUnsafeReason,
    message: string,
  ) {
    super(message);
    this.name = 'XmlUnsafeError';
  }
}

/** The document is not well-formed XML (or not in an encoding we read). */
export class XmlMalformedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlMalformedError';
  }
}

export interface XmlElement {
  /** The name as written, prefix included. */
  readonly name: string;
  /** The name without its prefix. */
  readonly local: string;
  /** Namespace URI of the element; null when it has none or its prefix is not declared. */
  readonly ns: string | null;
  /** Attributes by name as written (prefix included), values decoded; a null-prototype object. */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlNode[];
}

export type XmlNode = XmlElement | string;

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the predefined entities and character references; anything else stays as written. */
export function decodeXmlText(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);/g, (whole, ref: string) => {
    if (ref[0] !== '#') return PREDEFINED[ref]!;
    const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
  });
}

/** Text of the XML declaration's encoding, read from the ASCII-compatible start of the bytes. */
function declaredEncoding(bytes: Buffer): string | null {
  const head = bytes.toString('latin1', 0, Math.min(bytes.length, 200));
  const m = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head);
  return m ? m[1]!.toLowerCase() : null;
}

/** Bytes to text: a byte-order mark wins, then the XML declaration, then UTF-8. */
export function decodeXmlBytes(bytes: Buffer): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.toString('utf8', 3);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes.subarray(2));
  const label = declaredEncoding(bytes) ?? 'utf-8';
  try {
    return new TextDecoder(label).decode(bytes);
  } catch {
    throw new XmlMalformedError(`unsupported XML encoding ${JSON.stringify(label)}`);
  }
}

const parser = (maxDepth: number) =>
  new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    // Entities are decoded here (decodeXmlText), never by the parser: no DTD is ever read.
    processEntities: false,
    cdataPropName: '#cdata',
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    maxNestedTags: maxDepth,
  });

type RawNode = Record<string, unknown>;

function rawText(children: unknown): string {
  if (!Array.isArray(children)) return '';
  return children.map((c) => (typeof (c as RawNode)['#text'] === 'string' ? ((c as RawNode)['#text'] as string) : '')).join('');
}

/** Converts fast-xml-parser's ordered output into XmlNodes, resolving namespace prefixes. */
function convert(nodes: unknown, scopes: ReadonlyMap<string, string>, depth: number, maxDepth: number): XmlNode[] {
  if (!Array.isArray(nodes)) return [];
  if (depth > maxDepth) throw new XmlUnsafeError('too-deep', `XML nesting deeper than ${maxDepth} elements`);
  const out: XmlNode[] = [];
  for (const node of nodes as RawNode[]) {
    if (typeof node['#text'] === 'string') {
      out.push(decodeXmlText(node['#text']));
      continue;
    }
    if (node['#cdata'] !== undefined) {
      out.push(rawText(node['#cdata']));
      continue;
    }
    const name = Object.keys(node).find((k) => k !== ':@');
    if (name === undefined) continue;
    const rawAttrs = (node[':@'] ?? {}) as Record<string, unknown>;
    const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
    let inner: Map<string, string> | null = null;
    for (const [key, value] of Object.entries(rawAttrs)) {
      const decoded = decodeXmlText(String(value));
      attrs[key] = decoded;
      if (key === 'xmlns' || key.startsWith('xmlns:')) {
        inner ??= new Map(scopes);
        inner.set(key === 'xmlns' ? '' : key.slice(6), decoded);
      }
    }
    const scope = inner ?? scopes;
    const colon = name.indexOf(':');
    const prefix = colon > 0 ? name.slice(0, colon) : '';
    const local = colon > 0 ? name.slice(colon + 1) : name;
    out.push({ name, local, ns: scope.get(prefix) || null, attrs, children: convert(node[name], scope, depth + 1, maxDepth) });
  }
  return out;
}

/**
 * Parses an XML document from bytes (or already decoded text) into its root element. Throws `XmlUnsafeError`
 * for a document type declaration, a document over `maxBytes` or nested deeper than `maxDepth`, and
 * `XmlMalformedError` for anything that is not one well-formed element.
 *
 * A `<!DOCTYPE` or `<!ENTITY` anywhere is refused, even inside a comment or CDATA section: being stricter than
 * needed is cheaper than parsing declarations safely.
 */
export function parseXml(input: Buffer | string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (size > limits.maxBytes) throw new XmlUnsafeError('too-large', `XML document of ${size} bytes exceeds the limit of ${limits.maxBytes}`);
  const text = typeof input === 'string' ? input : decodeXmlBytes(input);
  if (/<!\s*(?:DOCTYPE|ENTITY)/i.test(text)) {
    throw new XmlUnsafeError('doctype', 'XML document type declarations (DOCTYPE, ENTITY) are refused');
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new XmlMalformedError(`not well-formed XML (line ${valid.err.line}: ${valid.err.code})`);
  let parsed: unknown;
  try {
    parsed = parser(limits.maxDepth).parse(text);
  } catch (err) {
    if (err instanceof Error && /nested tags/i.test(err.message)) {
      throw new XmlUnsafeError('too-deep', `XML nesting deeper than ${limits.maxDepth} elements`);
    }
    // The parser's message may quote the input: keep only that it failed.
    throw new XmlMalformedError('XML document could not be parsed');
  }
  const roots = convert(parsed, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]), 0, limits.maxDepth).filter(isElement);
  if (roots.length !== 1) throw new XmlMalformedError(`expected one root element, found ${roots.length}`);
  return roots[0]!;
}

export function isElement(node: XmlNode): node is XmlElement {
  return typeof node !== 'string';
}

/** Child elements with this local name (and namespace, when given; `undefined` matches any). */
export function childElements(el: XmlElement, local?: string, ns?: string | null): XmlElement[] {
  return el.children.filter(
    (c): c is XmlElement => isElement(c) && (local === undefined || c.local === local) && (ns === undefined || c.ns === ns),
  );
}

export function firstChild(el: XmlElement | null | undefined, local: string, ns?: string | null): XmlElement | null {
  if (!el) return null;
  for (const c of el.children) if (isElement(c) && c.local === local && (ns === undefined || c.ns === ns)) return c;
  return null;
}

/** Follows a path of local names through first children; null as soon as one is missing. */
export function descend(el: XmlElement | null, path: readonly string[], ns?: string | null): XmlElement | null {
  let at = el;
  for (const local of path) at = firstChild(at, local, ns);
  return at;
}

export function attr(el: XmlElement | null | undefined, name: string): string | null {
  if (!el) return null;
  return Object.prototype.hasOwnProperty.call(el.attrs, name) ? el.attrs[name]! : null;
}

/** All descendant text, in document order (depth is already bounded by the parse). */
export function textContent(el: XmlElement): string {
  return el.children.map((c) => (typeof c === 'string' ? c : textContent(c))).join('');
}

/** Descendant text with white space runs collapsed and trimmed; null when empty. */
export function cleanText(el: XmlElement | null | undefined): string | null {
  if (!el) return null;
  const text = textContent(el).replace(/\s+/g, ' ').trim();
  return text === '' ? null : text;
}
