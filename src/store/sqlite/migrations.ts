/**
 * Versioned schema of the SQLite engine. A migration is never edited once released: add a new one.
 * Message content columns (`blobs.data`, `messages.meta`, `queue.sealed_*`) hold sealed bytes only.
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
];
