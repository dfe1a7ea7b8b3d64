/**
 * Versioned schema of the SQLite engine. A migration is never edited once released: add a new one.
 * Message content columns (`blob_chunks.data`, blob files, `messages.meta`, `queue.sealed_*`) hold sealed bytes only.
 */
export const migrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'foundation',
    sql: `
CREATE TABLE mailboxes (
  id            INTEGER PRIMARY KEY,
  address       TEXT    NOT NULL UNIQUE,
  type          TEXT    NOT NULL CHECK (type IN ('PER', 'ORG', 'APP', 'CAB', 'PATIENT')),
  owner_id      TEXT,
  display_name  TEXT,
  password_hash TEXT,
  state         TEXT    NOT NULL CHECK (state IN ('active', 'pending', 'disabled')),
  wrapped_key   BLOB    NOT NULL,
  created_at    INTEGER NOT NULL
);

CREATE TABLE folders (
  id             INTEGER PRIMARY KEY,
  mailbox_id     INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  name           TEXT    NOT NULL,
  uid_validity   INTEGER NOT NULL,
  uid_next       INTEGER NOT NULL DEFAULT 1,
  highest_modseq INTEGER NOT NULL DEFAULT 1,
  special_use    TEXT,
  subscribed     INTEGER NOT NULL DEFAULT 1,
  UNIQUE (mailbox_id, name)
);

CREATE TABLE blobs (
  id         INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  data       BLOB    NOT NULL
);

CREATE TABLE messages (
  id            INTEGER PRIMARY KEY,
  mailbox_id    INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  folder_id     INTEGER NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
  uid           INTEGER NOT NULL,
  modseq        INTEGER NOT NULL,
  flags         TEXT    NOT NULL DEFAULT '[]',
  internal_date INTEGER NOT NULL,
  size          INTEGER NOT NULL,
  blob_id       INTEGER NOT NULL REFERENCES blobs (id),
  meta          BLOB    NOT NULL,
  UNIQUE (folder_id, uid)
);
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);

CREATE TABLE queue (
  id               TEXT    PRIMARY KEY,
  destination      TEXT    NOT NULL,
  state            TEXT    NOT NULL DEFAULT 'queued',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  lease_owner      TEXT,
  lease_until      INTEGER,
  created_at       INTEGER NOT NULL,
  sealed_envelope  BLOB    NOT NULL,
  sealed_message   BLOB    NOT NULL
);
CREATE INDEX queue_due ON queue (state, next_attempt_at);

CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  time      TEXT    NOT NULL,
  actor     TEXT    NOT NULL,
  action    TEXT    NOT NULL,
  object    TEXT    NOT NULL,
  outcome   TEXT    NOT NULL,
  detail    TEXT    NOT NULL,
  prev_hash TEXT    NOT NULL,
  hash      TEXT    NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit journal is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit journal is append-only'); END;

CREATE TABLE auth_failures (
  key          TEXT    PRIMARY KEY,
  failures     INTEGER NOT NULL,
  locked_until INTEGER NOT NULL DEFAULT 0,
  updated_at   INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'folder-lifecycle',
    // Expunge and folder deletion drop a blob once no message refers to it (a COPY shares the blob).
    // UIDVALIDITY comes from a counter that never goes back: a deleted folder's row id can be reused, and a
    // folder re-created under the same name must not get the UIDVALIDITY of the one deleted.
    sql: `
