/**
 * A small, strict ASN.1 reader (DER, plus the BER forms peers really send: indefinite lengths and constructed
 * OCTET STRINGs) and a DER writer. The reader never copies: every node is a view into the input Buffer, so a
 * 1 MB encrypted content costs nothing to locate, and the exact bytes of a signed structure (signed
 * attributes, tbsCertificate, tbsCertList) are available as received. Every bound is checked; anything
 * unexpected throws DerError, which the callers turn into a 'malformed' failure.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Nesting limit: CMS and certificates need about 12 levels; this keeps hostile input from recursing deep. */
const MAX_DEPTH = 48;

export const CLASS_UNIVERSAL = 0;
export const CLASS_CONTEXT = 2;

export const TAG = {
  boolean: 1,
  integer: 2,
  bitString: 3,
  octetString: 4,
  null: 5,
  oid: 6,
  utf8String: 12,
  sequence: 16,
  set: 17,
  printableString: 19,
  teletexString: 20,
  ia5String: 22,
  utcTime: 23,
  generalizedTime: 24,
  universalString: 28,
  bmpString: 30,
} as const;

export class Asn1 {
  private constructor(
    /** The whole input; `start`..`end` is this element. */
    readonly buf: Buffer,
    readonly cls: number,
    readonly constructed: boolean,
    readonly tag: number,
    readonly start: number,
    readonly contentStart: number,
    readonly contentEnd: number,
    readonly end: number,
    readonly indefinite: boolean,
    private readonly depth: number,
  ) {}

  /** Parses the single element that must fill `buf` exactly. */
  static parse(buf: Buffer): Asn1 {
    const node = Asn1.read(buf, 0, buf.length, 0);
    if (node.end !== buf.length) throw new DerError(`${buf.length - node.end} trailing bytes after the ASN.1 element`);
    return node;
  }

  /** Parses the element at `pos`, which must end before `limit`. */
  static read(buf: Buffer, pos: number, limit: number, depth: number): Asn1 {
    if (depth > MAX_DEPTH) throw new DerError('ASN.1 nesting too deep');
    if (pos >= limit) throw new DerError('ASN.1 element expected, found end of data');
    const first = buf[pos]!;
    const cls = first >> 6;
    const constructed = (first & 0x20) !== 0;
    let tag = first & 0x1f;
    let p = pos + 1;
    if (tag === 0x1f) {
      tag = 0;
      for (let n = 0; ; n++) {
        if (p >= limit || n >= 4) throw new DerError('bad ASN.1 tag');
        const b = buf[p++]!;
        tag = tag * 128 + (b & 0x7f);
        if ((b & 0x80) === 0) break;
      }
      if (tag < 0x1f) throw new DerError('bad ASN.1 tag');
    }
    if (p >= limit) throw new DerError('truncated ASN.1 length');
    const lengthByte = buf[p++]!;
    if (lengthByte === 0x80) {
      if (!constructed) throw new DerError('indefinite length on a primitive ASN.1 element');
      let q = p;
      for (;;) {
        if (q + 2 <= limit && buf[q] === 0 && buf[q + 1] === 0) {
          return new Asn1(buf, cls, constructed, tag, pos, p, q, q + 2, true, depth);
        }
        q = Asn1.read(buf, q, limit, depth + 1).end;
      }
    }
    let length = lengthByte;
    if (lengthByte > 0x80) {
      const n = lengthByte & 0x7f;
      if (n > 4 || p + n > limit) throw new DerError('unsupported or truncated ASN.1 length');
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + buf[p++]!;
    }
    const contentEnd = p + length;
    if (contentEnd > limit) throw new DerError('ASN.1 element runs past its container');
    if (cls === CLASS_UNIVERSAL && tag === 0) throw new DerError('unexpected end-of-contents marker');
    return new Asn1(buf, cls, constructed, tag, pos, p, contentEnd, contentEnd, false, depth);
  }

  /** The encoded element, header included, as received. */
  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  /** The content octets (for an indefinite-length element: without the end-of-contents marker). */
  get content(): Buffer {
    return this.buf.subarray(this.contentStart, this.contentEnd);
  }

