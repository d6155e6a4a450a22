-- Schema version 2: object IDs (RFC 8474), save dates (RFC 8514), previews (RFC 8970) and
-- the sort and thread keys (RFC 5256) kept per body. Tables of their own, keyed by the body
-- (and the account), deleted with it; one new column, `messages.saved`.

-- SAVEDATE: when the row was inserted (APPEND, COPY, MOVE, delivery); NULL for mail stored
-- before this version, which reports its INTERNALDATE.
ALTER TABLE messages ADD COLUMN saved BIGINT;
ALTER TABLE messages ALTER COLUMN saved SET DEFAULT floor(extract(epoch FROM now()))::bigint;

-- PREVIEW text computed at delivery, per body; none for mail stored before.
CREATE TABLE previews(
    hash BYTEA PRIMARY KEY REFERENCES bodies(hash) ON DELETE CASCADE,
    preview TEXT NOT NULL
);

-- THREADID per account and body, given at delivery.
CREATE TABLE thread_ids(
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash BYTEA NOT NULL REFERENCES bodies(hash) ON DELETE CASCADE,
    thread TEXT NOT NULL,
    PRIMARY KEY(user_id, hash)
);
CREATE INDEX thread_ids_body ON thread_ids(hash);

-- Every Message-ID seen in an account's mail (its own, References, In-Reply-To) with the
-- thread it belongs to.
CREATE TABLE thread_msgids(
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    msgid TEXT NOT NULL,
    thread TEXT NOT NULL,
    PRIMARY KEY(user_id, msgid)
);

-- Sort and thread keys (opaque to the store, computed by the session), per body.
CREATE TABLE sort_keys(
    hash BYTEA PRIMARY KEY REFERENCES bodies(hash) ON DELETE CASCADE,
    keys BYTEA NOT NULL
);
