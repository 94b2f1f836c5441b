"""Fixtures of the real-Asterisk tests.

One Asterisk (from the sid root filesystem built by `make asterisk-root`) and one
`callscreen serve` per test session; each test gets its own AMI session to place calls.
The server's database is shared by the session: every test screens its own extensions and
numbers, so tests do not see each other's entries.

Without root or the root filesystem the tests skip, unless CALLSCREEN_E2E_REQUIRED=1 (CI):
then they fail.

The session's server runs once on SQLite and once on PostgreSQL (the throwaway cluster of
``tests/pg.py``): every test on the shared server, Asterisk and CLI is a full pass on each
(``[sqlite]``, ``[postgresql]`` in the test ids). ``CALLSCREEN_E2E_BACKENDS=sqlite`` runs one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from .bed import (
    Ami,
    Asterisk,
    Cli,
    Server,
    asterisk_root,
    compiled_build,
    unavailable_reason,
)


@pytest.fixture(scope="session")
def e2e_ready() -> Path:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CALLSCREEN_E2E_REQUIRED") == "1":
            pytest.fail(f"CALLSCREEN_E2E_REQUIRED=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return asterisk_root()


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs of Asterisk and the servers, kept by pytest under its basetemp after the run."""
    return tmp_path_factory.mktemp("e2e-logs")


BACKENDS = os.environ.get("CALLSCREEN_E2E_BACKENDS", "sqlite,postgresql").split(",")


@pytest.fixture(scope="session", params=BACKENDS)
def e2e_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """The session server's database: a SQLite file, or a database in the throwaway cluster."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_cluster").new_database())
    return tmp_path_factory.mktemp("e2e-db") / "callscreen.db"


@pytest.fixture(scope="session")
def shipped_build(e2e_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """callscreen as a wheel installs it: the call path compiled (setup.py, mypyc)."""
    return compiled_build(tmp_path_factory.mktemp("compiled"))


@pytest.fixture(scope="session")
def server(
    e2e_ready: Path, e2e_logs: Path, e2e_db: Path | str, shipped_build: Path
) -> Iterator[Server]:
    """The session's server runs the shipped (compiled) build, so every test on it is a call
    through the real Asterisk into what users install; the servers tests start themselves
    (faults, accounts, scale) run this checkout's interpreted modules: both are proven."""
    srv = Server(e2e_db, e2e_logs, build=shipped_build)
    srv.start()
    if "call path: compiled (mypyc)" not in srv.log.read_text(errors="replace"):
        srv.stop()
        pytest.fail(f"the session server is not the compiled build: see {srv.log}")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def asterisk(e2e_ready: Path, e2e_logs: Path, server: Server) -> Iterator[Asterisk]:
    ast = Asterisk(e2e_ready, server.port, e2e_logs)
    ast.start()
    try:
        yield ast
    finally:
        ast.stop()


@pytest.fixture(scope="session")
def cli(server: Server) -> Cli:
    """The callscreen CLI on the database the running server uses."""
    return Cli(server.db)


@pytest.fixture
async def ami(asterisk: Asterisk) -> AsyncIterator[Ami]:
    session = Ami(asterisk)
    await session.connect()
    try:
        yield session
    finally:
        # A failed test must not leave calls ringing into the next one.
        for call in session.calls.values():
            for uid, name in call.channels.items():
                if uid not in call.hungup:
                    await session.send({"Action": "Hangup", "Channel": name})
        await session.close()


@pytest.fixture
def extra_server(
    e2e_ready: Path, e2e_logs: Path, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """Start more `callscreen serve` processes (own database, own port) inside a test."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        srv = Server(tmp_path / f"extra-{len(started)}.db", e2e_logs, None, *args)
        started.append(srv)
        srv.start()
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()
