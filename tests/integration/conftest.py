from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callscreen.app import Config, Server
from callscreen.db import Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # Short Wait() chunks so torture tests take seconds, not minutes; a challenged caller who
    # presses nothing is done after two one-second waits.
    return Config(
        db=tmp_path / "callscreen.db",
        port=0,
        torture_wait=1,
        header_timeout=1.0,
        reply_timeout=1.0,
        challenge_wait=1.0,
    )


@pytest.fixture
async def server(config: Config) -> AsyncIterator[Server]:
    srv = Server(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def port(server: Server) -> int:
    return server.addresses[0][1]


@pytest.fixture
async def store(server: Server) -> Store:
    assert server.store is not None
    return server.store
