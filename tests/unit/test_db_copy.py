"""``callscreen db copy``: SQLite to PostgreSQL and back, row for row, all or nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from callscreen.cli import main
from callscreen.db import dbcopy
from callscreen.db.backends import Conn, open_conn
from callscreen.db.errors import StoreError


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


async def fill(db: Path | str, calls: int = 7) -> None:
    """Some of every table, with gaps in the ids (removed rows) and awkward values."""
    conn = await open_conn(db)
    try:
        async with conn.transaction() as tx:
            await tx.execute("UPDATE accounts SET enabled = 1, remember = 86400 WHERE id = 1")
            await tx.execute(
                "INSERT INTO accounts (id, name, treatment, created_at) VALUES (7, 'acme', "
                "'torture', 1.5)"
            )
            await tx.execute(
                "INSERT INTO extensions (account_id, ext, enabled, updated_at, fallback) "
                "VALUES (1, '101', 1, 2.25, 'hangup'), (7, '101', 0, 3, NULL)"
            )
            for i in range(12):
                await tx.insert(
                    "INSERT INTO entries (account_id, scope, ext, kind, value, prefix, raw, "
                    "note, created_at, hits, last_hit, expires_at, field) VALUES "
                    "(?, ?, ?, 'block', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        1 if i % 3 else 7,
                        "ext" if i % 2 else "account",
                        "101" if i % 2 else "",
                        f"+1303555{i:04d}" if i != 5 else "scam likely",
                        1 if i == 4 else 0,
                        f"raw ‘{i}’ \u202e",
                        "note, with 'quotes'",
                        1000.0 + i,
                        i,
                        None if i % 4 else 99.5,
                        None if i % 5 else 1e12,
                        "name" if i == 5 else "number",
                    ),
                )
            await tx.execute("DELETE FROM entries WHERE id IN (2, 3)")  # gaps in the ids
            uid = await tx.insert(
                "INSERT INTO users (account_id, username, password_hash, role, created_at, "
                "updated_at, superuser) VALUES (1, 'Alice', '$argon2id$x', 'admin', 1, 2, 1) "
                "RETURNING id"
            )
            await tx.execute(
                "INSERT INTO user_extensions (user_id, ext) VALUES (?, '101'), (?, '102')",
                (uid, uid),
            )
            await tx.execute(
                "INSERT INTO tokens (user_id, name, hash, created_at) VALUES (?, 'ci', 'h1', 5)",
                (uid,),
            )
            await tx.execute(
                "INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at, ip) "
                "VALUES ('s1', ?, 'c', 1, 2, '::1')",
                (uid,),
            )
            await tx.executemany(
                "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, "
                "reason, treatment, entry_id, duration, uniqueid, caller_name) VALUES "
                "(1, ?, '101', ?, ?, 'BLOCKED', 'ext-blocklist', 'busy', 1, 0.5, NULL, ?)",
                [(1e9 + i, f"303555{i:04d}", None if i % 2 else "+1", "Ünïcode")
                 for i in range(calls)],
            )  # fmt: skip
            await tx.execute(
                "INSERT INTO audit_log (account_id, time, actor, source, action, target, after) "
                "VALUES (1, 9, 'root', 'cli', 'block.add', 'ext:101', '{\"a\": [1]}')"
            )
    finally:
        await conn.close()


async def dump(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    conn: Conn = await open_conn(db)
    out = {}
    try:
        for table in dbcopy.TABLES:
            cols = sorted(await dbcopy._columns(conn, table))
            rows = await conn.fetchall(f"SELECT {', '.join(cols)} FROM {table}")
            out[table] = sorted(rows, key=repr)
    finally:
        await conn.close()
    return out


async def test_sqlite_to_postgresql_and_back_row_for_row(
    tmp_path: Path, pg_cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    src, back = tmp_path / "src.db", tmp_path / "back.db"
    await fill(src)
    pg = pg_cluster.empty_database()  # never opened: db copy migrates it
    copied = await dbcopy.copy(src, pg, batch=2)  # many batches
    assert {c.table: c.rows for c in copied}["call_log"] == 7
    assert await dump(pg) == await dump(src)
    assert await asyncio.to_thread(cli, "db", "copy", pg, str(back)) == 0
    out = capsys.readouterr().out
    assert "call_log" in out and "copied" in out
    assert await dump(back) == await dump(src)
    # The identity sequences were moved past the copied ids.
    conn = await open_conn(pg)
    try:
        new = await conn.insert(
            "INSERT INTO entries (scope, kind, value, prefix, raw, created_at) "
            "VALUES ('account', 'block', '+9', 0, '9', 0) RETURNING id"
        )
        assert new == 13
    finally:
        await conn.close()


async def test_a_target_with_data_is_refused_with_one_line(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.db"
    await fill(src)
    await fill(pg_url)
    assert await asyncio.to_thread(cli, "db", "copy", str(src), pg_url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err
    assert await asyncio.to_thread(cli, "db", "copy", str(src), str(src)) == 2
    assert await asyncio.to_thread(cli, "db", "copy", str(tmp_path / "none.db"), pg_url) == 2


async def test_a_failure_midway_leaves_the_target_empty(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src.db"
    await fill(src, calls=30)
    before = await dump(pg_url)
    from callscreen.db.backends.postgres import PgConn

    real = PgConn.copy_rows

    async def failing(self: PgConn, table: str, *args: Any) -> None:
        if table == "call_log":
            raise StoreError("disk full, say")
        await real(self, table, *args)

    monkeypatch.setattr(PgConn, "copy_rows", failing)
    with pytest.raises(StoreError, match="disk full"):
        await dbcopy.copy(src, pg_url, batch=10)
    monkeypatch.undo()
    assert await dump(pg_url) == before
    await dbcopy.copy(src, pg_url)  # and it can be done again
    assert await dump(pg_url) == await dump(src)
