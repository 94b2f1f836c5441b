"""A throwaway PostgreSQL for the tests (a pytest plugin: ``pytest_plugins = ["tests.pg"]``).

One cluster per test session: ``initdb`` (as the ``postgres`` OS user when run as root, which
initdb refuses to be) in a temporary directory, on a free port, its socket in that directory,
fsync off (about 1.5 s). One database ``migrated`` is created and migrated once; each test
gets a copy (``CREATE DATABASE t_N TEMPLATE migrated STRATEGY FILE_COPY``: about 0.17 s here,
half of the default WAL_LOG's). The cluster is stopped by its data directory at the end, never
by a process name.

Fixtures:
- ``pg_url``: a fresh, migrated database's URL (``postgresql://callscreen@127.0.0.1:PORT/t_N``).
- ``db_url``: parametrized ``sqlite`` / ``postgresql``: a fresh SQLite path or ``pg_url``.
  Tests that take it (or a ``store`` built on it) run once per backend.

No PostgreSQL (no ``initdb``): the PostgreSQL cases skip with the reason, or fail when
``CALLSCREEN_PG_REQUIRED=1`` (CI sets it).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRED = os.environ.get("CALLSCREEN_PG_REQUIRED") == "1"
USER = "callscreen"
BACKENDS = ["sqlite", "postgresql"]


def find_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs and Path(dirs[-1], "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to the end from sync code, also when a loop runs in this thread."""
    out: dict[str, Any] = {}

    def go() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=go)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


class Cluster:
    """A running throwaway cluster."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        #: PostgreSQL's durable defaults (fsync, synchronous commit), for the benchmark; the
        #: tests run without them (a throwaway cluster has nothing to keep).
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="callscreen-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: the postgres OS user owns the cluster
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count(1)
        self.started = time.monotonic()

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def start(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8",
                 "--no-sync", "--locale=C.UTF-8")  # fmt: skip
        self.pg_start()
        _run_sync(self._template())

    def pg_start(self) -> None:
        """Start the server on the cluster (again, after :meth:`pg_stop`: same port, data)."""
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._pg("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                 "-w", "start")  # fmt: skip

    def pg_stop(self) -> None:
        """Stop the server (fast: every connection is cut), keeping the cluster's data."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    async def _template(self) -> None:
        import asyncpg

        from callscreen.db.backends.postgres import migrate

        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute("CREATE DATABASE migrated")
        finally:
            await admin.close()
        pg = await asyncpg.connect(self.url("migrated"))
        try:
            await migrate(pg)
        finally:
            await pg.close()

    def new_database(self) -> str:
        name = f"t_{next(self._names)}"

        async def create() -> None:
            import asyncpg

            admin = await asyncpg.connect(self.url("postgres"))
            try:
                await admin.execute(f"CREATE DATABASE {name} TEMPLATE migrated STRATEGY FILE_COPY")
            finally:
                await admin.close()

        _run_sync(create())
        return self.url(name)

    def empty_database(self) -> str:
        """A database with no schema at all (for the migration tests)."""
        name = f"e_{next(self._names)}"

        async def create() -> None:
            import asyncpg

            admin = await asyncpg.connect(self.url("postgres"))
            try:
                await admin.execute(f"CREATE DATABASE {name}")
            finally:
                await admin.close()

        _run_sync(create())
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def require_bindir() -> Path:
    """PostgreSQL's programs, or the test skips (fails under CALLSCREEN_PG_REQUIRED=1)."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable("initdb was not found (PATH, /usr/lib/postgresql/*/bin)")
    assert bindir is not None
    return bindir


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"PostgreSQL required (CALLSCREEN_PG_REQUIRED=1) but {reason}")
    pytest.skip(f"no PostgreSQL here: {reason} (apt-get install postgresql)")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable("initdb was not found (PATH, /usr/lib/postgresql/*/bin)")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        _unavailable("asyncpg is not installed")
    assert bindir is not None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("there is no postgres OS user to run initdb as")
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except (subprocess.SubprocessError, OSError) as exc:
        cluster.stop()
        detail = getattr(exc, "stderr", b"") or b""
        _unavailable(f"the cluster did not start: {exc} {detail.decode(errors='replace')}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, migrated PostgreSQL database of its own for this test."""
    return pg_cluster.new_database()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The database a test runs on, once per backend: a SQLite file or a PostgreSQL URL."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return tmp_path / "cs.db"
