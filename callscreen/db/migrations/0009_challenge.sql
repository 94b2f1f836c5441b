-- callscreen schema, version 9: the challenge ("press N to be connected").
--
-- block_anonymous (0/1) becomes anonymous: allow, block or challenge. New: unknown (allow or
-- challenge every caller on no list), remember (seconds a caller who passed stays on the
-- extension's allowlist; 0 not at all) and fallback (what a caller who failed gets). On an
-- extension NULL means "the account's". The account's rules apply account-wide when
-- account-wide blocking is on, like its anonymous rule always did.

ALTER TABLE accounts ADD COLUMN anonymous TEXT NOT NULL DEFAULT 'allow'
    CHECK (anonymous IN ('allow', 'block', 'challenge'));
UPDATE accounts SET anonymous = CASE block_anonymous WHEN 1 THEN 'block' ELSE 'allow' END;
ALTER TABLE accounts DROP COLUMN block_anonymous;
ALTER TABLE accounts ADD COLUMN unknown TEXT NOT NULL DEFAULT 'allow'
    CHECK (unknown IN ('allow', 'challenge'));
ALTER TABLE accounts ADD COLUMN remember REAL NOT NULL DEFAULT 0 CHECK (remember >= 0);
ALTER TABLE accounts ADD COLUMN fallback TEXT NOT NULL DEFAULT 'busy'
    CHECK (fallback IN ('voicemail', 'busy', 'hangup'));

ALTER TABLE extensions ADD COLUMN anonymous TEXT NOT NULL DEFAULT 'allow'
    CHECK (anonymous IN ('allow', 'block', 'challenge'));
UPDATE extensions SET anonymous = CASE block_anonymous WHEN 1 THEN 'block' ELSE 'allow' END;
ALTER TABLE extensions DROP COLUMN block_anonymous;
ALTER TABLE extensions ADD COLUMN unknown TEXT NOT NULL DEFAULT 'allow'
    CHECK (unknown IN ('allow', 'challenge'));
ALTER TABLE extensions ADD COLUMN remember REAL CHECK (remember IS NULL OR remember >= 0);
ALTER TABLE extensions ADD COLUMN fallback TEXT
    CHECK (fallback IS NULL OR fallback IN ('voicemail', 'busy', 'hangup'));
