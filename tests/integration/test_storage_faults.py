"""Storage faults, one test per class, against the real server and a real SQLite file.

What each asserts is what the admin would check: calls screened correctly throughout, the
admin told within seconds (one ERROR line, then a WARNING when it recovers), the call-log rows
in the database counted against the calls made once the fault clears (0 lost), and the
server's shutdown ending. The disk-level faults (a full tmpfs, a read-only remount) run as
root in ``test_disk_faults.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callscreen.app import Server
from callscreen.cli import main
from callscreen.db import Store, StoreError
from callscreen.db.backends.sqlite import SqliteConn
from callscreen.db.recorder import Recorder
from callscreen.db.store import CallRecord
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .counts import call_log_rows as _rows
from .counts import entries as _entries
from .fake_asterisk import place_call

BLOCKED = "+13035551212"


async def _setup(store: Store) -> None:
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern(BLOCKED)])
    await store.set_extension("101", enabled=True)


async def _calls(port: int, n: int) -> None:
    """n calls, half blocked: each must be screened exactly as without the fault."""
    transcripts = await asyncio.gather(
        *[
            place_call(port, ext="101", callerid=BLOCKED if i % 2 else f"+1720555{i:04d}")
            for i in range(n)
        ]
    )
    for i, t in enumerate(transcripts):
        assert t.apps == (["MSet", "Busy"] if i % 2 else ["MSet"]), t.commands
        assert t.closed_by_server


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


class FailingConnection:
    """A connection double: COMMIT fails ``times`` times with ``error``; with
    ``sqlite_rolled_back`` the transaction is rolled back first, as SQLite itself does on
    SQLITE_FULL or SQLITE_IOERR at commit (the original bug: our ROLLBACK then raised)."""

    def __init__(
        self, real: Any, error: str, times: int, *, sqlite_rolled_back: bool = False
    ) -> None:
        self._real = real
        self.error = error
        self.times = times
        self.sqlite_rolled_back = sqlite_rolled_back
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    @property
    def in_transaction(self) -> bool:
        return bool(self._real.in_transaction)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self.failed < self.times:
            self.failed += 1
            return self._fail()
        return self._real.execute(sql, *args)

    async def _fail(self) -> None:
        if self.sqlite_rolled_back:
            await self._real.execute("ROLLBACK")
        raise sqlite3.OperationalError(self.error)


@pytest.mark.parametrize(
    ("error", "rolled_back"),
    [("database or disk is full", True), ("disk I/O error", False), ("disk I/O error", True)],
)
async def test_commit_fails_then_clears_nothing_lost(
    server: Server, port: int, store: Store, caplog: pytest.LogCaptureFixture, error: str,
    rolled_back: bool,
) -> None:  # fmt: skip
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    double = FailingConnection(store._db, error, times=3, sqlite_rolled_back=rolled_back)
    store._db = double  # type: ignore[assignment]
    with caplog.at_level(logging.INFO, logger="callscreen"):
        await _calls(port, 20)
        told = await _until(lambda: rec.write_errors >= 1, 2.0, "a failed write noticed")
        assert told < 1.0
        print(f"\ncommit fails ({error}): told after {told:.2f} s")
        await _calls(port, 20)  # screening goes on while the writes fail
        await _until(lambda: rec.failing_since is None and rec.queued == 0, 10.0, "recovery")
    store._db = double._real
    assert _rows(server.config.db) == 40 and rec.dropped == 0  # 0 lost
    errors = _messages(caplog, logging.ERROR)
    assert len([m for m in errors if "call log writes failing" in m]) == 1, errors
    assert error in errors[0]
    assert any("call log writes recovered" in m for m in _messages(caplog, logging.WARNING))
    assert rec._task is not None and not rec._task.done()  # the writer lives on


async def test_transaction_helper_raises_only_store_error(store: Store) -> None:
    store._db = FailingConnection(  # type: ignore[assignment]
        store._db, "database or disk is full", times=1, sqlite_rolled_back=True
    )
    with pytest.raises(StoreError, match="disk is full"):
        await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern(BLOCKED)])
    assert not store._db.in_transaction
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern(BLOCKED)])


async def test_disk_full_max_page_count(
    server: Server, port: int, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLITE_FULL for real (the page limit stands in for a full disk without root)."""
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    async with store._db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await store._db.execute(f"PRAGMA max_page_count={row[0]}")  # no page more
    with caplog.at_level(logging.INFO, logger="callscreen"):
        for _ in range(5):
            await _calls(port, 40)
        await _until(lambda: rec.failing_since is not None, 2.0, "disk full noticed")
        assert "full" in rec.last_error
        await store._db.execute("PRAGMA max_page_count=1073741823")  # space again
        await _until(lambda: rec.failing_since is None and rec.queued == 0, 10.0, "recovery")
    assert _rows(server.config.db) == 200 and rec.dropped == 0
    assert any("full" in m for m in _messages(caplog, logging.ERROR))