  is(cls: number, tag: number): boolean {
    return this.cls === cls && this.tag === tag;
  }

  isUniversal(tag: number): boolean {
    return this.cls === CLASS_UNIVERSAL && this.tag === tag;
  }

  isContext(tag: number): boolean {
    return this.cls === CLASS_CONTEXT && this.tag === tag;
  }

  /** The element's children (it must be constructed). */
  children(): Asn1[] {
    if (!this.constructed) throw new DerError('constructed ASN.1 element expected');
    const out: Asn1[] = [];
    for (let p = this.contentStart; p < this.contentEnd; ) {
      const child = Asn1.read(this.buf, p, this.contentEnd, this.depth + 1);
      out.push(child);
      p = child.end;
    }
    return out;
  }

  /** Asserts the universal type and returns the element. */
  expect(tag: number, what: string): this {
    if (!this.isUniversal(tag)) throw new DerError(`${what}: unexpected ASN.1 type`);
    return this;
  }

  /** Children of a SEQUENCE (or SET), checked. */
  items(what: string, tag: number = TAG.sequence): Asn1[] {
    return this.expect(tag, what).children();
  }

  oid(): string {
    this.expect(TAG.oid, 'OBJECT IDENTIFIER');
    return decodeOid(this.content);
  }

  /** INTEGER content bytes, two's complement, as encoded. */
  integerBytes(): Buffer {
    this.expect(TAG.integer, 'INTEGER');
    if (this.content.length === 0) throw new DerError('empty INTEGER');
    return this.content;
  }

  /** A small non-negative INTEGER (versions, lengths). */
  smallInt(): number {
    const b = this.integerBytes();
    if (b.length > 4 || (b[0]! & 0x80) !== 0) throw new DerError('INTEGER out of range');
    let n = 0;
    for (const x of b) n = n * 256 + x;
    return n;
  }

  boolean(): boolean {
    this.expect(TAG.boolean, 'BOOLEAN');
    if (this.content.length !== 1) throw new DerError('bad BOOLEAN');
    return this.content[0] !== 0;
  }

