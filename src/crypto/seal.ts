import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * At-rest sealing: AES-256-GCM with a random 96-bit nonce and associated data naming what the bytes are
 * (so a sealed value cannot be moved to another row or mailbox unnoticed).
 *
 * Layout of a sealed value: version (1 byte = 1) | nonce (12) | ciphertext | tag (16).
 */
const VERSION = 1;
const NONCE_LEN = 12;
const TAG_LEN = 16;
export const KEY_LEN = 32;

export class SealError extends Error {}

export function seal(key: Buffer, plaintext: Buffer | string, aad: string): Buffer {
  if (key.length !== KEY_LEN) throw new SealError('sealing key must be 32 bytes');
  const nonce = randomBytes(NONCE_LEN);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext);
  const final = cipher.final();
  return Buffer.concat([Buffer.of(VERSION), nonce, body, final, cipher.getAuthTag()]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < 1 + NONCE_LEN + TAG_LEN || sealed[0] !== VERSION) throw new SealError('not a sealed value');
  const nonce = sealed.subarray(1, 1 + NONCE_LEN);
  const tag = sealed.subarray(sealed.length - TAG_LEN);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_LEN, sealed.length - TAG_LEN)), decipher.final()]);
  } catch {
    throw new SealError(`sealed value failed authentication (${aad.split('|')[0]})`);
  }
}

export function sealJson(key: Buffer, value: unknown, aad: string): Buffer {
  return seal(key, JSON.stringify(value), aad);
}

export function openJson<T>(key: Buffer, sealed: Buffer, aad: string): T {
  return JSON.parse(open(key, sealed, aad).toString('utf8')) as T;
}

/** The master key file: 32 random bytes, hex, mode 0600. */
export function masterKeyPath(dataDir: string): string {
  return path.join(dataDir, 'master.key');
}

export function createMasterKey(dataDir: string): Buffer {
  const file = masterKeyPath(dataDir);
  if (existsSync(file)) throw new SealError(`master key already exists: ${file}`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_LEN);
  writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}

export function readMasterKey(dataDir: string): Buffer {
  const file = masterKeyPath(dataDir);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new SealError(`master key file is corrupt: ${file}`);
  return Buffer.from(hex, 'hex');
}

/** Associated-data labels, one place so every sealer and opener agree. */
export const aad = {
  mailboxKey: (address: string) => `mailbox-key|${address.toLowerCase()}`,
  blob: (mailboxId: number) => `blob|${mailboxId}`,
  messageMeta: (mailboxId: number) => `message-meta|${mailboxId}`,
  privateKey: (name: string) => `private-key|${name}`,
  queueItem: (id: string) => `queue|${id}`,
} as const;

/**
 * Per-mailbox data keys, wrapped by the master key. Unwrapped keys are cached in memory for the life of
 * the process (they never touch the disk in clear).
 */
export class Keyring {
  readonly #master: Buffer;
  readonly #cache = new Map<string, Buffer>();

  constructor(masterKey: Buffer) {
    if (masterKey.length !== KEY_LEN) throw new SealError('master key must be 32 bytes');
    this.#master = masterKey;
  }

  newMailboxKey(address: string): { key: Buffer; wrapped: Buffer } {
    const key = randomBytes(KEY_LEN);
    return { key, wrapped: seal(this.#master, key, aad.mailboxKey(address)) };
  }

  mailboxKey(address: string, wrapped: Buffer): Buffer {
    const id = address.toLowerCase();
    let key = this.#cache.get(id);
    if (!key) {
      key = open(this.#master, wrapped, aad.mailboxKey(address));
      this.#cache.set(id, key);
    }
    return key;
  }

  sealWithMaster(value: Buffer | string, label: string): Buffer {
    return seal(this.#master, value, label);
  }

  openWithMaster(sealed: Buffer, label: string): Buffer {
    return open(this.#master, sealed, label);
  }
}