CREATE INDEX messages_by_blob ON messages (blob_id);
CREATE TABLE uid_validity_counter (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
INSERT INTO uid_validity_counter (id, last) SELECT 1, coalesce(max(uid_validity), 0) FROM folders;
`,
  },
  {
    version: 3,
    name: 'audit-staging',
    // PostgreSQL stages audit records in `audit_pending` and links them after the commit; SQLite's units of
    // work are serialised and link at once, so it needs no table. The version keeps both schemas numbered alike.
    sql: '',
  },
  {
    version: 4,
    name: 'streamed-blobs',
    // Blob bytes move out of the one `blobs.data` value into chunk rows of 256 KiB (written and read one at a
    // time), or into a file of the blob directory named by `blobs.file`; `size` is the sealed length. Existing
    // values are cut into chunks here, then the column goes: one way to read a blob. Bytes sealed whole
    // (format version 1) stay as they are and still open.
    sql: `
CREATE TABLE blob_chunks (
  id      INTEGER PRIMARY KEY,
  blob_id INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
  seq     INTEGER NOT NULL,
  data    BLOB    NOT NULL,
  UNIQUE (blob_id, seq)
);
ALTER TABLE blobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN file TEXT;
CREATE UNIQUE INDEX blobs_by_file ON blobs (file);
INSERT INTO blob_chunks (blob_id, seq, data)
WITH RECURSIVE parts (blob_id, seq) AS (
  SELECT id, 0 FROM blobs WHERE length(data) > 0
  UNION ALL
  SELECT p.blob_id, p.seq + 1 FROM parts p JOIN blobs b ON b.id = p.blob_id WHERE (p.seq + 1) * 262144 < length(b.data)
)
SELECT p.blob_id, p.seq, substr(b.data, p.seq * 262144 + 1, 262144) FROM parts p JOIN blobs b ON b.id = p.blob_id ORDER BY p.blob_id, p.seq;
UPDATE blobs SET size = length(data);
ALTER TABLE blobs DROP COLUMN data;
`,
  },
  {
    version: 5,
    name: 'directory',
    // The practitioner directory (docs/decisions/0007-directory.md): rows imported from the public extraction
    // files by snapshots, kept inactive (removed_snapshot) when a later snapshot no longer has them. Column
    // layouts follow ENTITY_SPECS (src/store/directory-types.ts); the index names `<table>_key` and
    // `<table>_<columns>` are used by the bulk loader, which drops and rebuilds them around large loads.
    sql: `
CREATE TABLE dir_snapshots (
  id            INTEGER PRIMARY KEY,
  kind          TEXT    NOT NULL CHECK (kind IN ('mss', 'ps')),
  status        TEXT    NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
  base_id       INTEGER,
  source_name   TEXT    NOT NULL,
  source_sha256 TEXT,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  rows_total    INTEGER NOT NULL DEFAULT 0,
  rows_bad      INTEGER NOT NULL DEFAULT 0,
  diff          TEXT    NOT NULL DEFAULT '{}',
  error         TEXT
);
CREATE INDEX dir_snapshots_kind ON dir_snapshots (kind, status, id);

CREATE TABLE dir_mailboxes (
  id                INTEGER PRIMARY KEY,
  address           TEXT    NOT NULL,
  type              TEXT    NOT NULL CHECK (type IN ('PER', 'ORG', 'APP', 'CAB')),
  owner_id          TEXT,
  structure_id      TEXT,
  service           TEXT,
  civility          TEXT,
  last_name         TEXT,
  first_name        TEXT,
  profession_code   TEXT,
  profession_label  TEXT,
  specialty_code    TEXT,
  specialty_label   TEXT,
  dematerialisation INTEGER,
  organisation_name TEXT,
  postal_code       TEXT,
  city              TEXT,
  department        TEXT,
  liste_rouge       INTEGER NOT NULL DEFAULT 0,
  name_key          TEXT    NOT NULL,
  alt_key           TEXT    NOT NULL,
  hash              INTEGER NOT NULL,
  active            INTEGER NOT NULL,
  added_snapshot    INTEGER NOT NULL,
  changed_snapshot  INTEGER NOT NULL,
  removed_snapshot  INTEGER
);
CREATE UNIQUE INDEX dir_mailboxes_key ON dir_mailboxes (address);
CREATE INDEX dir_mailboxes_owner_id ON dir_mailboxes (owner_id);
CREATE INDEX dir_mailboxes_structure_id ON dir_mailboxes (structure_id);
CREATE INDEX dir_mailboxes_name_key ON dir_mailboxes (name_key);
CREATE INDEX dir_mailboxes_alt_key ON dir_mailboxes (alt_key);
CREATE INDEX dir_mailboxes_address_hash_active ON dir_mailboxes (address, hash, active);

CREATE TABLE dir_practitioners (
  id               INTEGER PRIMARY KEY,
  id_nat_ps        TEXT    NOT NULL,
  id_type          TEXT,
  id_pp            TEXT,
  civility         TEXT,
  last_name        TEXT    NOT NULL,
  first_name       TEXT,
  name_key         TEXT    NOT NULL,
  alt_key          TEXT    NOT NULL,
  hash             INTEGER NOT NULL,
  active           INTEGER NOT NULL,
  added_snapshot   INTEGER NOT NULL,
  changed_snapshot INTEGER NOT NULL,
  removed_snapshot INTEGER
);
CREATE UNIQUE INDEX dir_practitioners_key ON dir_practitioners (id_nat_ps);
CREATE INDEX dir_practitioners_name_key ON dir_practitioners (name_key);
CREATE INDEX dir_practitioners_alt_key ON dir_practitioners (alt_key);
CREATE INDEX dir_practitioners_id_nat_ps_hash_active ON dir_practitioners (id_nat_ps, hash, active);

CREATE TABLE dir_activities (
  id                INTEGER PRIMARY KEY,
  activity_key      TEXT    NOT NULL,
  id_nat_ps         TEXT    NOT NULL,
  profession_code   TEXT,
  profession_label  TEXT,
  category_code     TEXT,
  specialty_code    TEXT,
  specialty_label   TEXT,
  mode_code         TEXT,
  mode_label        TEXT,
  structure_id      TEXT,
  organisation_name TEXT,
  postal_code       TEXT,
  city              TEXT,
  department        TEXT,
  email             TEXT,
  hash              INTEGER NOT NULL,
  active            INTEGER NOT NULL,
  added_snapshot    INTEGER NOT NULL,
  changed_snapshot  INTEGER NOT NULL,
  removed_snapshot  INTEGER
);
CREATE UNIQUE INDEX dir_activities_key ON dir_activities (activity_key);
CREATE INDEX dir_activities_id_nat_ps ON dir_activities (id_nat_ps);
CREATE INDEX dir_activities_structure_id ON dir_activities (structure_id);
CREATE INDEX dir_activities_activity_key_hash_active ON dir_activities (activity_key, hash, active);

CREATE TABLE dir_organisations (
  id               INTEGER PRIMARY KEY,
  id_nat_struct    TEXT    NOT NULL,
  name             TEXT,
  enseigne         TEXT,
  finess_ej        TEXT,
  postal_code      TEXT,
  city             TEXT,
  department       TEXT,
  name_key         TEXT    NOT NULL,
  hash             INTEGER NOT NULL,
  active           INTEGER NOT NULL,
  added_snapshot   INTEGER NOT NULL,
  changed_snapshot INTEGER NOT NULL,
  removed_snapshot INTEGER
);
CREATE UNIQUE INDEX dir_organisations_key ON dir_organisations (id_nat_struct);
CREATE INDEX dir_organisations_name_key ON dir_organisations (name_key);
CREATE INDEX dir_organisations_id_nat_struct_hash_active ON dir_organisations (id_nat_struct, hash, active);

CREATE TABLE dir_changes (
  snapshot_id INTEGER NOT NULL,
  entity      TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  change      TEXT    NOT NULL CHECK (change IN ('added', 'removed', 'changed')),
  PRIMARY KEY (snapshot_id, entity, key)
) WITHOUT ROWID;

CREATE TABLE dir_certificates (
  fingerprint TEXT    PRIMARY KEY,
  owner_id    TEXT    NOT NULL,
  serial      TEXT    NOT NULL,
  subject     TEXT    NOT NULL,
  issuer      TEXT    NOT NULL,
  not_before  INTEGER NOT NULL,
  not_after   INTEGER NOT NULL,
  der         BLOB    NOT NULL,
  added_at    INTEGER NOT NULL
);
CREATE INDEX dir_certificates_owner ON dir_certificates (owner_id);
`,
  },
  {
    version: 6,
    name: 'keystore',
    // Our mailboxes' keys and certificates (private keys sealed with the master key by the caller) and the
    // public certificates and keys of correspondents. not_after is null for an OpenPGP key without expiry.
    sql: `
CREATE TABLE mailbox_credentials (
  id                INTEGER PRIMARY KEY,
  mailbox_id        INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  usage             TEXT    NOT NULL CHECK (usage IN ('auth', 'sign', 'encrypt', 'openpgp')),
  format            TEXT    NOT NULL CHECK (format IN ('x509', 'openpgp')),
  certificate       TEXT    NOT NULL,
  chain             TEXT,
  sealed_key        BLOB    NOT NULL,
  fingerprint       TEXT    NOT NULL,
  serial            TEXT    NOT NULL,
  issuer            TEXT    NOT NULL,
  subject           TEXT    NOT NULL,
  not_before        INTEGER NOT NULL,
  not_after         INTEGER,
  created_at        INTEGER NOT NULL,
  revoked_at        INTEGER,
  revocation_reason TEXT,
  CHECK ((format = 'openpgp') = (usage = 'openpgp')),
  UNIQUE (mailbox_id, usage, fingerprint)
);
CREATE INDEX mailbox_credentials_by_fingerprint ON mailbox_credentials (fingerprint);

CREATE TABLE correspondent_keys (
  id          INTEGER PRIMARY KEY,
  address     TEXT    NOT NULL,
  format      TEXT    NOT NULL CHECK (format IN ('x509', 'openpgp')),
  certificate TEXT    NOT NULL,
  fingerprint TEXT    NOT NULL,
  source      TEXT    NOT NULL CHECK (source IN ('directory', 'import', 'message')),
  added_at    INTEGER NOT NULL,
  UNIQUE (address, fingerprint)
);
`,
  },
  {
    version: 7,
    name: 'expunge-tombstones',
    // QRESYNC (RFC 7162 §3.2): the UID and MODSEQ of each message expunged from a folder, so a client can be
    // told which of the messages it knew have gone since a MODSEQ. They go with their folder.
    sql: `
CREATE TABLE expunged_messages (
  id        INTEGER PRIMARY KEY,
  folder_id INTEGER NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
  uid       INTEGER NOT NULL,
  modseq    INTEGER NOT NULL,
  UNIQUE (folder_id, uid)
);
CREATE INDEX expunged_messages_by_modseq ON expunged_messages (folder_id, modseq);
`,
  },
  {
    version: 8,
    name: 'search-blind-index',
    // The keyed blind index of SEARCH (docs/decisions/0010-search-blind-index.md): per blob (a message and its
    // copies), the Bloom filter of its keyed terms (pseudo-random bits, no text) and the scopes it left out. It goes
    // with the blob; messages without a row (delivered before this version) are indexed when a search opens them.
    sql: `
CREATE TABLE search_docs (
  blob_id   INTEGER PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
  unindexed INTEGER NOT NULL,
  filter    BLOB    NOT NULL
);
`,
  },
  {
    version: 9,
    name: 'trust-space',
    // The trust space (src/policy/trust-store.ts): each imported operator domain list (generation date, source,
    // SHA-256 of the XML, the CA bundle the operators' certificates must chain to) and the domains of the active
    // list (the latest one). An import replaces the domains in one unit of work; older list rows stay as history.
    sql: `
CREATE TABLE trust_lists (
  id           INTEGER PRIMARY KEY,
  generated_at INTEGER NOT NULL,
  imported_at  INTEGER NOT NULL,
  source       TEXT    NOT NULL,
  sha256       TEXT    NOT NULL,
  domain_count INTEGER NOT NULL,
  ca_bundle    TEXT
);

CREATE TABLE trust_domains (
  id                  INTEGER PRIMARY KEY,
  list_id             INTEGER NOT NULL REFERENCES trust_lists (id) ON DELETE CASCADE,
  position            INTEGER NOT NULL,
  name                TEXT    NOT NULL,
  name_key            TEXT    NOT NULL,
  description         TEXT    NOT NULL,
  operator_dn         TEXT    NOT NULL,
  responsable_contact TEXT    NOT NULL,
  support_contact     TEXT    NOT NULL,
  updated_at          INTEGER NOT NULL,
  UNIQUE (list_id, position)
);
CREATE INDEX trust_domains_by_name ON trust_domains (list_id, name_key);
`,
  },
  {
    version: 10,
    name: 'directory-change-ids',
    // Change records get an id (the PRIMARY KEY (snapshot_id, entity, key) stays, as a UNIQUE constraint):
    // \`mss store migrate\` copies a table in the order of one key column (docs/decisions/0007-directory.md).
    sql: `
CREATE TABLE dir_changes_v10 (
  id          INTEGER PRIMARY KEY,
  snapshot_id INTEGER NOT NULL,
  entity      TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  change      TEXT    NOT NULL CHECK (change IN ('added', 'removed', 'changed')),
  UNIQUE (snapshot_id, entity, key)
);
INSERT INTO dir_changes_v10 (snapshot_id, entity, key, change) SELECT snapshot_id, entity, key, change FROM dir_changes ORDER BY snapshot_id, entity, key;
DROP TABLE dir_changes;
ALTER TABLE dir_changes_v10 RENAME TO dir_changes;
`,
  },
  {
    version: 11,
    name: 'relay-accepted-keys',
    // The inbound relay's idempotency keys (docs/decisions/0008-queue-delivery.md): each key a peer operator sent
    // with a message we delivered, per peer domain, recorded in the unit of work of the delivery so a repeat is
    // answered 250 without a second copy. Pruned after relay.idempotencyRetentionDays (by accepted_at).
    sql: `
CREATE TABLE relay_accepted_keys (
  peer_domain TEXT    NOT NULL,
  idem_key    TEXT    NOT NULL,
  accepted_at INTEGER NOT NULL,
  PRIMARY KEY (peer_domain, idem_key)
);
CREATE INDEX relay_accepted_keys_by_age ON relay_accepted_keys (accepted_at);
`,
  },
  {
    version: 12,
    name: 'mdn-tracking',
    // The sending side's MDN tracker (src/queue/mdn-tracker.ts): one row per remote recipient of an outbound message
    // whose sender asked for MDNs, until its MDN arrives or the deadline passes (then a failure notice goes to the
    // sender and the row goes). Message-ID, recipient and the original's header are sealed in `details`;
    // `track_key` is a keyed hash of them under a key of the mailbox, so an arriving MDN finds its row.
    sql: `
CREATE TABLE mdn_tracking (
  id              INTEGER PRIMARY KEY,
  mailbox_id      INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  track_key       TEXT    NOT NULL,
  deadline        INTEGER NOT NULL,
  want_dispatched INTEGER NOT NULL,
  processed_at    INTEGER,
  created_at      INTEGER NOT NULL,
  details         BLOB    NOT NULL,
  UNIQUE (mailbox_id, track_key)
);
CREATE INDEX mdn_tracking_by_deadline ON mdn_tracking (deadline);
`,
  },
  {
    version: 13,
    name: 'patients',
    // Patient mailboxes (src/policy/patients.ts): the activation / opposition life cycle beside the mailbox row,
    // and the conversations professionals opened with the patient (the reply-only rule). Message-IDs appear only
    // as keyed hashes under a key of the mailbox; the addresses a reply may go to are sealed.
    sql: `
CREATE TABLE patient_accounts (
  mailbox_id         INTEGER PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
  created_at         INTEGER NOT NULL,
  oppose_until       INTEGER NOT NULL,
  activation_hash    TEXT,
  activation_expires INTEGER,
  activated_at       INTEGER,
  opposed_at         INTEGER,
  purge_after        INTEGER,
  purged_at          INTEGER,
  totp               BLOB,
  totp_last_step     INTEGER
);
CREATE INDEX patient_accounts_by_purge ON patient_accounts (purge_after);
CREATE TABLE patient_threads (
  id          INTEGER PRIMARY KEY,
  mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  thread_key  TEXT    NOT NULL,
  closed_at   INTEGER,
  updated_at  INTEGER NOT NULL,
  UNIQUE (mailbox_id, thread_key)
);
CREATE TABLE patient_thread_messages (
  id          INTEGER PRIMARY KEY,
  mailbox_id  INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  message_key TEXT    NOT NULL,
  thread_key  TEXT    NOT NULL,
  allowed     BLOB    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (mailbox_id, message_key)
);
`,
  },
  {
    version: 14,
    name: 'webmail',
    // Webmail sessions live in the database so every process behind a load balancer knows them: the cookie's
    // SHA-256 only, never the cookie. Documents a patient saved from a message: details and bytes sealed.
    sql: `
CREATE TABLE webmail_sessions (
  id_hash      TEXT    PRIMARY KEY,
  mailbox_id   INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  csrf         TEXT    NOT NULL,
  stage        TEXT    NOT NULL CHECK (stage IN ('password', 'complete')),
  lang         TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
);
CREATE INDEX webmail_sessions_by_expiry ON webmail_sessions (expires_at);
CREATE TABLE patient_documents (
  id         INTEGER PRIMARY KEY,
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  source_key TEXT    NOT NULL,
  saved_at   INTEGER NOT NULL,
  details    BLOB    NOT NULL,
  content    BLOB    NOT NULL,
  UNIQUE (mailbox_id, source_key)
);
`,
  },
  {
    version: 15,
    name: 'search-scan',
    // A search reads each message's blob id to find its index entry: from this index, not from the message rows
    // (wide with their sealed metadata), it reads a tenth of the pages (docs/decisions/0010-search-blind-index.md).
    sql: `
CREATE INDEX messages_blob_by_uid ON messages (folder_id, uid, blob_id);
`,
  },
  {
    version: 16,
    name: 'folder-listing',
    // Listing a folder (its first SELECT, a resync) reads every message's summary: from this covering index, not
    // from the message rows (wide with their sealed metadata), a 100,000-message folder is about 1,500 pages
    // instead of 50,000. It starts with the columns of the search scan's index, which it replaces.
    sql: `
CREATE INDEX messages_summary ON messages (folder_id, uid, blob_id, id, modseq, internal_date, size, flags);
DROP INDEX messages_blob_by_uid;
`,
  },
];
