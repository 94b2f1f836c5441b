-- callscreen schema, version 8: caller-name rules (block on agi_calleridname).
--
-- A name rule is an entry like any other (its id, hits, last hit, note, expiry, list size,
-- call_log.entry_id, list/remove and the audit all work unchanged), with field = 'name':
-- value is the rule as callscreen.names.parse_rule stores it, casefolded with its '*'
-- ('scam likely', 'v*', '*spam*', '*likely'), and prefix is always 0 (the '*' is in value).
-- Existing rows are numbers (the default).
ALTER TABLE entries ADD COLUMN field TEXT NOT NULL DEFAULT 'number'
    CHECK (field IN ('number', 'name'));

-- field joins the key: a name rule '+13035551212' (carriers do send the number as the name)
-- is not the number entry +13035551212. The leading columns are unchanged, so the per-call
-- probe (account_id, value, prefix) still uses it.
DROP INDEX entries_key;
CREATE UNIQUE INDEX entries_key ON entries (account_id, value, prefix, scope, ext, kind, field);

-- Name rules are cached whole by the screening server, like prefix entries: any change to one
-- moves settings_version, so the next call sees it (hit counters do not move it).
CREATE TRIGGER name_entries_insert AFTER INSERT ON entries WHEN NEW.field = 'name'
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER name_entries_update
AFTER UPDATE OF account_id, scope, ext, kind, value, prefix, raw, note, expires_at, field
ON entries WHEN OLD.field = 'name' OR NEW.field = 'name'
BEGIN UPDATE settings_version SET version = version + 1; END;
CREATE TRIGGER name_entries_delete AFTER DELETE ON entries WHEN OLD.field = 'name'
BEGIN UPDATE settings_version SET version = version + 1; END;

-- Loading the name rules must not scan a list of a million numbers.
CREATE INDEX entries_names ON entries (account_id) WHERE field = 'name';
