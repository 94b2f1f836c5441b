"""The driver interface on both backends: placeholders, counts, ids, transactions, errors,
streams, and the PostgreSQL schema against SQLite's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from callscreen.db import schema
from callscreen.db.backends import Conn, open_conn
from callscreen.db.backends import postgres as pgb
from callscreen.db.errors import Conflict, StoreError
from callscreen.db.url import display, is_postgres, parse


@pytest.fixture
async def conn(db_url: Path | str) -> Conn:  # type: ignore[misc]
    c = await open_conn(db_url)
    yield c
    await c.close()


def test_translate_placeholders() -> None:
    assert pgb.translate("SELECT ? , ?") == "SELECT $1 , $2"
    assert pgb.translate("VALUES (?1, ?2, ?12) WHERE x <= ?11") == (
        "VALUES ($1, $2, $12) WHERE x <= $11"
    )
    assert pgb.translate("SELECT '?', \"a?\" -- ?\n, ?") == "SELECT '?', \"a?\" -- ?\n, $1"
    assert pgb.translate("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"


def test_url_decides_the_backend() -> None:
    assert is_postgres(parse("postgresql://u@h:5432/db"))
    assert is_postgres(parse("postgres://u@h/db"))
    assert parse("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert parse("~/x.db") == Path("~/x.db").expanduser()
    assert not is_postgres(Path("postgresql:/x"))
    assert display("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"


async def test_execute_counts_insert_ids_and_transactions(conn: Conn) -> None:
    now = 1.0
    async with conn.transaction() as db:
        id1 = await db.insert(
            "INSERT INTO entries (account_id, scope, ext, kind, value, prefix, raw, created_at) "
            "VALUES (?, 'account', '', 'block', ?, 0, ?, ?) RETURNING id",
            (1, "+1", "1", now),
        )
        n = await db.executemany(
            "INSERT INTO entries (account_id, scope, ext, kind, value, prefix, raw, created_at) "
            "VALUES (?, 'account', '', 'block', ?, 0, ?, ?) ON CONFLICT DO NOTHING",
            [(1, "+1", "1", now), (1, "+2", "2", now), (1, "+3", "3", 2)],  # an int as REAL
        )
    assert n == 2
    assert await conn.execute("UPDATE entries SET hits = hits + 1 WHERE id > ?", (id1,)) == 2
    assert await conn.fetchone("SELECT n FROM list_sizes") == (3,)
    rows = await conn.fetchall("SELECT value, hits FROM entries ORDER BY value")
    assert rows == [("+1", 0), ("+2", 1), ("+3", 1)]
    assert [r async for r in conn.stream("SELECT value FROM entries ORDER BY id", (), 2)] == [
        ("+1",),
        ("+2",),
        ("+3",),
    ]
    with pytest.raises(RuntimeError):
        async with conn.transaction() as db:
            await db.execute("DELETE FROM entries")
            assert await db.fetchone("SELECT count(*) FROM entries") == (0,)
            raise RuntimeError("undo")
    assert await conn.fetchone("SELECT count(*) FROM entries") == (3,)
    async with conn.transaction(rollback=True) as db:
        await db.execute("DELETE FROM entries")
    assert await conn.fetchone("SELECT count(*) FROM entries") == (3,)


async def test_errors_are_store_errors(conn: Conn) -> None:
    sql = (
        "INSERT INTO users (account_id, username, password_hash, role, created_at, updated_at) "
        "VALUES (1, ?, 'h', 'admin', 0, 0)"
    )
    await conn.execute(sql, ("Alice",))
    with pytest.raises(Conflict):
        async with conn.transaction() as db:
            await db.execute(sql, ("alice",))  # one user, any case
    with pytest.raises(StoreError):
        await conn.fetchall("SELECT nope FROM users")
    d = conn.dialect
    row = await conn.fetchone(f"SELECT count(*) FROM users WHERE {d.ci_eq('username')}", ("ALICE",))
    assert row == (1,)
    assert await conn.fetchone(f"SELECT {d.greatest}(1, 2)") == (2,)


async def test_settings_version_moves_like_sqlite(conn: Conn) -> None:
    async def version() -> int:
        row = await conn.fetchone("SELECT version FROM settings_version WHERE id = 1")
        assert row is not None
        return int(row[0])

    v = await version()
    await conn.execute("UPDATE accounts SET enabled = 1 WHERE id = 1")
    assert await version() == v + 1
    await conn.execute(
        "INSERT INTO entries (scope, ext, kind, value, prefix, raw, created_at) "
        "VALUES ('account', '', 'block', '+1', 0, '1', 0)"
    )
    assert await version() == v + 1  # an exact number: no move
    await conn.execute(
        "INSERT INTO entries (scope, ext, kind, value, prefix, raw, created_at) "
        "VALUES ('account', '', 'block', '+2', 1, '2*', 0)"
    )
    assert await version() == v + 2
    await conn.execute("UPDATE entries SET hits = 5")  # hit counters do not move it
    assert await version() == v + 2
    await conn.execute("DELETE FROM entries")
    assert await version() == v + 3
    assert await conn.fetchall("SELECT n FROM list_sizes") == [(0,)]


def _sqlite_columns(tmp_path: Path) -> dict[str, list[str]]:
    c = schema.connect(tmp_path / "s.db")
    try:
        tables = [
            r[0]
            for r in c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: sorted(r[1] for r in c.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        c.close()


async def test_postgres_baseline_equals_sqlite_schema(pg_url: str, tmp_path: Path) -> None:
    conn = await open_conn(pg_url)
    try:
        rows = await conn.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_version'"
        )
        idx = {r[0] for r in await conn.fetchall("SELECT indexname FROM pg_indexes")}
    finally:
        await conn.close()
    pg: dict[str, list[str]] = {}
    for table, column in rows:
        pg.setdefault(table, []).append(column)
    assert {t: sorted(c) for t, c in pg.items()} == _sqlite_columns(tmp_path)
    c = sqlite3.connect(tmp_path / "s.db")
    named = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    c.close()
    assert {i for i in named if not i.startswith("sqlite_")} <= idx


def test_every_sqlite_migration_after_the_baseline_has_a_postgres_twin() -> None:
    pg = {v for v, _, _ in pgb.migrations()}
    baseline = min(pg)
    sqlite = {v for v, _, _ in schema.migrations() if v > baseline}
    assert sqlite <= pg, f"SQLite migrations without a PostgreSQL twin: {sorted(sqlite - pg)}"
    assert pgb.LATEST_VERSION == schema.LATEST_VERSION


async def test_postgres_migrates_once_and_refuses_newer(pg_cluster: object) -> None:
    import asyncio

    url = pg_cluster.empty_database()  # type: ignore[attr-defined]
    a, b = await asyncio.gather(pgb.connect(url), pgb.connect(url))  # two servers starting
    try:
        assert await pgb.schema_version(a) == pgb.LATEST_VERSION
        assert await a.fetchval("SELECT count(*) FROM schema_version") == 1
        await a.execute("INSERT INTO schema_version VALUES (999)")
    finally:
        await a.close()
        await b.close()
    with pytest.raises(StoreError, match="newer"):
        await pgb.connect(url)


async def test_a_nul_in_text_is_stored_on_both_backends(conn: Conn) -> None:
    """PostgreSQL's text refuses NUL: stored as U+FFFD there, so a hostile caller ID cannot
    fail a call-log batch; SQLite keeps it as sent."""
    await conn.execute(
        "INSERT INTO call_log (time, ext, caller_raw, result, reason, duration) "
        "VALUES (1, '101', ?, 'ALLOWED', 'x', 0)",
        ("30\x00355",),
    )
    row = await conn.fetchone("SELECT caller_raw FROM call_log")
    assert row == ("30\x00355" if conn.dialect.name == "sqlite" else "30\ufffd355",)
