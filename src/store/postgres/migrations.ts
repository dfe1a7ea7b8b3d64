/**
 * Versioned schema of the PostgreSQL engine: the same logical schema as the SQLite engine's migrations of the
 * same number. A migration is never edited once released: add a new one. Message content columns
 * (`blobs.data`, `messages.meta`, `queue.sealed_*`) hold sealed bytes only.
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
];
