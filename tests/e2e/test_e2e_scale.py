"""Two callscreen servers on one PostgreSQL behind the real Asterisk (README: Scaling out).

Both servers screen from the same database: a CLI change is seen by the very next call on
either; ``CALLSCREEN_URL`` lists both, and when server 1 dies every following call is still
*screened* (blocked callers stay blocked) by server 2, not merely let through.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from .bed import Ami, Asterisk, Cli, Server
from .test_e2e_screening import assert_allowed, assert_blocked

pytestmark = pytest.mark.e2e

SPAM = '"Spam" <+13035550401>'
FRIEND = '"Jane" <+13035550402>'


@pytest.fixture
def two_servers(e2e_ready: Path, e2e_logs: Path, pg_cluster: object) -> Iterator[list[Server]]:
    url = pg_cluster.new_database()  # type: ignore[attr-defined]
    servers = [Server(url, e2e_logs), Server(url, e2e_logs)]  # type: ignore[arg-type]
    try:
        for srv in servers:
            srv.start()
        yield servers
    finally:
        for srv in servers:
            srv.stop()


@pytest.fixture
def scale_asterisk(
    e2e_ready: Path, e2e_logs: Path, two_servers: list[Server]
) -> Iterator[Asterisk]:
    ast = Asterisk(e2e_ready, two_servers[0].port, e2e_logs)
    ast.start()
    try:
        yield ast
    finally:
        ast.stop()


@pytest.fixture
async def scale_ami(scale_asterisk: Asterisk) -> Ami:
    session = Ami(scale_asterisk)
    await session.connect()
    try:
        yield session  # type: ignore[misc]
    finally:
        await session.close()


def urls(*servers: Server) -> list[str]:
    return ["CALLSCREEN_URL=" + " ".join(f"agi://127.0.0.1:{s.port}/screen" for s in servers)]


def screened_by(srv: Server, number: str) -> int:
    """The call lines ``srv`` logged for a caller (each call it screened logs one)."""
    return sum(
        1 for line in srv.log.read_text(errors="replace").splitlines() if f"from {number}" in line
    )


async def test_two_servers_on_one_postgresql_screen_alike_and_survive_the_loss_of_one(
    two_servers: list[Server], scale_ami: Ami, scale_asterisk: Asterisk
) -> None:
    s1, s2 = two_servers
    cli = Cli(s1.db)
    cli("ext", "set", "401", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "401", "+13035550401")

    # Screened correctly through either server (each is asked alone first).
    for srv in (s1, s2):
        assert_blocked(await scale_ami.call("401", SPAM, variables=urls(srv)), "ext-blocklist")
        assert_allowed(await scale_ami.call("401", FRIEND, variables=urls(srv)), "not-listed")

    # A CLI change against the database applies to the next call on both servers.
    cli("block", "add", "--ext", "401", "+13035550402")
    for srv in (s1, s2):
        assert_blocked(await scale_ami.call("401", FRIEND, variables=urls(srv)), "ext-blocklist")
    cli("block", "remove", "--ext", "401", "+13035550402")
    for srv in (s2, s1):
        assert_allowed(await scale_ami.call("401", FRIEND, variables=urls(srv)), "not-listed")

    # Mid-run, server 1 dies (SIGKILL: no goodbye); the list names it first.
    both = urls(s1, s2)
    before = await asyncio.gather(*(scale_ami.call("401", SPAM, variables=both) for _ in range(5)))
    for call in before:
        assert_blocked(call, "ext-blocklist")
    assert s1.proc is not None
    s1.proc.send_signal(signal.SIGKILL)
    s1.proc.wait(5)
    s2_before = screened_by(s2, "+13035550401")
    after = []
    for _ in range(3):
        after += await asyncio.gather(
            scale_ami.call("401", SPAM, variables=both),
            scale_ami.call("401", FRIEND, variables=both),
        )
    for spam, friend in zip(after[::2], after[1::2], strict=True):
        assert_blocked(spam, "ext-blocklist")  # screened, not merely let through
        assert_allowed(friend, "not-listed")
    # ...by server 2: its log holds every one of those blocked calls.
    await asyncio.sleep(0.5)  # the per-call lines are written in batches
    assert screened_by(s2, "+13035550401") - s2_before == 3
    assert scale_asterisk.wait_no_channels() == 0
