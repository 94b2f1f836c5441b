"""The PostgreSQL driver (asyncpg), and its migrations (``callscreen/db/migrations_pg``).

For the call path (``Lookup``/``Recorder`` on PostgreSQL) and anything else that needs it::

    conn = await PgConn.open("postgresql://user@host:5432/callscreen")  # migrates, as SQLite does
    row = await conn.fetchone("SELECT version FROM settings_version WHERE id = ?", ())
    async with conn.transaction() as tx:
        await tx.executemany("INSERT INTO call_log (...) VALUES (?, ?, ...)", rows)
    await conn.close()

- SQL is the same text as for SQLite: ``?`` (or ``?N``) placeholders become ``$N``
  (:func:`translate`, cached per statement string; asyncpg then caches the prepared statement
  per connection, so a repeated statement costs one round trip and no parse).
- One connection per :class:`PgConn`, used by one operation at a time (an asyncio lock, as
  aiosqlite's one thread does for SQLite). Reads inside a transaction on the same PgConn see its
  own changes. :meth:`PgConn.stream` reads on a second pooled connection, so a long export
  does not hold the main one.
- A write transaction takes a transaction-level advisory lock first: one writer at a time
  across every process on the database, as SQLite's ``BEGIN IMMEDIATE`` gives. Checks such as
  "the last administrator" are then as safe as on SQLite. ``lock_timeout`` is 5 s, like
  SQLite's busy timeout.
- Errors come out as :class:`StoreError` (:class:`Conflict` for a constraint), never asyncpg's.
- A connection lost (server restart) is opened again on the next operation.
- PostgreSQL's text cannot hold a NUL character (SQLite's can): a NUL in a value written is
  stored as U+FFFD (:func:`_clean`), so one hostile caller ID cannot fail a whole call-log
  batch. The one place the two backends may store different text.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ..errors import Conflict, StoreError
from .base import POSTGRESQL, Params, Row

#: Advisory lock keys (any constants; "cs" "w" / "cs" "m" as digits).
WRITE_LOCK = 0x6373_0077
MIGRATE_LOCK = 0x6373_006D
#: asyncpg.connect() options: every session of ours.
SERVER_SETTINGS = {"application_name": "callscreen", "lock_timeout": "5s"}
CONNECT_TIMEOUT = 10.0
#: No statement of the admin side waits longer on a database that stopped answering (a network
#: partition, a frozen server): the CLI says so and exits, the call-log writer keeps its rows.
COMMAND_TIMEOUT = 60.0

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\$\$.*?\$\$|\?(\d*)", re.S)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` and ``?N`` placeholders to PostgreSQL's ``$N``; quoted text and comments kept."""
    n = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal n
        if not m.group(0).startswith("?"):
            return m.group(0)
        if m.group(1):
            return f"${m.group(1)}"
        n += 1
        return f"${n}"

    return _TOKEN.sub(sub, sql)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _error(what: str, exc: BaseException) -> StoreError:
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return Conflict(f"{what}: {exc}")
    return StoreError(f"{what}: {exc}")


#: What asyncpg raises for a failed statement or a lost connection.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def _clean(params: Sequence[Any]) -> Sequence[Any]:
    """Parameters with NUL characters (which PostgreSQL's text refuses) as U+FFFD."""
    if any(type(v) is str and "\x00" in v for v in params):
        return [v.replace("\x00", "\ufffd") if type(v) is str else v for v in params]
    return params


def _rowcount(status: str | None) -> int:
    tail = (status or "").rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# -- migrations --------------------------------------------------------------------------------
