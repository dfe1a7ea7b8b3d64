import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailbox } from '../../src/accounts/mailboxes.js';
import { aad, Keyring } from '../../src/crypto/seal.js';
import { pieces, sealChunks } from '../../src/crypto/seal-stream.js';
import { ALL_SCOPES, bloomFilter, filterHas, needleProbes, SCOPE } from '../../src/imap/search/blind-index.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { SealedMail } from '../../src/store/sealed-mail.js';
import type { FolderRow, MailboxRow, Store } from '../../src/store/types.js';
import { ENGINES, openTestStore, type TestStore } from '../helpers/engines.js';

/**
 * The blind index in the store, on both engines: entries written with each message, found by their terms,
 * shared by copies, removed with the last message using them; messages without an entry listed; and nothing
 * readable in the index tables.
 */

const MARKER = 'Zanzibarite';

function message(subject: string, body: string, from = 'Claire Martin <claire@hopital.test>'): Buffer {
  return Buffer.from(
    [`From: ${from}`, 'To: Jean Dupont <jean@hopital.test>', `Subject: ${subject}`, 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n'),
  );
}

/** Every file under `dir`, whole. */
function filesUnder(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) out.push(...filesUnder(file));
    else out.push(readFileSync(file));
  }
  return out;
}

describe.each(ENGINES)('search blind index in the store (%s)', (engine) => {
  let t: TestStore;
  let store: Store;
  let keyring: Keyring;
  let mail: SealedMail;
  let mailbox: MailboxRow;
  let inbox: FolderRow;
  let archive: FolderRow;

  beforeEach(async () => {
    t = await openTestStore(engine);
    store = t.store;
    keyring = new Keyring(randomBytes(32));
    mail = new SealedMail(store, keyring);
    mailbox = await createMailbox(store, keyring, { address: 'jean.dupont@hopital.test', type: 'PER', password: 'correct horse' });
    inbox = (await store.getFolder(mailbox.id, 'INBOX'))!;
    archive = await store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Archive', specialUse: null, subscribed: true }));
  });
  afterEach(() => t.dispose());

  const deliver = (folder: FolderRow, raw: Buffer) => store.transaction((tx) => mail.append(tx, mailbox, folder, raw));
  const body = (word: string) => needleProbes(mail.searchKey(mailbox), SCOPE.body, word)!;
  const subject = (word: string) => needleProbes(mail.searchKey(mailbox), SCOPE.subject, word)!;
  const find = async (folder: FolderRow, probes: number[]) => (await store.searchIndex(folder.id, [probes])).matches[0];

  /** What an engine before migration 8 wrote: the message without an index entry. */
  async function deliverUnindexed(folder: FolderRow, raw: Buffer): Promise<number> {
    return store.transaction(async (tx) => {
      const blobId = await tx.insertBlob(mailbox.id, sealChunks(mail.key(mailbox), aad.blob(mailbox.id), pieces(raw)));
      const sealedMeta = mail.sealMeta(mailbox, buildMessageMeta(raw));
      return (await tx.appendMessage(folder.id, { blobId, sealedMeta, flags: [], internalDate: Date.now(), size: raw.length })).uid;
    });
  }

  /** Raw SQL beside the store (tests only): the engine's own view of the index tables. */
  async function sql<T>(query: string, params: unknown[] = []): Promise<T[]> {
    if (engine === 'sqlite') {
      const db = new Database(path.join(t.dir, 'mss.sqlite'), { readonly: true });
      try {
        return db.prepare(query).all(...params) as T[];
      } finally {
        db.close();
      }
    }
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      return (await client.query(query, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  const entries = async () => Number((await sql<{ n: number | string }>('SELECT count(*) AS n FROM search_docs'))[0]!.n);

  /** Blob ids whose stored filter has the probes, read from the table. */
  async function blobsWith(probes: number[]): Promise<number[]> {
    const rows = await sql<{ blob_id: number | string; filter: Buffer }>('SELECT blob_id, filter FROM search_docs ORDER BY blob_id');
    return rows.filter((r) => filterHas(r.filter, probes)).map((r) => Number(r.blob_id));
  }

  it('writes an entry with each message and finds messages by all the probes of a needle, per scope', async () => {
    const a = await deliver(inbox, message('Compte rendu opératoire', 'Cholécystectomie sans complication.'));
    const b = await deliver(inbox, message('Résultats', 'Hémoglobine normale, cholestérol élevé.'));
    await deliver(archive, message('Compte rendu', 'Cholécystectomie prévue.'));
    expect(await entries()).toBe(3);
    expect(await find(inbox, body('cholécystectomie'))).toEqual([a.uid]);
    // Case and accents are folded away in the index (the exact match decides after).
    expect(await find(inbox, body('CHOLECYSTECTOMIE'))).toEqual([a.uid]);
    expect(await find(inbox, body('chol'))).toEqual([a.uid, b.uid]);
    expect(await find(inbox, body('résultats'))).toEqual([]);
    expect(await find(inbox, subject('résultats'))).toEqual([b.uid]);
    expect(await find(inbox, body('absent du corpus'))).toEqual([]);
    // Several queries, one pass.
    expect((await store.searchIndex(inbox.id, [body('hémoglobine'), subject('compte rendu')])).matches).toEqual([[b.uid], [a.uid]]);
    expect((await store.searchIndex(inbox.id, [])).partial).toEqual([]);
  });

  it('lists messages without an entry, and an entry written later takes them off the list', async () => {
    const indexed = await deliver(inbox, message('Bilan', 'Bilan sanguin.'));
    const legacy = await deliverUnindexed(inbox, message('Bilan', 'Bilan hépatique.'));
    expect((await store.searchIndex(inbox.id, [])).partial).toEqual([{ uid: legacy, unindexed: null }]);
    expect(await find(inbox, body('bilan'))).toEqual([indexed.uid]);
    const [row] = await store.getMessages(inbox.id, [legacy]);
    await store.transaction((tx) => tx.indexMessage(row!.id, { filter: bloomFilter(body('bilan hépatique')), unindexed: SCOPE.header }));
    // Written once: a second entry for the same content changes nothing.
    await store.transaction((tx) => tx.indexMessage(row!.id, { filter: bloomFilter(body('autre chose')), unindexed: 0 }));
    expect((await store.searchIndex(inbox.id, [])).partial).toEqual([{ uid: legacy, unindexed: SCOPE.header }]);
    expect(await find(inbox, body('bilan'))).toEqual([indexed.uid, legacy]);
    expect(await find(inbox, body('autre chose'))).toEqual([]);
  });

  it('shares the entry with copies and removes it with the last message using it', async () => {
    const original = await deliver(inbox, message('Sortie', 'Sortie prévue lundi.'));
    const copied = await store.transaction((tx) => tx.copyMessages(inbox.id, [original.uid], archive.id));
    const copy = copied.copies[0]!.uid;
    expect(await find(archive, body('sortie prévue'))).toEqual([copy]);
    expect(await entries()).toBe(1);
    const [row] = await store.getMessages(archive.id, [copy]);
    expect(await blobsWith(body('sortie prévue'))).toEqual([row!.blobId]);

    // MOVE is a copy then an expunge of the original: the copy keeps the entry.
    await store.transaction((tx) => tx.expunge(inbox.id, [original.uid]));
    expect(await find(archive, body('sortie prévue'))).toEqual([copy]);
    expect(await entries()).toBe(1);

    await store.transaction((tx) => tx.expunge(archive.id, [copy]));
    expect(await entries()).toBe(0);
  });

  it('removes the entries of a deleted folder', async () => {
    await deliver(archive, message('Archive', 'Ancien compte rendu.'));
    await deliver(inbox, message('Courant', 'Compte rendu récent.'));
    expect(await entries()).toBe(2);
    await store.transaction((tx) => tx.deleteFolder(archive.id));
    expect(await entries()).toBe(1);
    expect(await blobsWith(body('ancien compte'))).toEqual([]);
    expect(await blobsWith(body('compte rendu récent'))).toHaveLength(1);
  });

  it('leaves out a body too large to index, and says so', async () => {
    // Random words: far more distinct trigrams than an entry may hold.
    const words = Array.from({ length: 30_000 }, () => randomBytes(6).toString('base64url'));
    const big = await deliver(inbox, message('Gros', words.join(' ')));
    expect((await store.searchIndex(inbox.id, [])).partial).toEqual([{ uid: big.uid, unindexed: SCOPE.body }]);
    expect(await find(inbox, subject('gros'))).toEqual([big.uid]);
    expect(ALL_SCOPES & SCOPE.body).toBe(SCOPE.body);
  });

  it('indexes a message appended as a stream', async () => {
    const raw = message('Flux', 'Envoyé par morceaux.');
    const stream = async function* () {
      for (let i = 0; i < raw.length; i += 7) yield raw.subarray(i, i + 7);
    };
    const appended = await store.transaction((tx) => mail.append(tx, mailbox, inbox, stream(), { meta: buildMessageMeta(raw) }));
    expect(await find(inbox, body('par morceaux'))).toEqual([appended.uid]);
    expect((await store.searchIndex(inbox.id, [])).partial).toEqual([]);
  });

  it('tests every bit of the filters as the JavaScript reference does, for probe lists of every length', async () => {
    const uids: number[] = [];
    for (let i = 0; i < 6; i++) uids.push((await deliver(inbox, message(`Note ${i}`, randomBytes(40 * (i + 1)).toString('base64')))).uid);
    const rows = await store.getMessages(inbox.id, uids);
    const uidOf = new Map(rows.map((r) => [r.blobId, r.uid]));
    // Random probes, up to 2^48 like the keyed terms: one or two of them hit a real share of the filters.
    const probe = () => randomBytes(6).readUIntBE(0, 6);
    for (let n = 1; n <= 7; n++) {
      for (let round = 0; round < 12; round++) {
        const queries = [Array.from({ length: n <= 2 ? n : 1 }, probe), Array.from({ length: n }, probe)];
        const scan = await store.searchIndex(inbox.id, queries);
        for (const [q, probes] of queries.entries()) {
          expect(scan.matches[q]).toEqual((await blobsWith(probes)).map((blob) => uidOf.get(blob)).sort((a, b) => a! - b!));
        }
      }
    }
  });

  it('keeps nothing readable in the index: a filter of pseudo-random bits', async () => {
    await deliver(inbox, message(`Marqueur ${MARKER}`, `Le mot ${MARKER} est dans le corps.`, `${MARKER} <${MARKER.toLowerCase()}@hopital.test>`));
    expect(await find(inbox, body(MARKER))).toHaveLength(1);
    const needles = [MARKER, MARKER.toLowerCase(), MARKER.toUpperCase()].flatMap((w) => [Buffer.from(w), Buffer.from(Buffer.from(w).toString('hex'))]);
    needles.push(Buffer.from(MARKER.toLowerCase(), 'utf16le'));
    let scanned: Buffer[];
    const rows = await sql<{ filter: Buffer; unindexed: number }>('SELECT filter, unindexed FROM search_docs');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.filter.length % 64).toBe(0);
    expect(rows[0]!.unindexed).toBe(0);
    if (engine === 'sqlite') {
      scanned = filesUnder(t.dir); // the database, its WAL and shared memory
      // The scan sees what is in clear (the mailbox address), so it would see the marker.
      expect(scanned.some((bytes) => bytes.includes(Buffer.from(mailbox.address)))).toBe(true);
    } else {
      // The relation files themselves, after a checkpoint: the table, its TOAST table and its primary key.
      const dump = await sql<{ row: string }>('SELECT row_to_json(d)::text AS row FROM search_docs d');
      expect(dump).toHaveLength(1);
      await sql('CHECKPOINT');
      const files = await sql<{ bytes: Buffer }>(
        `SELECT pg_read_binary_file(pg_relation_filepath(c.oid)) AS bytes FROM pg_class c
          WHERE c.relname IN ('search_docs', 'search_docs_pkey')
             OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE relname = 'search_docs')`,
      );
      expect(files).toHaveLength(3);
      expect(Buffer.concat(files.map((r) => r.bytes)).length).toBeGreaterThan(0);
      scanned = [...files.map((r) => r.bytes), ...dump.map((r) => Buffer.from(r.row))];
      // The files read are the ones holding the entry: its filter is there.
      expect(files.some((r) => r.bytes.includes(rows[0]!.filter))).toBe(true);
    }
    for (const bytes of scanned) for (const needle of needles) expect(bytes.includes(needle)).toBe(false);
  });
});
