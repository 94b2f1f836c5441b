-- callscreen schema, version 6: users, API tokens, portal sessions, and the audit log.
--
-- Passwords are argon2id hashes; tokens and session ids are stored only as SHA-256 hashes (a
-- copy of the database gives no working credential). Everything carries the account.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL DEFAULT 1 REFERENCES accounts (id),
    username      TEXT    NOT NULL COLLATE NOCASE,  -- Alice and alice are one user
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    UNIQUE (account_id, username)
);

-- The extensions a user manages (an admin manages all of them and has no rows here).
CREATE TABLE user_extensions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ext     TEXT    NOT NULL,
    PRIMARY KEY (user_id, ext)
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL DEFAULT '',
    hash         TEXT    NOT NULL UNIQUE,  -- SHA-256 hex of the token
    created_at   REAL    NOT NULL,
    expires_at   REAL,                     -- NULL: never
    last_used_at REAL
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE sessions (
    hash       TEXT    PRIMARY KEY,         -- SHA-256 hex of the cookie value
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT    NOT NULL,            -- the token every cookie-authenticated change sends
    created_at REAL    NOT NULL,
    expires_at REAL    NOT NULL,
    ip         TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Every change from the CLI, the API, the portal (and *32): who, from where, what.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL DEFAULT 1,
    time       REAL    NOT NULL,
    actor      TEXT    NOT NULL,           -- the username, or the OS user for the CLI
    source     TEXT    NOT NULL CHECK (source IN ('cli', 'api', 'portal', 'phone')),
    ip         TEXT,
    action     TEXT    NOT NULL,           -- e.g. block.add, ext.set, user.add, token.create
    target     TEXT    NOT NULL DEFAULT '',-- e.g. ext:101, account, user:alice
    before     TEXT,                       -- JSON, or NULL
    after      TEXT                        -- JSON, or NULL
);
CREATE INDEX audit_time ON audit_log (account_id, time);
