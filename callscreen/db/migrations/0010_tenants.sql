-- callscreen schema, version 10: many accounts (tenants) in one database.
--
-- Every row already carries account_id (version 1). Accounts get a name: the word an admin types
-- (`callscreen --account acme ...`) and Asterisk sends (`AGI(agi://host/screen,101,acme)`). The
-- account that existed before is "default", so every command and dialplan from before keeps
-- working. A superuser is the hosted provider's role: it manages accounts.

ALTER TABLE accounts ADD COLUMN name TEXT;
UPDATE accounts SET name = 'default' WHERE id = 1;
UPDATE accounts SET name = 'account' || id WHERE name IS NULL;
CREATE UNIQUE INDEX accounts_name ON accounts (name);
ALTER TABLE accounts ADD COLUMN created_at REAL;

ALTER TABLE users ADD COLUMN superuser INTEGER NOT NULL DEFAULT 0 CHECK (superuser IN (0, 1));
