"""Store faults while the server runs: calls always answered, fail open, recover by itself."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3

from callscreen.app import Server
from callscreen.db import Store
from callscreen.db.lookup import Lookup
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .fake_asterisk import place_call

FAIL_OPEN = ['EXEC MSet "CALLSCREEN_RESULT=ALLOWED,CALLSCREEN_REASON=error"']


async def _blocked(store: Store) -> None:
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+13035551212")])
    await store.set_extension("101", enabled=True)


def _rows(db: os.PathLike[str]) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM call_log").fetchone()[0])


async def test_refused_log_writes_are_kept_and_retried(
    server: Server, port: int, store: Store
) -> None:
    await _blocked(store)
    assert server.recorder is not None
    await store._db.execute("PRAGMA query_only=ON")  # the writer's database turns read-only
    calls = await asyncio.gather(
        *[place_call(port, ext="101", callerid="+13035551212") for _ in range(10)]
    )
    assert all(t.apps == ["MSet", "Busy"] for t in calls)  # screening unaffected
    assert not await server.recorder.flush()
    assert server.recorder.queued == 10 and server.recorder.write_errors >= 1
    await store._db.execute("PRAGMA query_only=OFF")
    assert await server.recorder.flush()
    assert _rows(server.config.db) == 10 and server.recorder.dropped == 0


async def test_missing_file_fails_open_then_recovers(
    server: Server, port: int, store: Store, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    await _blocked(store)
    db = server.config.db
    aside = db.with_suffix(".aside")
    os.rename(db, aside)
    await asyncio.sleep(Lookup.FILE_CHECK_INTERVAL + 0.1)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == FAIL_OPEN
    os.rename(aside, db)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"]


async def test_replaced_file_is_picked_up(
    server: Server, port: int, store: Store, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    restored = tmp_path / "restored.db"
    other = await Store.open(restored)
    await _blocked(other)
    await other.close()
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands[0].endswith('CALLSCREEN_REASON=blocking-off"')
    shutil.move(restored, server.config.db)  # an admin restores a backup over the file
    await asyncio.sleep(Lookup.FILE_CHECK_INTERVAL + 0.1)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"]
