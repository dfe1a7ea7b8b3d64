import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { KEY_LEN, open, SealError } from './seal.js';

/**
 * Segmented (streaming) sealing for values too large to hold whole, such as message bodies: the STREAM
 * construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) with AES-256-GCM, laid out like Tink's
 * AES-GCM-HKDF streaming AEAD.
 *
 * Layout: version (1 byte = 2) | salt (16) | nonce prefix (7) | segment 0 | segment 1 | … | last segment.
 * Each segment is 64 KiB of plaintext (the last one 0 to 64 KiB) sealed with AES-256-GCM, ciphertext then its
 * 16-byte tag, under a per-value subkey HKDF-SHA256(key, salt, "mss-seal-stream|" + associated data) and the
 * nonce prefix | segment number (4 bytes, big-endian) | 1 if last else 0.
 *
 * The subkey binds the value to its associated data and salt, the nonce to its position and to being last:
 * a flipped byte, segments reordered, a segment taken from another value, a value cut at a segment boundary
 * or extended after its last segment all fail authentication (`SealError`). An opener hands out plaintext
 * segment by segment, before the end is authenticated: a consumer must treat an error at the end as the
 * failure of the whole value (`openBuffer` returns only after everything is authenticated).
 *
 * The opener also reads version 1 values (`seal.ts`, sealed whole): those are buffered and opened at the end.
 */

export const STREAM_VERSION = 2;
/** Plaintext bytes per segment. */
export const SEGMENT_SIZE = 64 * 1024;
const SALT_LEN = 16;
const PREFIX_LEN = 7;
const TAG_LEN = 16;
export const HEADER_LEN = 1 + SALT_LEN + PREFIX_LEN;
/** Sealed bytes of a full segment. */
const SEALED_SEGMENT = SEGMENT_SIZE + TAG_LEN;
const MAX_SEGMENTS = 0x1_0000_0000;

function subkey(key: Buffer, salt: Buffer, aad: string): Buffer {
  if (key.length !== KEY_LEN) throw new SealError('sealing key must be 32 bytes');
  return hkdfSha256(key, salt, Buffer.from(`mss-seal-stream|${aad}`, 'utf8'));
}

const FIRST_BLOCK = Buffer.from([1]);

/**
 * HKDF-SHA256 (RFC 5869) of one output block (32 bytes), from two HMACs: the same bytes as `hkdfSync('sha256',
 * ikm, salt, info, 32)` (tested), at a third of its cost, which builds key objects on every call. Every message
 * opened pays one.
 */
export function hkdfSha256(ikm: Buffer, salt: Buffer, info: Buffer): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  return createHmac('sha256', prk).update(info).update(FIRST_BLOCK).digest();
}

function nonce(prefix: Buffer, counter: number, last: boolean): Buffer {
  if (counter >= MAX_SEGMENTS) throw new SealError('sealed stream is too long');
  const n = Buffer.alloc(PREFIX_LEN + 5);
  prefix.copy(n, 0);
  n.writeUInt32BE(counter, PREFIX_LEN);
  n[PREFIX_LEN + 4] = last ? 1 : 0;
  return n;
}

/** Byte queue: takes exact-size pieces out of chunks of any size, copying only across chunk boundaries. */
class Bytes {
  #chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    this.length -= n;
    return out;
  }

  takeAll(): Buffer {
    return this.take(this.length);
  }
}

/** Seals a value pushed in pieces of any size; each call returns the sealed bytes ready so far. */
export class StreamSealer {
  readonly #key: Buffer;
  readonly #prefix: Buffer;
  readonly #pending = new Bytes();
  #header: Buffer | null;
  #counter = 0;
  #done = false;

  constructor(key: Buffer, aad: string) {
    const salt = randomBytes(SALT_LEN);
    this.#prefix = randomBytes(PREFIX_LEN);
    this.#key = subkey(key, salt, aad);
    this.#header = Buffer.concat([Buffer.of(STREAM_VERSION), salt, this.#prefix]);
  }

  #segment(plaintext: Buffer, last: boolean): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce(this.#prefix, this.#counter++, last));
    const parts: Buffer[] = [cipher.update(plaintext), cipher.final(), cipher.getAuthTag()];
    if (this.#header) {
      parts.unshift(this.#header);
      this.#header = null;
    }
    return Buffer.concat(parts);
  }