def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped PostgreSQL migration, in order."""
    out = []
    for item in resources.files("callscreen.db").joinpath("migrations_pg").iterdir():
        if item.name.endswith(".sql"):
            out.append((int(item.name.split("_", 1)[0]), item.name, item.read_text("utf-8")))
    return sorted(out)


LATEST_VERSION = migrations()[-1][0]


async def schema_version(pg: asyncpg.Connection) -> int:
    exists = await pg.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await pg.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(pg: asyncpg.Connection) -> int:
    """Bring the database to :data:`LATEST_VERSION`, all in one transaction, under an advisory
    lock: two servers starting together migrate once (the second waits, then finds it done)."""
    if await schema_version(pg) == LATEST_VERSION:
        return LATEST_VERSION
    async with pg.transaction():
        await pg.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        await pg.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        current = await schema_version(pg)
        if current > LATEST_VERSION:
            raise StoreError(
                f"database schema v{current} is newer than this callscreen (v{LATEST_VERSION})"
            )
        for version, _name, sql in migrations():
            if version > current:
                await pg.execute(sql)  # no arguments: the simple protocol, many statements
                await pg.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
    return LATEST_VERSION


async def connect(url: str, *, migrated: bool = True) -> asyncpg.Connection:
    """One asyncpg connection with our settings (migrating the database unless told not to)."""
    pg: asyncpg.Connection | None = None
    try:
        pg = await asyncpg.connect(
            url,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
            server_settings=SERVER_SETTINGS,
        )
        if migrated:
            await migrate(pg)
    except (*DB_ERRORS, ValueError) as exc:  # ValueError: a malformed URL
        if pg is not None:
            with contextlib.suppress(*DB_ERRORS):
                await pg.close(timeout=2)
        raise StoreError(f"cannot open database {redact(url)}: {exc}") from exc
    return pg


class PgConn:
    """A :class:`callscreen.db.backends.base.Conn` on one PostgreSQL database."""

    dialect = POSTGRESQL

    def __init__(self, url: str, pg: asyncpg.Connection) -> None:
        self.url = url
        self.database: Path | str = url
        self.where = redact(url)
        self._pg = pg
        self._busy = asyncio.Lock()  # one operation at a time on the connection
        self._writing = asyncio.Lock()  # one transaction at a time
        self._in_tx = False
        self._pool: asyncpg.Pool | None = None

    @classmethod
    async def open(cls, url: str) -> PgConn:
        return cls(url, await connect(url))

    async def close(self) -> None:
        with contextlib.suppress(*DB_ERRORS):
            await self._pg.close(timeout=2)
        if self._pool is not None:
            with contextlib.suppress(*DB_ERRORS):
                await asyncio.wait_for(self._pool.close(), 2)

    async def _conn(self) -> asyncpg.Connection:
        if self._pg.is_closed() and not self._in_tx:  # lost: open again (not mid-transaction)
            self._pg = await connect(self.url, migrated=False)
        return self._pg

    # -- reads and writes --------------------------------------------------------------------
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._busy:
            try:
                rows = await (await self._conn()).fetch(translate(sql), *_clean(params))
            except DB_ERRORS as exc:
                raise _error(f"reading {self.where}", exc) from exc
        return [tuple(r) for r in rows]

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._busy:
            try:
                row = await (await self._conn()).fetchrow(translate(sql), *_clean(params))
            except DB_ERRORS as exc:
                raise _error(f"reading {self.where}", exc) from exc
        return None if row is None else tuple(row)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._busy:
            try:
                pg = await self._conn()
                if params:
                    return _rowcount(await pg.execute(translate(sql), *_clean(params)))
                # Prepared (not the simple protocol) also without arguments: one statement.
                stmt = await pg.prepare(translate(sql))
                await stmt.fetch()
                return _rowcount(stmt.get_statusmsg())
            except DB_ERRORS as exc:
                raise _error(f"writing to {self.where}", exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Each row through one prepared statement, to count the rows changed (asyncpg's own
        executemany pipelines but reports no count); ``copy_rows`` is the fast bulk path."""
        async with self._busy:
            try:
                stmt = await (await self._conn()).prepare(translate(sql))
                changed = 0
                for row in rows:
                    await stmt.fetch(*_clean(row))
                    changed += _rowcount(stmt.get_statusmsg())
                return changed
            except DB_ERRORS as exc:
                raise _error(f"writing to {self.where}", exc) from exc

    async def pipeline(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        async with self._busy:
            try:
                await (await self._conn()).executemany(translate(sql), [_clean(r) for r in rows])
            except DB_ERRORS as exc:
                raise _error(f"writing to {self.where}", exc) from exc

    async def insert(self, sql: str, params: Params = ()) -> int:
        row = await self.fetchone(sql, params)
        if row is None:
            raise StoreError(f"writing to {self.where}: no id returned")
        return int(row[0])

    async def _stream_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=2, server_settings=SERVER_SETTINGS
            )
        return self._pool

    async def stream(self, sql: str, params: Params = (), chunk: int = 5000) -> AsyncIterator[Row]:
        try:
            pool = await self._stream_pool()
            async with pool.acquire() as pg, pg.transaction(readonly=True):
                async for r in pg.cursor(translate(sql), *_clean(params), prefetch=chunk):
                    yield tuple(r)
        except DB_ERRORS as exc:
            raise _error(f"reading {self.where}", exc) from exc

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        async with self._busy:
            try:
                await (await self._conn()).copy_records_to_table(
                    table, records=[_clean(r) for r in rows], columns=list(columns)
                )
            except DB_ERRORS as exc:
                raise _error(f"writing to {self.where}", exc) from exc

    # -- transactions ------------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self, *, rollback: bool = False) -> AsyncIterator[PgConn]:
        """All or nothing, one writer at a time (see the module's notes)."""
        async with self._writing:
            async with self._busy:
                try:
                    pg = await self._conn()
                    await pg.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                except DB_ERRORS as exc:
                    await self._rollback_now()
                    raise StoreError(f"cannot write to {self.where}: {exc}") from exc
                self._in_tx = True
            try:
                yield self
                async with self._busy:
                    await pg.execute("ROLLBACK" if rollback else "COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, DB_ERRORS):
                    raise _error(f"writing to {self.where}", exc) from exc
                raise
            finally:
                self._in_tx = False

    async def _rollback(self) -> None:
        async with self._busy:
            await self._rollback_now()

    async def _rollback_now(self) -> None:
        # The server may have ended the transaction already, or the connection is gone.
        with contextlib.suppress(*DB_ERRORS):
            if not self._pg.is_closed() and self._pg.is_in_transaction():
                await asyncio.shield(self._pg.execute("ROLLBACK"))

    def raw(self) -> asyncpg.Connection:
        """The asyncpg connection itself (for the call path's own prepared statements)."""
        return self._pg
