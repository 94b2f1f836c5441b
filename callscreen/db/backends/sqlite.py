"""The SQLite driver (aiosqlite): open, close, one write transaction at a time.

Every change is one transaction (``BEGIN IMMEDIATE``: SQLite's one writer); a batch of numbers
is stored whole or not at all. Transactions on one connection are serialized (the server's
call-log writer and ``block-last`` share one). Writes refuse a database file that was deleted
and follow one that was replaced. The per-call read does not come here (see
:mod:`callscreen.db.lookup`): a thread hop costs more than the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import aiosqlite

from ..errors import Conflict, StoreError
from ..schema import PRAGMAS, connect
from .base import SQLITE, Params, Row


def _file_ident(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


async def _close_quietly(db: aiosqlite.Connection, timeout: float = 5.0) -> None:
    # A connection that cannot close cleanly is left to the process exit.
    with contextlib.suppress(TimeoutError, sqlite3.Error, ValueError):
        await asyncio.wait_for(db.close(), timeout)


def _error(what: str, exc: BaseException) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"{what}: {exc}")
    return StoreError(f"{what}: {exc}")


class SqliteConn:
    """A :class:`callscreen.db.backends.base.Conn` on one SQLite file."""

    dialect = SQLITE
    #: How long close() waits for the connection's thread (busy on a locked or stalled disk).
    CLOSE_TIMEOUT = 2.0

    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self.database: Path | str = path
        self.where = str(path)
        self._db = db
        self._writing = asyncio.Lock()
        self._ident = _file_ident(path)

    @classmethod
    async def open(cls, path: str | Path) -> SqliteConn:
        path = Path(path)
        # Create and migrate with a plain connection first (one place for that logic).
        await asyncio.to_thread(lambda: connect(path).close())
        return cls(path, await cls._connect(path))

    @staticmethod
    async def _connect(path: Path) -> aiosqlite.Connection:
        db: aiosqlite.Connection | None = None
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
            await db.execute("PRAGMA busy_timeout=5000")
            for pragma in PRAGMAS:
                await db.execute(pragma)
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                await _close_quietly(db)
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        return db

    async def close(self) -> None:
        """Close the connection. Bounded: its thread is not a daemon, so a close stuck behind
        a stalled disk would keep the process from exiting; after CLOSE_TIMEOUT it is left."""
        await _close_quietly(self._db, self.CLOSE_TIMEOUT)

    # -- reads and writes --------------------------------------------------------------------
    # One trip to aiosqlite's thread per statement (execute_fetchall; a cursor left to the
    # garbage collector rather than closed with a second trip): the admin side's small
    # statements cost what they did before the driver layer.
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            rows = await self._db.execute_fetchall(sql, params)
        except sqlite3.Error as exc:
            raise _error(f"reading {self.path}", exc) from exc
        return cast(list[Row], list(rows))  # no row_factory: plain tuples

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cur = await self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise _error(f"writing to {self.path}", exc) from exc
        return max(cur.rowcount, 0)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        try:
            cur = await self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _error(f"writing to {self.path}", exc) from exc
        return max(cur.rowcount, 0)

    async def pipeline(self, sql: str, rows: Sequence[Params]) -> None:
        await self.executemany(sql, rows)  # in-process: nothing to pipeline

    async def insert(self, sql: str, params: Params = ()) -> int:
        row = await self.fetchone(sql, params)  # INSERT ... RETURNING id (SQLite 3.35+)
        if row is None:
            raise StoreError(f"writing to {self.path}: no id returned")
        return int(row[0])

    async def stream(self, sql: str, params: Params = (), chunk: int = 5000) -> AsyncIterator[Row]:
        try:
            async with self._db.execute(sql, params) as cur:
                while rows := await cur.fetchmany(chunk):
                    for r in rows:
                        yield tuple(r)
        except sqlite3.Error as exc:
            raise _error(f"reading {self.path}", exc) from exc

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        cols = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        await self.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    # -- transactions ------------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self, *, rollback: bool = False) -> AsyncIterator[SqliteConn]:
        """One write transaction, all or nothing. Callers only ever see StoreError (or what
        their own block raised): a failed COMMIT may already have been rolled back by SQLite
        itself (SQLITE_FULL, SQLITE_IOERR), so ours runs only if a transaction is still open,
        and a failing ROLLBACK never hides the error that caused it."""
        async with self._writing:
            await self._check_file()
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except (sqlite3.Error, ValueError) as exc:  # ValueError: the connection is closed
                raise StoreError(f"cannot write to {self.path}: {exc}") from exc
            try:
                yield self
                await self._db.execute("ROLLBACK" if rollback else "COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error | ValueError):
                    raise _error(f"writing to {self.path}", exc) from exc
                raise

    async def _rollback(self) -> None:
        # SQLite may have rolled back already, or the connection is gone: nothing to undo.
        with contextlib.suppress(sqlite3.Error, ValueError):
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")

    async def _check_file(self) -> None:
        """Refuse to write into a database file that was deleted (rows would vanish with the
        unlinked inode), and follow one that was replaced (a restored backup, a remounted
        disk): the next write goes to the file now at the path."""
        ident = _file_ident(self.path)
        if ident == self._ident:
            return
        if ident is None:
            raise StoreError(f"database {self.path} is gone (deleted or moved away)")
        await asyncio.to_thread(lambda: connect(self.path, create=False).close())  # migrated
        db = await self._connect(self.path)
        old, self._db, self._ident = self._db, db, ident
        await _close_quietly(old, self.CLOSE_TIMEOUT)
