-- Schema version 4: URLAUTH mailbox access keys (RFC 4467 §2.4), one random key per mailbox,
-- in the owner's key table; gone with the mailbox (and so with the account).
CREATE TABLE urlauth_keys(
    mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key BYTEA NOT NULL
);
CREATE INDEX urlauth_keys_user ON urlauth_keys(user_id);
