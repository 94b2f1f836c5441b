"""The web tier against the real HTTP server: uvicorn on a free port (in a thread of the test
process, so a test can also break an ops function on purpose), httpx as the client, and a
database with four users built once and copied for every test.

Users: ``admin``; ``alice`` owns 101; ``bob`` owns 102; ``carol`` owns 101 but is disabled
(her token must not work). Extension 102 and the account have an entry each, so a request that
should change nothing has something it could have removed.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from callscreen.db import dbcopy
from callscreen.db.backends import open_conn
from callscreen.db.store import Store
from callscreen.ops import lists, users
from callscreen.ops.actor import Actor
from callscreen.policy import Kind, Scope
from callscreen.web.app import WebConfig
from callscreen.web.server import Server, addresses, make_server
from callscreen.web.throttle import Limits, ThrottleConfig

PASSWORDS = {
    "admin": "admin-password",
    "alice": "alice-password",
    "bob": "bob-password",
    "carol": "carol-password",
}
#: An entry on bob's extension and one on the account list: there to be (not) removed.
BOB_BLOCKED = "+13035550102"
ACCOUNT_BLOCKED = "+13035550999"

#: Fast throttling for tests: the same shape as the default, in tenths of a second.
TEST_THROTTLE = ThrottleConfig(
    user=Limits(free=3, lock_after=6),
    address=Limits(free=30, lock_after=60),
    base_delay=0.05,
    max_delay=0.2,
    lock_for=60,
)


async def _build(db: Path) -> dict[str, str]:
    cli = Actor.cli()
    tokens: dict[str, str] = {}
    async with await Store.open(db) as store:
        for ext in ("101", "102"):
            await store.set_extension(ext, enabled=True)
        await users.user_add(store, cli, "admin", PASSWORDS["admin"], admin=True)
        await users.user_add(store, cli, "alice", PASSWORDS["alice"], extensions=["101"])
        await users.user_add(store, cli, "bob", PASSWORDS["bob"], extensions=["102"])
        await users.user_add(store, cli, "carol", PASSWORDS["carol"], extensions=["101"])
        for name in PASSWORDS:
            tokens[name], _ = await users.token_create(store, cli, name, name="tests")
        await users.user_set(store, cli, "carol", disabled=True)
        await lists.list_add(
            store, cli, scope=Scope.EXTENSION, ext="102", kind=Kind.BLOCK, numbers=[BOB_BLOCKED]
        )
        await lists.list_add(
            store, cli, scope=Scope.ACCOUNT, ext=None, kind=Kind.BLOCK, numbers=[ACCOUNT_BLOCKED]
        )
    return tokens


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    db = tmp_path_factory.mktemp("template") / "callscreen.db"
    tokens = asyncio.run(_build(db))
    return db, tokens


def snapshot(db: Path | str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table that a request could change, except the bookkeeping of
    credentials (a token's last use; sessions, which sign-in tests create on purpose)."""
    if isinstance(db, str):
        return asyncio.run(_pg_snapshot(db))
    con = sqlite3.connect(db)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in names:
            if name == "sessions":
                continue
            cols = "id, user_id, name, hash, created_at, expires_at" if name == "tokens" else "*"
            # Every column in order: also for tables WITHOUT ROWID (list_sizes).
            rows = con.execute(f"SELECT {cols} FROM {name}").fetchall()
            out[name] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


async def _pg_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await open_conn(url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in dbcopy.TABLES:
            if name == "sessions":
                continue
            cols = await dbcopy._columns(conn, name)
            if name == "tokens":
                cols = ["id", "user_id", "name", "hash", "created_at", "expires_at"]
            rows = await conn.fetchall(f"SELECT {', '.join(cols)} FROM {name}")
            out[name] = sorted(rows, key=repr)
        return out
    finally:
        await conn.close()


@dataclass
class Web:
    url: str
    db: Path | str
    tokens: dict[str, str]
    config: WebConfig
    server: Server
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = None, *, token: str | None = None) -> httpx.Client:
        """A client with ``who``'s bearer token (or ``token``), or none."""
        headers = {}
        if who is not None:
            token = self.tokens[who]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        c = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(c)
        return c

    def login(self, who: str) -> tuple[httpx.Client, str]:
        """A client signed in with ``who``'s password (cookie), and the session's CSRF token."""
        c = self.client()
        r = c.post("/api/v1/session", json={"username": who, "password": PASSWORDS[who]})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf"]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return snapshot(self.db)

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "web server did not stop"


def start(config: WebConfig, tokens: dict[str, str]) -> Web:
    server = make_server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "web server did not start"
        assert time.monotonic() < deadline, "web server did not start in 15 s"
        time.sleep(0.01)
    host, port = addresses(server)[0]
    return Web(f"http://{host}:{port}", config.db, tokens, config, server, thread)


@pytest.fixture
def web_backend() -> str:
    """The database the web tests run on; a module that runs on both says
    ``pytestmark = pytest.mark.parametrize("web_backend", BACKENDS)``."""
    return "sqlite"


@pytest.fixture
def make_web(
    template: tuple[Path, dict[str, str]],
    tmp_path: Path,
    web_backend: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Web]]:
    """Start a server on a fresh copy of the template (on PostgreSQL: ``db copy`` of it into
    a new database); keyword arguments change its config."""
    started: list[Web] = []

    def make(**changes: Any) -> Web:
        src, tokens = template
        db: Path | str
        if web_backend == "postgresql":
            db = str(request.getfixturevalue("pg_url"))
            if started:
                db = request.getfixturevalue("pg_cluster").new_database()
            asyncio.run(dbcopy.copy(src, db))
        else:
            db = tmp_path / f"web{len(started)}.db"
            shutil.copy(src, db)
        base = WebConfig(db=db, host="127.0.0.1", port=0, throttle=TEST_THROTTLE)
        web = start(replace(base, **changes), tokens)
        started.append(web)
        return web

    yield make
    for web in started:
        web.stop()


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web()
