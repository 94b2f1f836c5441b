-- callscreen schema, version 3: a counter the screening server reads on every call to know
-- whether its cached settings are still current (one tiny read instead of re-reading them).
-- It moves on any change to the account, the extensions, or a prefix entry (prefix entries are
-- cached whole; exact entries are always looked up in the index, so they need no bump, and a
-- bulk import of exact numbers fires no work here). Hit counters do not move it.

CREATE TABLE settings_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO settings_version (id, version) VALUES (1, 0);

CREATE TRIGGER accounts_insert AFTER INSERT ON accounts
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER accounts_update AFTER UPDATE ON accounts
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER accounts_delete AFTER DELETE ON accounts
BEGIN UPDATE settings_version SET version = version + 1; END;

CREATE TRIGGER extensions_insert AFTER INSERT ON extensions
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER extensions_update AFTER UPDATE ON extensions
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER extensions_delete AFTER DELETE ON extensions
BEGIN UPDATE settings_version SET version = version + 1; END;

CREATE TRIGGER prefix_entries_insert AFTER INSERT ON entries WHEN NEW.prefix = 1
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER prefix_entries_update
AFTER UPDATE OF account_id, scope, ext, kind, value, prefix, raw, note, expires_at ON entries
WHEN OLD.prefix = 1 OR NEW.prefix = 1
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER prefix_entries_delete AFTER DELETE ON entries WHEN OLD.prefix = 1
BEGIN UPDATE settings_version SET version = version + 1; END;

-- Loading the prefix entries must not scan a list of a million exact numbers.
CREATE INDEX entries_prefixes ON entries (account_id) WHERE prefix = 1;
