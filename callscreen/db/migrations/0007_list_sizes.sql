-- callscreen schema, version 7: the size of every list, kept by triggers.
--
-- A page of a list shows its total. count(*) over a list of 1,000,000 entries reads the whole
-- index range (about 45 ms), on every page; this row is one lookup. Entries never move between
-- lists (an UPDATE changes only raw, note, expiry and counters), so insert and delete are all
-- that change a size.
CREATE TABLE list_sizes (
    account_id INTEGER NOT NULL,
    scope      TEXT    NOT NULL,
    ext        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (account_id, scope, ext, kind)
) WITHOUT ROWID;

INSERT INTO list_sizes (account_id, scope, ext, kind, n)
    SELECT account_id, scope, ext, kind, count(*) FROM entries
    GROUP BY account_id, scope, ext, kind;

CREATE TRIGGER list_sizes_insert AFTER INSERT ON entries BEGIN
    INSERT INTO list_sizes (account_id, scope, ext, kind, n)
        VALUES (NEW.account_id, NEW.scope, NEW.ext, NEW.kind, 1)
        ON CONFLICT (account_id, scope, ext, kind) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER list_sizes_delete AFTER DELETE ON entries BEGIN
    UPDATE list_sizes SET n = n - 1
        WHERE account_id = OLD.account_id AND scope = OLD.scope AND ext = OLD.ext
          AND kind = OLD.kind;
END;
