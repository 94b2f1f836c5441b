-- callscreen schema, version 1.
-- Every row carries account_id (one account, id 1, for now): tenants are a migration away.

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    enabled         INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    block_anonymous INTEGER NOT NULL DEFAULT 0 CHECK (block_anonymous IN (0, 1)),
    treatment       TEXT    NOT NULL DEFAULT 'busy'
                    CHECK (treatment IN ('voicemail', 'busy', 'torture')),
    updated_at      REAL
);
INSERT INTO accounts (id) VALUES (1);

CREATE TABLE extensions (
    account_id      INTEGER NOT NULL DEFAULT 1 REFERENCES accounts (id),
    ext             TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    block_anonymous INTEGER NOT NULL DEFAULT 0 CHECK (block_anonymous IN (0, 1)),
    treatment       TEXT CHECK (treatment IN ('voicemail', 'busy', 'torture')),
    mailbox         TEXT,
    updated_at      REAL    NOT NULL,
    PRIMARY KEY (account_id, ext)
);

-- Block and allow lists of both scopes. ext is '' for account-wide entries (NULLs would make
-- the UNIQUE constraint useless). value is E.164, or an E.164 prefix when prefix = 1.
CREATE TABLE entries (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL DEFAULT 1 REFERENCES accounts (id),
    scope       TEXT    NOT NULL CHECK (scope IN ('ext', 'account')),
    ext         TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL CHECK (kind IN ('block', 'allow')),
    value       TEXT    NOT NULL,
    prefix      INTEGER NOT NULL CHECK (prefix IN (0, 1)),
    raw         TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    created_at  REAL    NOT NULL,
    hits        INTEGER NOT NULL DEFAULT 0,
    last_hit    REAL,
    CHECK ((scope = 'account') = (ext = ''))
);
-- The screening lookup: value IN (every prefix of the caller's number), so one index probe per
-- candidate whatever the list size.
CREATE UNIQUE INDEX entries_key ON entries (account_id, value, prefix, scope, ext, kind);
CREATE INDEX entries_list ON entries (account_id, scope, ext, kind, value);

CREATE TABLE call_log (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL DEFAULT 1,
    time        REAL    NOT NULL,
    ext         TEXT    NOT NULL,
    caller_raw  TEXT    NOT NULL,
    caller_e164 TEXT,
    result      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    treatment   TEXT,
    entry_id    INTEGER,           -- the entry that decided; no FK: entries may be removed
    duration    REAL    NOT NULL,  -- seconds from connect to close
    uniqueid    TEXT
);
CREATE INDEX call_log_time ON call_log (account_id, time);
CREATE INDEX call_log_ext_time ON call_log (account_id, ext, time);