  update(chunk: Buffer): Buffer[] {
    if (this.#done) throw new SealError('sealer already finished');
    this.#pending.push(chunk);
    const out: Buffer[] = [];
    // A full segment is sealed only once a byte beyond it has arrived: until then it may be the last one.
    while (this.#pending.length > SEGMENT_SIZE) out.push(this.#segment(this.#pending.take(SEGMENT_SIZE), false));
    return out;
  }

  final(): Buffer[] {
    if (this.#done) throw new SealError('sealer already finished');
    this.#done = true;
    return [this.#segment(this.#pending.takeAll(), true)];
  }
}

/** Opens a value pushed in pieces of any size (version 2, or version 1 buffered whole). */
export class StreamOpener {
  readonly #key: Buffer;
  readonly #aad: string;
  readonly #pending = new Bytes();
  #version: 0 | 1 | 2 = 0;
  #subkey: Buffer | null = null;
  #prefix: Buffer | null = null;
  #counter = 0;
  #done = false;

  constructor(key: Buffer, aad: string) {
    if (key.length !== KEY_LEN) throw new SealError('sealing key must be 32 bytes');
    this.#key = key;
    this.#aad = aad;
  }

  #segment(sealed: Buffer, last: boolean): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.#subkey!, nonce(this.#prefix!, this.#counter++, last));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_LEN)), decipher.final()]);
    } catch {
      throw new SealError(`sealed value failed authentication (${this.#aad.split('|')[0]})`);
    }
  }

  #readHeader(): boolean {
    if (this.#version === 0 && this.#pending.length > 0) {
      const version = this.#pending.take(1)[0];
      if (version === 1) this.#version = 1;
      else if (version === STREAM_VERSION) this.#version = 2;
      else throw new SealError('not a sealed value');
    }
    if (this.#version === 2 && this.#subkey === null) {
      if (this.#pending.length < HEADER_LEN - 1) return false;
      const salt = this.#pending.take(SALT_LEN);
      this.#prefix = Buffer.from(this.#pending.take(PREFIX_LEN));
      this.#subkey = subkey(this.#key, salt, this.#aad);
    }
    return this.#version === 2;
  }

  update(chunk: Buffer): Buffer[] {
    if (this.#done) throw new SealError('opener already finished');
    this.#pending.push(chunk);
    const out: Buffer[] = [];
    if (!this.#readHeader()) return out;
    while (this.#pending.length > SEALED_SEGMENT) out.push(this.#segment(this.#pending.take(SEALED_SEGMENT), false));
    return out;
  }

  final(): Buffer[] {
    if (this.#done) throw new SealError('opener already finished');
    this.#done = true;
    if (this.#version === 1) {
      return [open(this.#key, Buffer.concat([Buffer.of(1), this.#pending.takeAll()]), this.#aad)];
    }
    if (!this.#readHeader() || this.#subkey === null) throw new SealError('not a sealed value');
    if (this.#pending.length < TAG_LEN) throw new SealError(`sealed value is truncated (${this.#aad.split('|')[0]})`);
    return [this.#segment(this.#pending.takeAll(), true)];
  }
}

function transform(step: { update(chunk: Buffer): Buffer[]; final(): Buffer[] }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        for (const piece of step.update(chunk)) this.push(piece);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        for (const piece of step.final()) this.push(piece);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

/** A Transform from plaintext to the sealed format. */
export function sealStream(key: Buffer, aad: string): Transform {
  return transform(new StreamSealer(key, aad));
}

/** A Transform from a sealed value (version 2, or 1) to its plaintext; fails at the end if it was tampered with. */
export function openStream(key: Buffer, aad: string): Transform {
  return transform(new StreamOpener(key, aad));
}

type Source = AsyncIterable<Buffer> | Iterable<Buffer>;

/** Splits a Buffer into segment-sized views (no copy), so one large Buffer is sealed piece by piece. */
export function* pieces(value: Buffer, size = SEGMENT_SIZE): Iterable<Buffer> {
  for (let start = 0; start < value.length; start += size) yield value.subarray(start, start + size);
}

async function* through(step: { update(chunk: Buffer): Buffer[]; final(): Buffer[] }, source: Source | Buffer): AsyncIterable<Buffer> {
  // Large pieces are fed a segment at a time, so no more than a segment of output waits for the consumer.
  for await (const chunk of Buffer.isBuffer(source) ? [source] : source) {
    for (const piece of pieces(chunk)) yield* step.update(piece);
  }
  yield* step.final();
}

/** Seals `source` lazily: each sealed piece is produced as the consumer asks for it. */
export function sealChunks(key: Buffer, aad: string, source: Source | Buffer): AsyncIterable<Buffer> {
  return through(new StreamSealer(key, aad), source);
}

/** Opens `source` lazily, segment by segment; throws at the end if the value was cut or tampered with. */
export function openChunks(key: Buffer, aad: string, source: Source | Buffer): AsyncIterable<Buffer> {
  return through(new StreamOpener(key, aad), source);
}

/** Seals a whole Buffer in the segmented format. */
export function sealBuffer(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const sealer = new StreamSealer(key, aad);
  const out: Buffer[] = [];
  for (const piece of pieces(plaintext)) out.push(...sealer.update(piece));
  out.push(...sealer.final());
  return Buffer.concat(out);
}

/** Opens a whole sealed Buffer (version 2 or 1): returns only once every segment is authenticated. */
export function openBuffer(key: Buffer, sealed: Buffer, aad: string): Buffer {
  const opener = new StreamOpener(key, aad);
  const out = [...opener.update(sealed), ...opener.final()];
  return Buffer.concat(out);
}
