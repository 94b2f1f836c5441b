"""The server prunes its call log by itself (``--log-retention``), keeps screening while it
does, and a prune that fails is logged once and never stops the server."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callscreen.app import Config, Server
from callscreen.db.errors import StoreError
from callscreen.db.store import CallRecord, Store
from callscreen.metrics import exposition

from .fake_asterisk import place_call
from .serve_process import ServeProcess

DAY = 86400.0


def rec(t: float, caller: str = "+13035550000") -> CallRecord:
    return CallRecord(t, "101", caller, caller, "ALLOWED", "not-listed", None, None, 0.1, "u")


def ages(db: Path) -> list[float]:
    now = time.time()
    with sqlite3.connect(db) as conn:
        return [now - r[0] for r in conn.execute("SELECT time FROM call_log")]


async def until(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        db=tmp_path / "callscreen.db",
        port=0,
        header_timeout=1.0,
        reply_timeout=1.0,
        log_retention=30 * DAY,
        log_prune_interval=0.3,
    )


@pytest.fixture
async def server(config: Config) -> AsyncIterator[Server]:
    srv = Server(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_server_prunes_old_rows_on_its_own_and_keeps_new_ones(server: Server) -> None:
    store, pruner = server.store, server.pruner
    assert store is not None and pruner is not None
    now = time.time()
    # 12,000 rows: more than two batches, so the run goes on past the first transaction.
    await store.write_calls([rec(now - 40 * DAY - i) for i in range(12_000)], {})
    await store.write_calls([rec(now - 29 * DAY), rec(now - 60)], {})
    await until(lambda: pruner.pruned >= 12_000)
    left = ages(server.config.db)
    assert len(left) == 2 and max(left) < 30 * DAY
    # A call during and after pruning is screened and logged.
    port = server.addresses[0][1]
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert any("ALLOWED" in c for c in t.commands)
    # It runs again by itself: rows that grew old since are deleted by a later run.
    await store.write_calls([rec(time.time() - 31 * DAY)], {})
    await until(lambda: pruner.pruned >= 12_001)
    assert "callscreen_call_log_pruned_rows_total 12001" in exposition(server)
    recorder = server.recorder
    assert recorder is not None
    await until(lambda: recorder.written >= 1)
    assert recorder.write_errors == 0
    assert len(ages(server.config.db)) == 3  # two kept, and the call just placed


async def test_a_failing_prune_logs_once_and_the_server_keeps_screening(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    store, pruner = server.store, server.pruner
    assert store is not None and pruner is not None
    await store.write_calls([rec(time.time() - 40 * DAY)], {})
    real = store.prune_calls
    failures = 0

    async def broken(*args: object, **kw: object) -> int:
        nonlocal failures
        failures += 1
        raise StoreError("writing to the database: disk I/O error")

    caplog.set_level(logging.INFO, logger="callscreen")
    store.prune_calls = broken  # type: ignore[method-assign]
    await until(lambda: failures >= 3)
    errors = [r for r in caplog.records if "pruning failed" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "disk I/O error" in errors[0].getMessage()
    assert "callscreen_call_log_prune_errors_total" in exposition(server)
    assert pruner.errors >= 3
    port = server.addresses[0][1]
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert any("ALLOWED" in c for c in t.commands)  # screened as ever
    # Fixed: the next run prunes, and says it works again.
    store.prune_calls = real  # type: ignore[method-assign]
    await until(lambda: pruner.pruned >= 1)
    assert any("pruning works again" in r.getMessage() for r in caplog.records)
    assert all(a < 30 * DAY for a in ages(server.config.db))


async def test_retention_zero_runs_no_pruner(config: Config) -> None:
    config.log_retention = 0
    srv = Server(config)
    await srv.start()
    try:
        assert srv.pruner is None
        assert "callscreen_call_log_pruned_rows_total 0" in exposition(srv)
    finally:
        await srv.stop()


def test_serve_process_prunes_with_the_interval_knob(tmp_path: Path) -> None:
    """``callscreen serve --log-retention 1d`` as a process, the hidden interval short."""
    db = tmp_path / "cs.db"

    async def seed() -> None:
        async with await Store.open(db) as s:
            await s.write_calls([rec(time.time() - 2 * DAY), rec(time.time() - 60)], {})

    asyncio.run(seed())
    srv = ServeProcess(db, "--log-retention", "1d", "--log-prune-interval", "0.2")
    try:
        deadline = time.monotonic() + 10
        while len(ages(db)) != 1:
            assert time.monotonic() < deadline, srv.lines
            time.sleep(0.05)
        assert max(ages(db)) < DAY
    finally:
        out = srv.stop()
    assert srv.proc.returncode == 0
    assert "1 rows older than 1 days deleted" in out
    assert "Traceback" not in out
