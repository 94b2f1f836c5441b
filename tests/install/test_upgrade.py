"""An upgrade from the oldest schema: every row survives, and the old database is kept first.

The database is built the way version 1 of callscreen built it (migration 0001 only), filled
through its own columns, then opened by today's code.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callscreen.db import Store
from callscreen.db.errors import StoreError
from callscreen.db.schema import LATEST_VERSION, migrations

V1_TABLES = {
    "accounts": "id, enabled, block_anonymous, treatment, updated_at",
    "extensions": "account_id, ext, enabled, block_anonymous, treatment, mailbox, updated_at",
    "entries": "id, account_id, scope, ext, kind, value, prefix, raw, note, created_at, hits, "
    "last_hit",
    "call_log": "id, account_id, time, ext, caller_raw, caller_e164, result, reason, treatment, "
    "entry_id, duration, uniqueid",
}


def make_v1(path: Path) -> None:
    version, _name, sql = migrations()[0]
    assert version == 1
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.execute("PRAGMA user_version=1")
    conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        conn.execute("UPDATE accounts SET enabled=1, block_anonymous=1, treatment='torture'")
        for i in range(30):
            conn.execute(
                "INSERT INTO extensions VALUES (1, ?, ?, ?, ?, ?, ?)",
                (
                    f"1{i:02}",
                    i % 2,
                    (i // 2) % 2,
                    ["busy", "voicemail", None][i % 3],
                    f"1{i:02}@default" if i % 4 == 0 else None,
                    1700000000.5 + i,
                ),
            )
        for i in range(500):
            scope = "account" if i % 5 == 0 else "ext"
            conn.execute(
                "INSERT INTO entries (scope, ext, kind, value, prefix, raw, note, created_at,"
                " hits, last_hit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scope,
                    "" if scope == "account" else f"1{i % 30:02}",
                    "allow" if i % 7 == 0 else "block",
                    f"+1303555{i:04}",
                    i % 11 == 0,
                    f"303-555-{i:04} ☎",
                    f"note {i} \u202e",
                    1700000000.0 + i,
                    i % 13,
                    None if i % 3 else 1700001000.0 + i,
                ),
            )
        for i in range(2000):
            conn.execute(
                "INSERT INTO call_log (time, ext, caller_raw, caller_e164, result, reason,"
                " treatment, entry_id, duration, uniqueid) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    1700000000.0 + i,
                    f"1{i % 30:02}",
                    f"+1303555{i % 600:04}",
                    None if i % 17 == 0 else f"+1303555{i % 600:04}",
                    "BLOCKED" if i % 3 else "ALLOWED",
                    "ext-blocklist" if i % 3 else "not-listed",
                    "busy" if i % 3 else None,
                    i % 500 or None,
                    0.01 * i,
                    f"{i}.1",
                ),
            )
    conn.close()


#: Version 9 turned block_anonymous (0/1) into anonymous ('allow'/'block'/'challenge').
ANONYMOUS_V9 = "CASE anonymous WHEN 'block' THEN 1 ELSE 0 END"


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        v9 = conn.execute("PRAGMA user_version").fetchone()[0] >= 9
        return {
            t: conn.execute(
                f"SELECT {cols.replace('block_anonymous', ANONYMOUS_V9) if v9 else cols} "
                f"FROM {t} ORDER BY 1, 2"
            ).fetchall()
            for t, cols in V1_TABLES.items()
        }
    finally:
        conn.close()


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [*conn.iterdump(), f"user_version={conn.execute('PRAGMA user_version').fetchone()}"]
    finally:
        conn.close()


async def test_upgrade_from_v1_keeps_every_row_and_a_backup(tmp_path: Path) -> None:
    db = tmp_path / "callscreen.db"
    make_v1(db)
    before, old_dump = rows(db), dump(db)
    assert sum(map(len, before.values())) == 1 + 30 + 500 + 2000

    async with await Store.open(db) as store:  # the account of every command from before
        assert (store.account, store.account_id) == ("default", 1)
        assert [(a.name, a.id, a.extensions) for a in await store.account_list()] == [
            ("default", 1, 30)
        ]

    assert rows(db) == before  # every row, every column, after all migrations
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert conn.execute("SELECT count(*) FROM entries WHERE expires_at IS NOT NULL").fetchone() == (
        0,
    )
    sizes = dict(
        ((s, e, k), n) for s, e, k, n in conn.execute("SELECT scope, ext, kind, n FROM list_sizes")
    )
    conn.close()
    assert sum(sizes.values()) == 500
    backup = tmp_path / "callscreen.db.v1.bak"
    assert dump(backup) == old_dump  # the backup is the old database, schema and rows
    assert sorted(p.name for p in tmp_path.iterdir() if ".bak" in p.name) == [backup.name]


async def test_no_backup_without_a_migration(tmp_path: Path) -> None:
    db = tmp_path / "callscreen.db"
    async with await Store.open(db):  # new: created at the latest version, nothing to keep
        pass
    async with await Store.open(db):  # current: nothing to migrate
        pass
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".bak")]


async def test_no_migration_when_the_backup_cannot_be_written(tmp_path: Path) -> None:
    db = tmp_path / "callscreen.db"
    make_v1(db)
    old = dump(db)
    (tmp_path / "callscreen.db.v1.bak").mkdir()  # the backup's name is taken by a directory
    with pytest.raises(StoreError, match="not migrating"):
        await Store.open(db)
    assert dump(db) == old  # still version 1, untouched


async def test_upgrade_from_v7_makes_every_entry_a_number_and_takes_name_rules(
    tmp_path: Path,
) -> None:
    """Migration 0008 (caller-name rules): old entries are numbers, still found by the call
    path; a name rule spelled like a listed number is a separate entry, not a conflict."""
    from callscreen.db.lookup import Lookup
    from callscreen.names import parse_rule
    from callscreen.numbers import Pattern
    from callscreen.policy import Field, Kind, Scope

    db = tmp_path / "callscreen.db"
    conn = sqlite3.connect(db)
    for version, _name, sql in migrations():
        if version <= 7:
            conn.executescript(sql)
    conn.execute("PRAGMA user_version=7")
    with conn:
        conn.execute(
            "INSERT INTO entries (scope, ext, kind, value, prefix, raw, created_at)"
            " VALUES ('ext', '101', 'block', '+13035551212', 0, '303-555-1212', 1700000000)"
        )
    conn.close()
    async with await Store.open(db) as store:
        [old] = await store.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
        assert old.entry.field is Field.NUMBER and old.entry.value == "+13035551212"
        rule = parse_rule("+13035551212")
        added, _ = await store.add_entries(
            Scope.EXTENSION, "101", Kind.BLOCK, [Pattern(rule.value, False, rule.raw)],
            field=Field.NAME,
        )  # fmt: skip
        assert len(added) == 1
        assert await store.count_entries(Scope.EXTENSION, "101", Kind.BLOCK) == 2
    assert (tmp_path / "callscreen.db.v7.bak").exists()
    lookup = Lookup(db)
    try:
        _, _, found = lookup.read("101", "+13035551212")  # no name: the number entry only
        assert [(e.field, e.value) for e in found] == [(Field.NUMBER, "+13035551212")]
        _, _, found = lookup.read("101", "+13035550000", "+13035551212")
        assert [(e.field, e.value) for e in found] == [(Field.NAME, "+13035551212")]
    finally:
        lookup.close()
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
