import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aad } from '../../src/crypto/seal.js';
import { pieces, sealChunks } from '../../src/crypto/seal-stream.js';
import { SCOPE } from '../../src/imap/search/blind-index.js';
import { searchMessages, type SearchMessage } from '../../src/imap/search/evaluate.js';
import { parseSearchKeys } from '../../src/imap/search/keys.js';
import { tokenize } from '../../src/imap/tokenizer.js';
import { buildMessageMeta } from '../../src/mime/meta.js';
import { ENGINES } from '../helpers/engines.js';
import { ImapLineClient, startImapServer, type ImapTestServer } from './harness.js';

/**
 * SEARCH through the blind index, over IMAP on both engines: the same answers as the full scan on a corpus with
 * accents, case, encoded words, transfer encodings, charsets, alternatives, attached messages and a body too large
 * to index; far fewer messages opened (counted by the audit record each search leaves); copies and moved messages
 * found through the shared entry; messages from before the index found, then indexed by the search that opened them.
 */

const FIXTURES = new URL('../fixtures/email/', import.meta.url);
const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n') + '\r\n');
const b64 = (text: string) => Buffer.from(text).toString('base64');

const NEEDLE = 'aiguille-dans-la-botte';

/** The corpus, in delivery order (UID n is CORPUS[n - 1] in each folder it is put in whole). */
const CORPUS: { raw: Buffer; flagged?: boolean }[] = [
  {
    raw: crlf([
      'From: "Claire Martin" <claire.martin@hopital.test>',
      'To: Bob Durand <bob@clinique.test>',
      'Subject: Compte rendu opératoire',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Le patient présente une cholécystite aiguë.',
      'Intervention : cholécystectomie.',
    ]),
  },
  {
    raw: crlf([
      'From: =?ISO-8859-1?Q?Ren=E9e_Dupr=E9?= <renee.dupre@labo.test>',
      'To: claire.martin@hopital.test',
      "Subject: =?UTF-8?Q?R=C3=A9sultats_d=27analyses?=",
      'X-Dossier: ABC-12345',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'H=E9moglobine : 13,5 g/dL=0D',
      'Cholest=E9rol : normal',
    ]),
  },
  {
    flagged: true,
    raw: crlf([
      'From: Dr House <house@ppth.test>',
      'To: claire.martin@hopital.test',
      'Cc: Wilson <wilson@ppth.test>',
      'Bcc: secret-copy@ppth.test',
      'Subject: URGENT: Bilan SANGUIN',
      'Content-Type: multipart/alternative; boundary="alt"',
      '',
      '--alt',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      b64('ÉCHOGRAPHIE abdominale normale.\r\nBilan sanguin complet demandé.'),
      '--alt',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>&Eacute;chographie <b>abdominale</b> normale.</p>',
      '--alt--',
    ]),
  },
  {
    raw: crlf([
      'From: =?UTF-8?B?U2VjcsOpdGFyaWF0?= <secretariat@hopital.test>',
      'To: claire.martin@hopital.test',
      'Subject: Transmission',
      'Content-Type: multipart/mixed; boundary="mix"',
      '',
      '--mix',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'Voir le courrier joint.',
      '--mix',
      'Content-Type: message/rfc822',
      '',
      'From: Service de chirurgie <chir@hopital.test>',
      'Subject: =?UTF-8?Q?Courrier_de_sortie?=',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Sortie prévue le lundi. İstanbul, Straße, 𝔸𝔹ℂ, 5 µg.',
      '--mix',
      'Content-Type: application/pdf; name="cr.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      b64('%PDF-1.4 secretpdfword'),
      '--mix--',
    ]),
  },
  {
    raw: crlf(['From: alpha@test.test', 'To: claire.martin@hopital.test', 'Subject: Alpha', 'Content-Type: text/plain; charset=utf-8', '', 'alpha\tbeta', 'GAMMA   delta']),
  },
  {
    // A body with far more distinct trigrams than an entry may hold: left out of the index, always a candidate.
    raw: crlf([
      'From: bulk@test.test',
      'To: claire.martin@hopital.test',
      'Subject: Gros volume',
      'Content-Type: text/plain; charset=utf-8',
      '',
      ...Array.from({ length: 3000 }, () => Array.from({ length: 10 }, () => randomBytes(6).toString('base64url')).join(' ')),
      `fin ${NEEDLE}`,
    ]),
  },
  ...['compte-rendu-qp.eml', 'MessageWithAttachment.txt', 'DSNMessage.txt', 'binary-parts.eml', 'thread-1.eml'].map((f) => ({
    raw: readFileSync(new URL(f, FIXTURES)),
  })),
];
const BIG = 6; // UID of the message whose body is not indexed

