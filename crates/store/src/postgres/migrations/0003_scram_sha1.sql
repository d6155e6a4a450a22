-- SCRAM-SHA-1 keys per account (kept only where `[auth] scram_sha1` is on): as scram_keys,
-- dropped with the password hash.
CREATE TABLE scram_sha1_keys(
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    iterations BIGINT NOT NULL,
    salt BYTEA NOT NULL,
    stored_key BYTEA NOT NULL,
    server_key BYTEA NOT NULL
);
