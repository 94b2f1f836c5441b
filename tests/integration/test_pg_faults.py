"""PostgreSQL stopped, then started again, under calls: the real server, a real PostgreSQL 15
cluster of its own (stopped and started by its data directory) and the fake Asterisk.

While PostgreSQL is down every call still completes, quickly (bounded connect and query
timeouts, then the breaker: no call waits on a database that is gone), failing open; the call
log keeps its rows in memory; when PostgreSQL is back the server screens again by itself and
writes the rows it kept: none lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callscreen.app import Config, Server
from callscreen.db import Store
from callscreen.numbers import Pattern
from callscreen.policy import Kind, Scope, Treatment

from ..pg import Cluster, require_bindir
from .fake_asterisk import place_call
from .test_calls import mset

SPAMMER = "+13035551212"


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this module's own: stopping it must not touch the other tests'."""
    cluster = Cluster(require_bindir())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def pg_server(own_cluster: Cluster, tmp_path: Path) -> AsyncIterator[Server]:
    config = Config(db=own_cluster.new_database(), port=0, header_timeout=1.0, reply_timeout=1.0)
    srv = Server(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def screened(port: int, n: int, callerid: str = SPAMMER) -> list[tuple[list[str], float]]:
    async def one() -> tuple[list[str], float]:
        t0 = time.monotonic()
        t = await place_call(port, args=["101"], callerid=callerid)
        return t.commands, time.monotonic() - t0

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def logged(url: str) -> int:
    async with await Store.open(url) as store:
        return len(await store.recent_calls(ext="101", limit=10_000))


async def test_postgresql_down_then_back_calls_fail_open_fast_and_no_row_is_lost(
    own_cluster: Cluster, pg_server: Server
) -> None:
    port = pg_server.addresses[0][1]
    store = pg_server.store
    assert store is not None and pg_server.recorder is not None
    await store.set_extension("101", enabled=True, treatment=Treatment.BUSY)
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [Pattern(SPAMMER, False, SPAMMER)])
    blocked = [mset("BLOCKED", "ext-blocklist", "busy"), "EXEC Busy"]
    for commands, _ in await screened(port, 5):
        assert commands == blocked

    own_cluster.pg_stop()  # PostgreSQL goes away (fast shutdown: every connection is cut)
    down = await screened(port, 50)
    down += await screened(port, 50)
    for commands, seconds in down:
        assert commands == [mset("ALLOWED", "error")]
        # Bounded: the first calls wait at most the connect/query timeouts, the rest not at all.
        assert seconds < 3.0, seconds
    assert sorted(s for _, s in down)[len(down) // 2] < 0.1  # most calls: the breaker, at once
    health_ok, health = pg_server.health()
    assert not health_ok and "database" in health

    own_cluster.pg_start()
    t0 = time.monotonic()
    while True:  # the server notices by itself: no restart, no admin
        [(commands, _)] = await screened(port, 1)
        if commands == blocked or time.monotonic() - t0 > 10:
            break
        await asyncio.sleep(0.1)
    assert commands == blocked, f"still {commands} {time.monotonic() - t0:.1f} s after the restart"
    recovered = time.monotonic() - t0
    assert recovered < 5, recovered

    # Every call of the run is in the call log: the rows kept during the outage were written.
    deadline = time.monotonic() + 15
    total = 5 + len(down)
    while await logged(str(pg_server.config.db)) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await logged(str(pg_server.config.db)) >= total
    assert pg_server.recorder.dropped == 0
    assert pg_server.health()[0]