/** Search criteria as a client writes them (UTF-8 in quoted strings; sent as literals). */
const CASES = [
  'SUBJECT "résultats"',
  'SUBJECT "RESULTATS"',
  'SUBJECT "bilan"',
  'SUBJECT "compte"',
  'SUBJECT "échographie"',
  'SUBJECT "zzzzzz"',
  'FROM "renée"',
  'FROM "DUPRÉ"',
  'FROM "martin"',
  'FROM "jean.dupre"',
  'FROM "secrétariat"',
  'TO "bob"',
  'CC "wilson"',
  'BCC "secret-copy"',
  'BODY "cholécystite"',
  'BODY "CHOLÉCYSTITE"',
  'BODY "cholecystite"',
  'BODY "hémoglobine"',
  'BODY "13,5 g/dl"',
  'BODY "échographie abdominale"',
  'BODY "<b>abdominale</b>"',
  'BODY "vésicule"',
  'BODY "de lésion."',
  'BODY "𝔸𝔹ℂ"',
  'BODY "istanbul"',
  'BODY "İSTANBUL"',
  'BODY "STRASSE"',
  'BODY "straße"',
  'BODY "5 µg"',
  'BODY "gamma   delta"',
  'BODY "secretpdfword"',
  'BODY "ab"',
  `BODY "${NEEDLE}"`,
  `TEXT "${NEEDLE}"`,
  'TEXT "courrier de sortie"',
  'TEXT "sortie prévue"',
  'TEXT "x-dossier: abc"',
  'TEXT "alpha beta"',
  'TEXT "lésion"',
  'HEADER X-Dossier "abc-123"',
  'HEADER X-Priorite "urgente"',
  'HEADER Message-ID ""',
  'NOT BODY "patient"',
  'NOT NOT BODY "cholécystite"',
  'OR SUBJECT "bilan" BODY "hémoglobine"',
  'NOT (OR FROM "martin" TO "bob")',
  'OR NOT BODY "normale" BODY "abdominale"',
  '(BODY "sanguin" SUBJECT "urgent")',
  'OR BODY "ab" SUBJECT "transmission"',
  'FLAGGED BODY "bilan"',
  'UNFLAGGED TEXT "bilan"',
];

/** `UID SEARCH CHARSET UTF-8 …` with every non-ASCII quoted string sent as a LITERAL+ literal. */
function searchCommand(tag: string, criteria: string): Buffer {
  const parts: Buffer[] = [Buffer.from(`${tag} UID SEARCH CHARSET UTF-8 `)];
  let last = 0;
  for (const m of criteria.matchAll(/"([^"]*)"/g)) {
    parts.push(Buffer.from(criteria.slice(last, m.index)));
    const value = Buffer.from(m[1]!);
    parts.push(/^[\x20-\x7e]*$/.test(m[1]!) ? Buffer.from(m[0]) : Buffer.concat([Buffer.from(`{${value.length}+}\r\n`), value]));
    last = m.index + m[0].length;
  }
  parts.push(Buffer.from(criteria.slice(last) + '\r\n'));
  return Buffer.concat(parts);
}