  /**
   * The octets of an OCTET STRING, primitive or constructed (BER chunks, joined). `implicit` accepts an
   * implicitly tagged one (e.g. `[0] IMPLICIT OCTET STRING`), whatever its tag.
   */
  octets(implicit = false): Buffer {
    if (!implicit) this.expect(TAG.octetString, 'OCTET STRING');
    if (!this.constructed) return this.content;
    const chunks = this.children().map((c) => c.octets());
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  bitString(): { unusedBits: number; bytes: Buffer } {
    this.expect(TAG.bitString, 'BIT STRING');
    if (this.constructed || this.content.length === 0) throw new DerError('unsupported BIT STRING');
    const unusedBits = this.content[0]!;
    if (unusedBits > 7 || (unusedBits > 0 && this.content.length === 1)) throw new DerError('bad BIT STRING');
    return { unusedBits, bytes: this.content.subarray(1) };
  }

  /** UTCTime or GeneralizedTime, UTC ("Z") forms as RFC 5280 requires. */
  time(): Date {
    if (this.constructed) throw new DerError('bad time');
    const s = this.content.toString('latin1');
    let m: RegExpExecArray | null;
    if (this.isUniversal(TAG.utcTime)) {
      m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(s);
      if (!m) throw new DerError('bad UTCTime');
      const yy = Number(m[1]);
      return utc(yy >= 50 ? 1900 + yy : 2000 + yy, m[2]!, m[3]!, m[4]!, m[5]!, m[6] ?? '00', '');
    }
    if (this.isUniversal(TAG.generalizedTime)) {
      m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?Z$/.exec(s);
      if (!m) throw new DerError('bad GeneralizedTime');
      return utc(Number(m[1]), m[2]!, m[3]!, m[4]!, m[5]!, m[6]!, m[7] ?? '');
    }
    throw new DerError('time expected');
  }

  /** A character string (directory strings, IA5String), decoded. */
  text(): string {
    if (this.constructed || this.cls !== CLASS_UNIVERSAL) {
      if (this.cls === CLASS_CONTEXT && !this.constructed) return this.content.toString('latin1'); // IMPLICIT IA5String
      throw new DerError('character string expected');
    }
    switch (this.tag) {
      case TAG.utf8String:
        return this.content.toString('utf8');
      case TAG.printableString:
      case TAG.ia5String:
      case TAG.teletexString:
        return this.content.toString('latin1');
      case TAG.bmpString: {
        if (this.content.length % 2) throw new DerError('bad BMPString');
        const swapped = Buffer.from(this.content);
        swapped.swap16();
        return swapped.toString('utf16le');
      }
      case TAG.universalString: {
        if (this.content.length % 4) throw new DerError('bad UniversalString');
        let out = '';
        for (let i = 0; i < this.content.length; i += 4) out += String.fromCodePoint(this.content.readUInt32BE(i));
        return out;
      }
      default:
        throw new DerError('character string expected');
    }
  }
}

function utc(year: number, mo: string, d: string, h: string, mi: string, s: string, frac: string): Date {
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const t = Date.UTC(year, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const date = new Date(t);
  if (Number.isNaN(t) || date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw new DerError('invalid date');
  }
  return date;
}

export function decodeOid(b: Buffer): string {
  if (b.length === 0 || (b[b.length - 1]! & 0x80) !== 0) throw new DerError('bad OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (value === 0 && x === 0x80) throw new DerError('bad OBJECT IDENTIFIER');
    value = value * 128 + (x & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new DerError('OBJECT IDENTIFIER arc too large');
    if ((x & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 40 ? 0 : value < 80 ? 1 : 2;
        arcs.push(first, value - first * 40);
      } else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

// ---------------------------------------------------------------------------------------------------------
// Writer (DER)

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element: identifier octet, definite length, content. */
export function tlv(identifier: number, ...content: Buffer[]): Buffer {
  const length = content.reduce((n, c) => n + c.length, 0);
  const header = lengthBytes(length);
  return Buffer.concat([Buffer.of(identifier), header, ...content], 1 + header.length + length);
}

/**
 * The pieces of an element, header first, not joined: large contents (an encrypted 1 MB body) are nested
 * through several levels and copied once, by the caller's final Buffer.concat.
 */
export function tlvParts(identifier: number, content: readonly Buffer[]): Buffer[] {
  const length = content.reduce((n, c) => n + c.length, 0);
  return [Buffer.concat([Buffer.of(identifier), lengthBytes(length)]), ...content];
}

export const seq = (...content: Buffer[]): Buffer => tlv(0x30, ...content);

/** DER SET OF: elements sorted by their encodings (X.690 §11.6). */
export function setOf(elements: Buffer[]): Buffer {
  return tlv(0x31, ...[...elements].sort(Buffer.compare));
}

/** `[n] EXPLICIT` or a constructed `[n] IMPLICIT`. */
export const contextCons = (n: number, ...content: Buffer[]): Buffer => tlv(0xa0 | n, ...content);
/** A primitive `[n] IMPLICIT`. */
export const contextPrim = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

export const octetString = (b: Buffer): Buffer => tlv(0x04, b);
export const derNull = (): Buffer => Buffer.of(0x05, 0x00);

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: number) => {
    const chunk: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift(0x80 | (x & 0x7f));
    out.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
}

/** INTEGER from a non-negative number. */
export function int(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('INTEGER must be a non-negative safe integer');
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5652 §11.3), whole seconds. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = d.getUTCFullYear();
  const body = iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(iso.slice(2, 4) + body, 'latin1'));
  return tlv(0x18, Buffer.from(String(year).padStart(4, '0') + body, 'latin1'));
}

/** AlgorithmIdentifier: OID with optional parameters (absent, or e.g. NULL). */
export function algorithmIdentifier(algorithm: string, parameters?: Buffer): Buffer {
  return parameters ? seq(oid(algorithm), parameters) : seq(oid(algorithm));
}
