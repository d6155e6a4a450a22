-- Mailkeep on PostgreSQL, schema version 1. Applied in one transaction at open (see
-- `schema.rs`); every later change is a new numbered file, never an edit of this one.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Counters of this installation (the last UIDVALIDITY handed out).
CREATE TABLE meta(
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta(key, value) VALUES ('uidvalidity', 0);

-- Identity columns: ids of deleted users and mailboxes are never handed out again, so a
-- session still holding one cannot reach someone else's data.
CREATE TABLE users(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    -- Own quota settings: NULL the default, 0 unlimited, n a limit (`QuotaSetting::to_sql`).
    quota_storage BIGINT,
    quota_messages BIGINT
);

CREATE TABLE mailboxes(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    -- UIDs and modseqs are allocated by `UPDATE mailboxes ... RETURNING` inside the writing
    -- transaction: the row lock serializes the writers of one mailbox, on every node.
    uidnext BIGINT NOT NULL,
    highest_modseq BIGINT NOT NULL,
    special_use TEXT,
    -- rev1 \Recent: UIDs >= this are recent until a session claims them.
    recent_boundary BIGINT NOT NULL DEFAULT 1,
    -- Tombstones up to this modseq were pruned (`Changes::pruned_modseq`).
    pruned_modseq BIGINT NOT NULL DEFAULT 0,
    -- STATUS counters, kept up to date by every change so STATUS reads one row.
    messages BIGINT NOT NULL DEFAULT 0,
    unseen BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    size BIGINT NOT NULL DEFAULT 0,
    UNIQUE(user_id, name)
);

CREATE TABLE subscriptions(
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY(user_id, name)
);

-- One row per distinct message body, keyed by the SHA-256 of its bytes, zstd-packed, with
-- the parse made when it first arrived. Shared by every message and tombstone holding it
-- (foreign keys); the transaction that lets go of the last reference deletes the row. No
-- reference count: appends of shared bodies take no lock on them.
CREATE TABLE bodies(
    hash BYTEA PRIMARY KEY,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    envelope BYTEA NOT NULL,
    bodystructure BYTEA NOT NULL,
    body BYTEA NOT NULL,
    parts BYTEA NOT NULL,
    sent_date BIGINT
);
ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL;

-- The search index: the text of each body, lower-cased, with trigram indexes so that
-- SEARCH BODY/TEXT (substrings, RFC 9051 §6.4.4) is answered by `LIKE '%...%'`.
CREATE TABLE search(
    hash BYTEA PRIMARY KEY REFERENCES bodies(hash) ON DELETE CASCADE,
    header TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX search_body_trgm ON search USING gin (body gin_trgm_ops);
CREATE INDEX search_text_trgm ON search USING gin ((header || body) gin_trgm_ops);

CREATE TABLE messages(
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id),
    uid BIGINT NOT NULL,
    body_hash BYTEA NOT NULL REFERENCES bodies(hash),
    size BIGINT NOT NULL,
    flags INT NOT NULL,
    keywords TEXT[] NOT NULL,
    modseq BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    date_offset INT NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_body ON messages(body_hash);

-- Tombstones (RFC 7162 VANISHED). For a grace period after the expunge the body stays
-- referenced (body_hash), so a session not yet told of it can still FETCH (RFC 2180 §4.1.1).
CREATE TABLE expunged(
    mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id),
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    body_hash BYTEA REFERENCES bodies(hash),
    expunged_at BIGINT NOT NULL,
    PRIMARY KEY(mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
CREATE INDEX expunged_held ON expunged(expunged_at) WHERE body_hash IS NOT NULL;
CREATE INDEX expunged_body ON expunged(body_hash) WHERE body_hash IS NOT NULL;

CREATE TABLE domains(
    name TEXT PRIMARY KEY
);
-- address: `local@domain` or a catch-all `@domain`; target: an account name.
CREATE TABLE aliases(
    address TEXT PRIMARY KEY,
    target TEXT NOT NULL
);

CREATE TABLE scram_keys(
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    iterations BIGINT NOT NULL,
    salt BYTEA NOT NULL,
    stored_key BYTEA NOT NULL,
    server_key BYTEA NOT NULL
);
CREATE TABLE server_secrets(
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE totp_secrets(
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret BYTEA NOT NULL,
    enabled BOOLEAN NOT NULL,
    last_step BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE recovery_codes(
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash BYTEA NOT NULL,
    PRIMARY KEY(user_id, hash)
);
CREATE TABLE app_passwords(
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    hash BYTEA NOT NULL,
    created BIGINT NOT NULL,
    last_used BIGINT,
    UNIQUE(user_id, label)
);
CREATE INDEX app_passwords_hash ON app_passwords(user_id, hash);
