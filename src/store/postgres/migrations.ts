/**
 * Versioned schema of the PostgreSQL engine: the same logical schema as the SQLite engine's migrations of the
 * same number. A migration is never edited once released: add a new one. Message content columns
 * (`blob_chunks.data`, blob files, `messages.meta`, `queue.sealed_*`) hold sealed bytes only.
 *
 * Times are milliseconds since the epoch in BIGINT; UIDs, MODSEQs and UIDVALIDITY are BIGINT too (IMAP allows
 * 32-bit unsigned UIDs and 63-bit MODSEQs).
 */
export const migrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'foundation',
    sql: `
CREATE TABLE mailboxes (
  id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  address       TEXT    NOT NULL UNIQUE,
  type          TEXT    NOT NULL CHECK (type IN ('PER', 'ORG', 'APP', 'CAB', 'PATIENT')),
  owner_id      TEXT,
  display_name  TEXT,
  password_hash TEXT,
  state         TEXT    NOT NULL CHECK (state IN ('active', 'pending', 'disabled')),
  wrapped_key   BYTEA   NOT NULL,
  created_at    BIGINT  NOT NULL
);

CREATE TABLE folders (
  id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id     BIGINT  NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  name           TEXT    NOT NULL,
  uid_validity   BIGINT  NOT NULL,
  uid_next       BIGINT  NOT NULL DEFAULT 1,
  highest_modseq BIGINT  NOT NULL DEFAULT 1,
  special_use    TEXT,
  subscribed     BOOLEAN NOT NULL DEFAULT TRUE,
  UNIQUE (mailbox_id, name)
);

CREATE TABLE blobs (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  data       BYTEA  NOT NULL
);

CREATE TABLE messages (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id    BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  folder_id     BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
  uid           BIGINT NOT NULL,
  modseq        BIGINT NOT NULL,
  flags         TEXT   NOT NULL DEFAULT '[]',
  internal_date BIGINT NOT NULL,
  size          BIGINT NOT NULL,
  blob_id       BIGINT NOT NULL REFERENCES blobs (id),
  meta          BYTEA  NOT NULL,
  UNIQUE (folder_id, uid)
);
CREATE INDEX messages_by_modseq ON messages (folder_id, modseq);

CREATE TABLE queue (
  id               TEXT    PRIMARY KEY,
  destination      TEXT    NOT NULL,
  state            TEXT    NOT NULL DEFAULT 'queued',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  BIGINT  NOT NULL,
  lease_owner      TEXT,
  lease_until      BIGINT,
  created_at       BIGINT  NOT NULL,
  sealed_envelope  BYTEA   NOT NULL,
  sealed_message   BYTEA   NOT NULL
);
CREATE INDEX queue_due ON queue (state, next_attempt_at);

CREATE TABLE audit (
  seq       BIGINT PRIMARY KEY,
  time      TEXT   NOT NULL,
  actor     TEXT   NOT NULL,
  action    TEXT   NOT NULL,
  object    TEXT   NOT NULL,
  outcome   TEXT   NOT NULL,
  detail    TEXT   NOT NULL,
  prev_hash TEXT   NOT NULL,
  hash      TEXT   NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit journal is append-only';
END;
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TABLE auth_failures (
  key          TEXT    PRIMARY KEY,
  failures     INTEGER NOT NULL,
  locked_until BIGINT  NOT NULL DEFAULT 0,
  updated_at   BIGINT  NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'folder-lifecycle',
    // Expunge and folder deletion drop a blob once no message refers to it (a COPY shares the blob).
    // UIDVALIDITY comes from a counter that never goes back, so a folder re-created under the same name never
    // gets the UIDVALIDITY of the one deleted.
    sql: `
CREATE INDEX messages_by_blob ON messages (blob_id);
CREATE TABLE uid_validity_counter (id INTEGER PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL);
INSERT INTO uid_validity_counter (id, last) SELECT 1, coalesce(max(uid_validity), 0) FROM folders;
`,
  },
  {
    version: 3,
    name: 'audit-staging',
    // Units of work stage their audit records here without a lock; the linker moves them into `audit`, in id
    // order, just after the commit (docs/decisions/0004-postgresql-engine.md). Rows here are committed
    // records not yet linked, never drafts.
    sql: `