async def test_locked_past_the_busy_timeout(
    server: Server, port: int, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    locker = sqlite3.connect(server.config.db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past 5 s
    try:
        with caplog.at_level(logging.INFO, logger="callscreen"):
            await _calls(port, 20)
            told = await _until(lambda: rec.failing_since is not None, 8.0, "locked noticed")
            print(f"\nlocked: told after {told:.2f} s")
            await _calls(port, 20)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await _until(lambda: rec.failing_since is None and rec.queued == 0, 10.0, "recovery")
    assert _rows(server.config.db) == 40
    assert any("locked" in m for m in _messages(caplog, logging.ERROR))


async def test_deleted_file_is_not_written_then_restored(
    server: Server, port: int, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    db = server.config.db
    await _calls(port, 10)
    await _until(lambda: rec.written == 10, 2.0, "first rows written")
    aside = db.with_suffix(".aside")
    os.rename(db, aside)  # deleted or moved away under the running server
    with caplog.at_level(logging.INFO, logger="callscreen"):
        await asyncio.sleep(1.1)  # the lookup notices within a second: calls fail open
        ts = await asyncio.gather(
            *[place_call(port, ext="101", callerid=BLOCKED) for _ in range(5)]
        )
        assert all(t.commands[0].endswith('CALLSCREEN_REASON=error"') for t in ts)
        await _until(lambda: rec.failing_since is not None, 2.0, "gone noticed")
        assert "gone" in rec.last_error
    await asyncio.sleep(0.5)
    assert rec.written == 10  # nothing written into the file moved away, nor a new one
    assert not db.exists()
    os.rename(aside, db)
    await _until(lambda: rec.failing_since is None and rec.queued == 0, 10.0, "recovery")
    assert _rows(db) == 15
    await _calls(port, 10)  # and screening is back
    assert any("is gone" in m for m in _messages(caplog, logging.ERROR))


async def test_replaced_file_gets_the_rows(
    server: Server, port: int, store: Store, tmp_path: Path
) -> None:
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    db = server.config.db
    await _calls(port, 10)
    await _until(lambda: rec.written == 10, 2.0, "first rows written")
    shutil.copy(db, tmp_path / "backup.db")
    shutil.move(tmp_path / "backup.db", db)  # an admin restores a backup over the file
    await asyncio.sleep(1.1)
    await _calls(port, 10)
    await _until(lambda: rec.written == 20, 3.0, "rows written to the new file")
    assert _rows(db) == 20


async def test_writer_task_that_dies_is_restarted(
    server: Server, port: int, store: Store, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    await _setup(store)
    rec = server.recorder
    assert rec is not None

    class WriterBug(BaseException):
        """Gets past the writer's ``except Exception``, as a bug in the writer would: the task
        itself dies. Injected through the store: the Recorder is a compiled class (setup.py),
        whose methods cannot be replaced on an instance."""

    real_write = rec.store.write_calls
    crashes = [WriterBug("a bug in the writer")]

    async def write_calls(*args: Any) -> None:
        if crashes:
            raise crashes.pop()
        await real_write(*args)

    monkeypatch.setattr(rec.store, "write_calls", write_calls)
    with caplog.at_level(logging.INFO, logger="callscreen"):
        await _calls(port, 10)
        await _until(lambda: rec.restarts == 1, 2.0, "writer restarted")
        await _until(lambda: rec.written == 10, 3.0, "rows written after the restart")
    assert any("a bug in the writer" in m for m in _messages(caplog, logging.ERROR))


async def test_queue_cap_drops_newest_counts_hits(store: Store) -> None:
    rec = Recorder(store, max_queued=5)
    calls = [
        CallRecord(float(i), "101", "x", None, "BLOCKED", "ext-blocklist", "busy", 1, 0.0)
        for i in range(8)
    ]
    for c in calls:
        rec.record(c)
    assert rec.queued == 5 and rec.dropped == 3
    assert [c.time for c in rec._calls] == [0.0, 1.0, 2.0, 3.0, 4.0]  # the oldest are kept
    assert rec._hits == {1: (8, 7.0)}  # every call counted on its entry


async def test_close_is_bounded_when_the_write_never_returns(store: Store) -> None:
    stuck = asyncio.Event()

    async def never(*_: object) -> None:
        await stuck.wait()

    store.write_calls = never  # type: ignore[method-assign]
    rec = Recorder(store, interval=0.05)
    rec.start()
    for i in range(7):
        rec.record(CallRecord(float(i), "101", "x", None, "ALLOWED", "not-listed", None, None, 0))
    await asyncio.sleep(0.2)  # the writer is inside the stuck write
    started = time.monotonic()
    lost = await rec.close(timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert lost == 7


async def test_health_and_metrics_say_degraded(
    server: Server, port: int, store: Store, tmp_path: Path
) -> None:
    await _setup(store)
    rec = server.recorder
    assert rec is not None
    store._db = FailingConnection(store._db, "disk I/O error", times=10**6)  # type: ignore
    await _calls(port, 6)
    await _until(lambda: rec.failing_since is not None, 2.0, "failure noticed")
    ok, text = server.health()
    assert ok and text.startswith("degraded: call log writes failing")
    assert "6 rows queued" in text and "disk I/O error" in text
    from callscreen.metrics import exposition

    metrics = exposition(server)
    assert "callscreen_call_log_failing 1" in metrics
    assert "callscreen_call_log_queue 6" in metrics
    assert 'callscreen_db_errors_total{op="call_log_write"} ' in metrics
    store._db.times = 0  # type: ignore[attr-defined]
    await _until(lambda: rec.failing_since is None, 10.0, "recovery")
    assert server.health() == (True, "ok")
    assert "callscreen_call_log_failing 0" in exposition(server)


# -- the CLI under the same faults: one line, a non-zero exit, nothing half-written ------------
def _cli(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["--db", str(db), *args])
        raise SystemExit(0)
    return int(exit_.value.code or 0), capsys.readouterr().err


def test_cli_write_while_locked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cs.db"
    assert _cli(db, capsys, "block", "add", "--ext", "101", "+13035550001")[0] == 0
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        code, err = _cli(db, capsys, "block", "add", "--ext", "101", "+13035550002", "+1303555")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert code == 1 and err.count("\n") == 1 and "locked" in err, err
    assert _entries(db) == 1


def test_cli_write_with_io_error_on_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cs.db"
    assert _cli(db, capsys, "block", "add", "--ext", "101", "+13035550001")[0] == 0
    real = SqliteConn._connect

    async def failing(path: Path) -> Any:
        return FailingConnection(await real(path), "disk I/O error", 1, sqlite_rolled_back=True)

    monkeypatch.setattr(SqliteConn, "_connect", staticmethod(failing))
    code, err = _cli(db, capsys, "block", "add", "--ext", "101", "+13035550002", "+13035550003")
    assert code == 1 and err.count("\n") == 1 and "disk I/O error" in err, err
    assert "Traceback" not in err
    assert _entries(db) == 1


async def test_queued_rows_are_bounded(store: Store) -> None:
    """A hostile 60 KB caller ID while the disk is full must not cost 60 KB a queued row."""
    rec = Recorder(store)
    huge = "\x1b" * 60_000
    rec.record(CallRecord(0.0, "1" * 500, huge, None, "ALLOWED", "not-listed", None, None, 0.0,
                          uniqueid="u" * 999, caller_name=huge))  # fmt: skip
    (row,) = rec._calls
    assert max(len(row.ext), len(row.caller_raw), len(row.uniqueid or ""),
               len(row.caller_name or "")) == 256  # fmt: skip
    assert row.caller_raw.endswith("…[+59759 chars]")  # 241 kept + the 15-char marker