describe.each(ENGINES)('SEARCH through the blind index (%s)', (engine) => {
  let server: ImapTestServer;
  let client: ImapLineClient;
  let auditSeq = 0;
  let tags = 0;

  beforeAll(async () => {
    server = await startImapServer(engine);
    for (const m of CORPUS) await server.deliver(m.raw, m.flagged ? { flags: ['\\Flagged'] } : {});
    client = await ImapLineClient.connect(server.ports.tls, { tls: true });
    await client.line();
    await client.login();
  });
  afterAll(async () => {
    client?.close();
    await server?.dispose();
  });

  async function command(text: string): Promise<string[]> {
    const lines = await client.command(`c${++tags}`, text);
    expect(lines.at(-1)).toMatch(/^c\d+ OK/);
    return lines;
  }

  /** UIDs found through IMAP, and how many messages the search opened (from its audit record; none: 0). */
  async function search(criteria: string): Promise<{ uids: number[]; opened: number }> {
    const tag = `s${++tags}`;
    client.send(searchCommand(tag, criteria));
    const lines = await client.until(tag);
    expect(lines.at(-1), criteria).toMatch(new RegExp(`^${tag} OK`));
    const result = lines.find((l) => l.startsWith('* SEARCH'))!;
    const uids = result.split(' ').slice(2).map(Number);
    let opened = 0;
    for (const record of await server.store.readAudit(auditSeq, 1000)) {
      auditSeq = record.seq;
      const detail = JSON.parse(record.detail) as { command?: string; opened?: number };
      if (record.action === 'read' && detail.command === 'search') opened += detail.opened ?? 0;
    }
    return { uids, opened };
  }

  /** The full scan: every message the clear metadata cannot decide opened and matched by the exact rule. */
  async function fullScan(folder: string, criteria: string): Promise<{ uids: number[]; opened: number }> {
    const f = (await server.store.getFolder(server.mailbox.id, folder))!;
    const rows = await server.store.listMessages(f.id);
    const messages: SearchMessage[] = rows.map((r, i) => ({ seq: i + 1, uid: r.uid, flags: r.flags, size: r.size, internalDate: r.internalDate, modseq: r.modseq }));
    const key = parseSearchKeys(tokenize([Buffer.from(criteria)], 0));
    let opened = 0;
    const found = await searchMessages(key, messages, { uids: rows.map((r) => r.uid), saved: new Set(), now: Date.now() }, async (m) => {
      const [row] = await server.store.getMessages(f.id, [m.uid]);
      opened++;
      const meta = server.mail.openMeta(server.mailbox, row!);
      return { raw: await server.mail.openBody(server.mailbox, row!), mime: meta.mime, date: meta.envelope.date };
    });
    return { uids: found.map((m) => m.uid), opened };
  }

  it('answers every case as the full scan does, opening far fewer messages', async () => {
    await command('SELECT INBOX');
    let indexed = 0;
    let scanned = 0;
    for (const criteria of CASES) {
      const reference = await fullScan('INBOX', criteria);
      const answer = await search(criteria);
      expect(answer.uids, criteria).toEqual(reference.uids);
      expect(answer.opened, criteria).toBeLessThanOrEqual(reference.opened);
      indexed += answer.opened;
      scanned += reference.opened;
    }
    expect(scanned).toBeGreaterThan(CORPUS.length * (CASES.length - 5));
    expect(indexed).toBeLessThan(scanned / 3);
  });

  // Exact counts below use needles of many trigrams: a filter passes a probe it does not hold with ≈ 22 %, so a
  // needle of n distinct trigrams leaves a message it does not hold a candidate with ≈ 0.22^n (keys are random).
  it('opens only the candidates: the matches, index false positives, and a body too large to index', async () => {
    await command('SELECT INBOX');
    // From, To, Cc, Bcc and Subject are decided from the sealed metadata: no message is opened for them.
    expect(await search('SUBJECT "résultats d"')).toEqual({ uids: [2], opened: 0 });
    expect(await search('SUBJECT "RESULTATS D"')).toEqual({ uids: [], opened: 0 });
    expect(await search('OR SUBJECT "bilan sanguin" FROM "renée dupré"')).toEqual({ uids: [2, 3], opened: 0 });
    expect(await search('NOT SUBJECT "bilan sanguin"')).toEqual({ uids: CORPUS.map((_, i) => i + 1).filter((uid) => uid !== 3), opened: 0 });
    // Other header fields are read from the message: only the index's candidates for them are opened.
    expect(await search('HEADER X-Dossier "abc-12345"')).toEqual({ uids: [2], opened: 1 });
    expect(await search('HEADER X-Dossier "xylophonique"')).toEqual({ uids: [], opened: 0 });
    expect(await search('BODY "cholécystite"')).toEqual({ uids: [1], opened: 2 });
    expect(await search(`BODY "${NEEDLE}"`)).toEqual({ uids: [BIG], opened: 1 });
    // NOT cannot narrow by itself, but a message the index rules out for the inner key is decided unopened.
    expect(await search('NOT BODY "cholécystite"')).toEqual({ uids: CORPUS.map((_, i) => i + 1).filter((uid) => uid !== 1), opened: 2 });
    // A needle shorter than a trigram cannot use the index: every message is opened.
    expect((await search('BODY "ab"')).opened).toBe(CORPUS.length);
  });

  it('decides header searches on metadata in memory without scanning the index, with the same answers', async () => {
    await command('SELECT INBOX');
    await command('FETCH 1:* (ENVELOPE)'); // every message's metadata opened, and kept
    const store = server.store;
    const scan = store.searchIndex.bind(store);
    let scans = 0;
    store.searchIndex = (...args) => {
      scans++;
      return scan(...args);
    };
    try {
      const onMeta = ['SUBJECT "bilan"', 'FROM "DUPRÉ"', 'NOT (OR FROM "martin" TO "bob")', 'BCC "secret-copy"', 'SUBJECT "zzzzzz"'];
      for (const criteria of onMeta) {
        const reference = await fullScan('INBOX', criteria);
        expect(await search(criteria), criteria).toEqual({ uids: reference.uids, opened: 0 });
      }
      expect(scans).toBe(0);
      // A message delivered since, whose metadata nobody opened yet, is read from its row.
      const uid = await server.deliver(Buffer.from('From: a@b.fr\r\nTo: c@d.fr\r\nSubject: Nouveau bilan\r\n\r\nTexte.\r\n'));
      await command('NOOP');
      const bilan = await fullScan('INBOX', 'SUBJECT "bilan"');
      expect(bilan.uids).toContain(uid);
      expect(await search('SUBJECT "bilan"')).toEqual({ uids: bilan.uids, opened: 0 });
      expect(scans).toBe(0);
      await command(`UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
      await command('EXPUNGE');
      // A key metadata cannot decide goes through the index as before.
      expect((await search('OR SUBJECT "bilan" BODY "hémoglobine"')).uids).toEqual((await fullScan('INBOX', 'OR SUBJECT "bilan" BODY "hémoglobine"')).uids);
      expect(scans).toBe(1);
    } finally {
      store.searchIndex = scan;
    }
  });

  it('finds copies and moved messages through the entry they share with the original', async () => {
    await command('CREATE Archive');
    await command('CREATE Moved');
    await command('SELECT INBOX');
    await command('UID COPY 1 Archive');
    await command('UID MOVE 2 Moved');
    expect(await search('BODY "hémoglobine"')).toEqual({ uids: [], opened: 1 }); // the big body only
    await command('SELECT Archive');
    expect(await search('BODY "cholécystite"')).toEqual({ uids: [1], opened: 1 });
    await command('SELECT Moved');
    expect(await search('BODY "hémoglobine"')).toEqual({ uids: [1], opened: 1 });
    expect(await search('FROM "renée dupré" HEADER X-Dossier "abc-12345"')).toEqual({ uids: [1], opened: 1 });
    // The original gone, its copy keeps the entry.
    await command('SELECT INBOX');
    await command('UID STORE 1 +FLAGS.SILENT (\\Deleted)');
    await command('EXPUNGE');
    expect(await search('BODY "cholécystite"')).toEqual({ uids: [], opened: 1 });
    await command('SELECT Archive');
    expect(await search('BODY "cholécystite"')).toEqual({ uids: [1], opened: 1 });
  });

  it('finds messages stored before the index, and indexes them as a search opens them', async () => {
    const { store, mail, mailbox } = server;
    const legacy = await store.transaction((tx) => tx.insertFolder({ mailboxId: mailbox.id, name: 'Legacy', specialUse: null, subscribed: true }));
    // What the engine wrote before migration 8: the message without an index entry.
    for (const { raw } of CORPUS) {
      await store.transaction(async (tx) => {
        const blobId = await tx.insertBlob(mailbox.id, sealChunks(mail.key(mailbox), aad.blob(mailbox.id), pieces(raw)));
        // …and its metadata from before the header fields SEARCH reads were kept in it.
        const { searchHeaders: _kept, ...meta } = buildMessageMeta(raw);
        await tx.appendMessage(legacy.id, { blobId, sealedMeta: mail.sealMeta(mailbox, meta), flags: [], internalDate: Date.now(), size: raw.length });
      });
    }
    expect((await store.searchIndex(legacy.id, [])).partial.every((m) => m.unindexed === null)).toBe(true);
    await command('SELECT Legacy');
    // No entries: every message is a candidate, and the answer is the full scan's.
    const first = await search('BODY "cholécystite"');
    expect(first).toEqual({ uids: (await fullScan('Legacy', 'BODY "cholécystite"')).uids, opened: CORPUS.length });
    expect(first.uids).toEqual([1]);
    // The search indexed what it opened: the next one opens only its candidates.
    expect((await store.searchIndex(legacy.id, [])).partial).toEqual([{ uid: BIG, unindexed: SCOPE.body }]);
    expect(await search('BODY "hémoglobine"')).toEqual({ uids: [2], opened: 2 });
    for (const criteria of CASES) expect((await search(criteria)).uids, criteria).toEqual((await fullScan('Legacy', criteria)).uids);
    // Without the header fields in their metadata, the candidates for a Subject are opened.
    expect(await search('SUBJECT "résultats d"')).toEqual({ uids: [2], opened: 1 });
  });
});