CREATE TABLE audit_pending (
  id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time    TEXT   NOT NULL,
  actor   TEXT   NOT NULL,
  action  TEXT   NOT NULL,
  object  TEXT   NOT NULL,
  outcome TEXT   NOT NULL,
  detail  TEXT   NOT NULL
);
`,
  },
  {
    version: 4,
    name: 'streamed-blobs',
    // As in SQLite: blob bytes in chunk rows of 256 KiB or in a file of the blob directory (`file`); existing
    // values are cut into chunks here and `blobs.data` goes. Sealed bytes do not compress: EXTERNAL storage
    // keeps TOAST from trying.
    sql: `
CREATE TABLE blob_chunks (
  id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  blob_id BIGINT  NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
  seq     INTEGER NOT NULL,
  data    BYTEA   NOT NULL,
  UNIQUE (blob_id, seq)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE blobs ADD COLUMN size BIGINT NOT NULL DEFAULT 0, ADD COLUMN file TEXT;
CREATE UNIQUE INDEX blobs_by_file ON blobs (file);
INSERT INTO blob_chunks (blob_id, seq, data)
SELECT b.id, s.n, substring(b.data FROM s.n * 262144 + 1 FOR 262144)
  FROM blobs b CROSS JOIN LATERAL generate_series(0, (length(b.data) - 1) / 262144) AS s (n)
 WHERE length(b.data) > 0
 ORDER BY b.id, s.n;
UPDATE blobs SET size = length(data);
ALTER TABLE blobs DROP COLUMN data;
`,
  },
  {
    version: 5,
    name: 'directory',
    // As in SQLite (docs/decisions/0007-directory.md). Search keys and addresses are COLLATE "C": prefix
    // searches are byte-order range scans, as in SQLite.
    sql: `
CREATE TABLE dir_snapshots (
  id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind          TEXT    NOT NULL CHECK (kind IN ('mss', 'ps')),
  status        TEXT    NOT NULL CHECK (status IN ('running', 'complete', 'failed')),
  base_id       BIGINT,
  source_name   TEXT    NOT NULL,
  source_sha256 TEXT,
  started_at    BIGINT  NOT NULL,
  finished_at   BIGINT,
  rows_total    BIGINT  NOT NULL DEFAULT 0,
  rows_bad      BIGINT  NOT NULL DEFAULT 0,
  diff          TEXT    NOT NULL DEFAULT '{}',
  error         TEXT
);
CREATE INDEX dir_snapshots_kind ON dir_snapshots (kind, status, id);

CREATE TABLE dir_mailboxes (
  id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  address           TEXT COLLATE "C" NOT NULL,
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
  dematerialisation BOOLEAN,
  organisation_name TEXT,
  postal_code       TEXT,
  city              TEXT,
  department        TEXT,
  liste_rouge       BOOLEAN NOT NULL DEFAULT FALSE,
  name_key          TEXT COLLATE "C" NOT NULL,
  alt_key           TEXT COLLATE "C" NOT NULL,
  hash              BIGINT  NOT NULL,
  active            BOOLEAN NOT NULL,
  added_snapshot    BIGINT  NOT NULL,
  changed_snapshot  BIGINT  NOT NULL,
  removed_snapshot  BIGINT
);
CREATE UNIQUE INDEX dir_mailboxes_key ON dir_mailboxes (address);
CREATE INDEX dir_mailboxes_owner_id ON dir_mailboxes (owner_id);
CREATE INDEX dir_mailboxes_structure_id ON dir_mailboxes (structure_id);
CREATE INDEX dir_mailboxes_name_key ON dir_mailboxes (name_key);
CREATE INDEX dir_mailboxes_alt_key ON dir_mailboxes (alt_key);
CREATE INDEX dir_mailboxes_address_hash_active ON dir_mailboxes (address, hash, active);

CREATE TABLE dir_practitioners (
  id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id_nat_ps        TEXT    NOT NULL,
  id_type          TEXT,
  id_pp            TEXT,
  civility         TEXT,
  last_name        TEXT    NOT NULL,
  first_name       TEXT,
  name_key         TEXT COLLATE "C" NOT NULL,
  alt_key          TEXT COLLATE "C" NOT NULL,
  hash             BIGINT  NOT NULL,
  active           BOOLEAN NOT NULL,
  added_snapshot   BIGINT  NOT NULL,
  changed_snapshot BIGINT  NOT NULL,
  removed_snapshot BIGINT
);
CREATE UNIQUE INDEX dir_practitioners_key ON dir_practitioners (id_nat_ps);
CREATE INDEX dir_practitioners_name_key ON dir_practitioners (name_key);
CREATE INDEX dir_practitioners_alt_key ON dir_practitioners (alt_key);
CREATE INDEX dir_practitioners_id_nat_ps_hash_active ON dir_practitioners (id_nat_ps, hash, active);

CREATE TABLE dir_activities (
  id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
  hash              BIGINT  NOT NULL,
  active            BOOLEAN NOT NULL,
  added_snapshot    BIGINT  NOT NULL,
  changed_snapshot  BIGINT  NOT NULL,
  removed_snapshot  BIGINT
);
CREATE UNIQUE INDEX dir_activities_key ON dir_activities (activity_key);
CREATE INDEX dir_activities_id_nat_ps ON dir_activities (id_nat_ps);
CREATE INDEX dir_activities_structure_id ON dir_activities (structure_id);
CREATE INDEX dir_activities_activity_key_hash_active ON dir_activities (activity_key, hash, active);

CREATE TABLE dir_organisations (
  id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id_nat_struct    TEXT    NOT NULL,
  name             TEXT,
  enseigne         TEXT,
  finess_ej        TEXT,
  postal_code      TEXT,
  city             TEXT,
  department       TEXT,
  name_key         TEXT COLLATE "C" NOT NULL,
  hash             BIGINT  NOT NULL,
  active           BOOLEAN NOT NULL,
  added_snapshot   BIGINT  NOT NULL,
  changed_snapshot BIGINT  NOT NULL,
  removed_snapshot BIGINT
);
CREATE UNIQUE INDEX dir_organisations_key ON dir_organisations (id_nat_struct);
CREATE INDEX dir_organisations_name_key ON dir_organisations (name_key);
CREATE INDEX dir_organisations_id_nat_struct_hash_active ON dir_organisations (id_nat_struct, hash, active);

CREATE TABLE dir_changes (
  snapshot_id BIGINT  NOT NULL,
  entity      TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  change      TEXT    NOT NULL CHECK (change IN ('added', 'removed', 'changed')),
  PRIMARY KEY (snapshot_id, entity, key)
);

CREATE TABLE dir_certificates (
  fingerprint TEXT    PRIMARY KEY,
  owner_id    TEXT    NOT NULL,
  serial      TEXT    NOT NULL,
  subject     TEXT    NOT NULL,
  issuer      TEXT    NOT NULL,
  not_before  BIGINT  NOT NULL,
  not_after   BIGINT  NOT NULL,
  der         BYTEA   NOT NULL,
  added_at    BIGINT  NOT NULL
);
CREATE INDEX dir_certificates_owner ON dir_certificates (owner_id);
`,
  },
  {
    version: 6,
    name: 'keystore',
    // As in SQLite: our mailboxes' keys and certificates (private keys sealed by the caller) and the public
    // certificates and keys of correspondents. not_after is null for an OpenPGP key without expiry.
    sql: `
CREATE TABLE mailbox_credentials (
  id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id        BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  usage             TEXT   NOT NULL CHECK (usage IN ('auth', 'sign', 'encrypt', 'openpgp')),
  format            TEXT   NOT NULL CHECK (format IN ('x509', 'openpgp')),
  certificate       TEXT   NOT NULL,
  chain             TEXT,
  sealed_key        BYTEA  NOT NULL,
  fingerprint       TEXT   NOT NULL,
  serial            TEXT   NOT NULL,
  issuer            TEXT   NOT NULL,
  subject           TEXT   NOT NULL,
  not_before        BIGINT NOT NULL,
  not_after         BIGINT,
  created_at        BIGINT NOT NULL,
  revoked_at        BIGINT,
  revocation_reason TEXT,
  CHECK ((format = 'openpgp') = (usage = 'openpgp')),
  UNIQUE (mailbox_id, usage, fingerprint)
);
CREATE INDEX mailbox_credentials_by_fingerprint ON mailbox_credentials (fingerprint);

CREATE TABLE correspondent_keys (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  address     TEXT   NOT NULL,
  format      TEXT   NOT NULL CHECK (format IN ('x509', 'openpgp')),
  certificate TEXT   NOT NULL,
  fingerprint TEXT   NOT NULL,
  source      TEXT   NOT NULL CHECK (source IN ('directory', 'import', 'message')),
  added_at    BIGINT NOT NULL,
  UNIQUE (address, fingerprint)
);
`,
  },
  {
    version: 7,
    name: 'expunge-tombstones',
    // As in SQLite: the UID and MODSEQ of each expunged message, for QRESYNC; they go with their folder.
    sql: `
CREATE TABLE expunged_messages (
  id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  folder_id BIGINT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
  uid       BIGINT NOT NULL,
  modseq    BIGINT NOT NULL,
  UNIQUE (folder_id, uid)
);
CREATE INDEX expunged_messages_by_modseq ON expunged_messages (folder_id, modseq);
`,
  },
  {
    version: 8,
    name: 'search-blind-index',
    // As in SQLite: per blob, the Bloom filter of its keyed terms and the scopes it left out; it goes with the
    // blob. Filters are random bits: stored without compression (EXTERNAL) when they leave the row.
    sql: `
CREATE TABLE search_docs (
  blob_id   BIGINT  PRIMARY KEY REFERENCES blobs (id) ON DELETE CASCADE,
  unindexed INTEGER NOT NULL,
  filter    BYTEA   NOT NULL
);
ALTER TABLE search_docs ALTER COLUMN filter SET STORAGE EXTERNAL;
`,
  },
  {
    version: 9,
    name: 'trust-space',
    // As in SQLite: the imported operator domain lists (history) and the domains of the active (latest) list.
    sql: `
CREATE TABLE trust_lists (
  id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  generated_at BIGINT  NOT NULL,
  imported_at  BIGINT  NOT NULL,
  source       TEXT    NOT NULL,
  sha256       TEXT    NOT NULL,
  domain_count INTEGER NOT NULL,
  ca_bundle    TEXT
);

CREATE TABLE trust_domains (
  id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  list_id             BIGINT  NOT NULL REFERENCES trust_lists (id) ON DELETE CASCADE,
  position            INTEGER NOT NULL,
  name                TEXT    NOT NULL,
  name_key            TEXT    NOT NULL,
  description         TEXT    NOT NULL,
  operator_dn         TEXT    NOT NULL,
  responsable_contact TEXT    NOT NULL,
  support_contact     TEXT    NOT NULL,
  updated_at          BIGINT  NOT NULL,
  UNIQUE (list_id, position)
);
CREATE INDEX trust_domains_by_name ON trust_domains (list_id, name_key);
`,
  },
  {
    version: 10,
    name: 'directory-change-ids',
    // As in SQLite: change records get an id, the primary key; (snapshot_id, entity, key) stays unique.
    sql: `
ALTER TABLE dir_changes ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE dir_changes DROP CONSTRAINT dir_changes_pkey;
ALTER TABLE dir_changes ADD PRIMARY KEY (id);
ALTER TABLE dir_changes ADD CONSTRAINT dir_changes_key UNIQUE (snapshot_id, entity, key);
`,
  },
  {
    version: 11,
    name: 'relay-accepted-keys',
    // As in SQLite: the idempotency keys peer operators sent with the messages the relay delivered, per peer
    // domain; the primary key makes a second unit of work with the same key wait for the first, then skip.
    sql: `
CREATE TABLE relay_accepted_keys (
  peer_domain TEXT   NOT NULL,
  idem_key    TEXT   NOT NULL,
  accepted_at BIGINT NOT NULL,
  PRIMARY KEY (peer_domain, idem_key)
);
CREATE INDEX relay_accepted_keys_by_age ON relay_accepted_keys (accepted_at);
`,
  },
  {
    version: 12,
    name: 'mdn-tracking',
    // As in SQLite: the sending side's MDN tracker, one row per remote recipient awaiting its MDN; the claim of
    // overdue rows locks them (FOR UPDATE SKIP LOCKED), so one process writes each failure notice.
    sql: `
CREATE TABLE mdn_tracking (
  id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id      BIGINT  NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  track_key       TEXT    NOT NULL,
  deadline        BIGINT  NOT NULL,
  want_dispatched BOOLEAN NOT NULL,
  processed_at    BIGINT,
  created_at      BIGINT  NOT NULL,
  details         BYTEA   NOT NULL,
  UNIQUE (mailbox_id, track_key)
);
CREATE INDEX mdn_tracking_by_deadline ON mdn_tracking (deadline);
`,
  },
  {
    version: 13,
    name: 'patients',
    // As in SQLite: the patient life cycle and the conversations professionals opened with the patient.
    sql: `
CREATE TABLE patient_accounts (
  mailbox_id         BIGINT PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
  created_at         BIGINT NOT NULL,
  oppose_until       BIGINT NOT NULL,
  activation_hash    TEXT,
  activation_expires BIGINT,
  activated_at       BIGINT,
  opposed_at         BIGINT,
  purge_after        BIGINT,
  purged_at          BIGINT,
  totp               BYTEA,
  totp_last_step     BIGINT
);
CREATE INDEX patient_accounts_by_purge ON patient_accounts (purge_after);
CREATE TABLE patient_threads (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id  BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  thread_key  TEXT    NOT NULL,
  closed_at   BIGINT,
  updated_at  BIGINT NOT NULL,
  UNIQUE (mailbox_id, thread_key)
);
CREATE TABLE patient_thread_messages (
  id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id  BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  message_key TEXT    NOT NULL,
  thread_key  TEXT    NOT NULL,
  allowed     BYTEA    NOT NULL,
  created_at  BIGINT NOT NULL,
  UNIQUE (mailbox_id, message_key)
);
`,
  },
  {
    version: 14,
    name: 'webmail',
    // As in SQLite: webmail sessions shared by every process, and the documents patients saved (sealed).
    sql: `
CREATE TABLE webmail_sessions (
  id_hash      TEXT    PRIMARY KEY,
  mailbox_id   BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  csrf         TEXT    NOT NULL,
  stage        TEXT    NOT NULL CHECK (stage IN ('password', 'complete')),
  lang         TEXT    NOT NULL,
  created_at   BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL
);
CREATE INDEX webmail_sessions_by_expiry ON webmail_sessions (expires_at);
CREATE TABLE patient_documents (
  id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox_id BIGINT NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
  source_key TEXT    NOT NULL,
  saved_at   BIGINT NOT NULL,
  details    BYTEA    NOT NULL,
  content    BYTEA    NOT NULL,
  UNIQUE (mailbox_id, source_key)
);
`,
  },
  {
    version: 15,
    name: 'search-scan',
    // As in SQLite: a search reaches the index entries from the folder's blob ids without reading the message rows.
    sql: `
CREATE INDEX messages_blob_by_uid ON messages (folder_id, uid) INCLUDE (blob_id);
`,
  },
  {
    version: 16,
    name: 'folder-listing',
    // As in SQLite: a folder's summaries from one index, not from the wide message rows. A flag change already
    // updates an index (by MODSEQ), so this costs no HOT update that was possible before.
    sql: `
CREATE INDEX messages_summary ON messages (folder_id, uid) INCLUDE (blob_id, id, modseq, internal_date, size, flags);
DROP INDEX messages_blob_by_uid;
`,
  },
];
