"""The store's connection (aiosqlite): open, close, one write transaction at a time.

Every change is one transaction: a batch of numbers is stored whole or not at all. Transactions
on one Store are serialized (the server's call-log writer and ``block-last`` share one). Writes
refuse a database file that was deleted and follow one that was replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from .errors import StoreError, UnknownAccount
from .schema import PRAGMAS, connect

#: The account every database has (id 1): what a command works on without ``--account``.
DEFAULT_ACCOUNT = "default"
DEFAULT_ACCOUNT_ID = 1


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


class _Shared:
    """What a store and its :meth:`StoreBase.scoped` views share: the connection (replaced
    when the file is, see ``_check_file``: every view sees the new one), the write lock and
    the file's identity."""

    __slots__ = ("db", "ident", "writing")

    def __init__(self, db: aiosqlite.Connection, ident: tuple[int, int] | None) -> None:
        self.db = db
        self.ident = ident
        self.writing = asyncio.Lock()


class StoreBase:
    """The connection and its transactions; open with ``await Store.open(path)``, close with
    ``await store.close()``.

    A store works on one account (``account_id``, ``account``: its name); every query of the
    admin side is scoped to it. :meth:`scoped` gives a view on another account that shares
    the connection and the write lock (the web tier: one view per signed-in user's account)."""

    #: How long close() waits for the connection's thread (busy on a locked or stalled disk).
    CLOSE_TIMEOUT = 2.0

    def __init__(
        self,
        path: Path,
        db: aiosqlite.Connection | _Shared,
        account_id: int = DEFAULT_ACCOUNT_ID,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.path = path
        self._shared = db if isinstance(db, _Shared) else _Shared(db, _file_ident(path))
        self._owner = not isinstance(db, _Shared)  # a view never closes the connection
        self.account_id = account_id
        self.account = account

    @property
    def _db(self) -> aiosqlite.Connection:
        return self._shared.db

    @_db.setter
    def _db(self, db: aiosqlite.Connection) -> None:  # tests put a failing double in
        self._shared.db = db

    @property
    def _writing(self) -> asyncio.Lock:
        return self._shared.writing

    @classmethod
    async def open(cls, path: str | Path, account: str = DEFAULT_ACCOUNT) -> Self:
        """Open (creating and migrating) the database, working on the account named
        ``account``; an unknown name raises :class:`UnknownAccount`."""
        path = Path(path)
        # Create and migrate with a plain connection first (one place for that logic).
        await asyncio.to_thread(lambda: connect(path).close())
        store = cls(path, await cls._connect(path))
        try:
            found = await store.account_id_of(account)
        except BaseException:
            await store.close()
            raise
        if found is None:
            await store.close()
            raise UnknownAccount(account)
        store.account_id, store.account = found, account
        return store

    def scoped(self, account_id: int, name: str) -> Self:
        """A view of this store on another account: same connection, same write lock (a
        transaction of one view waits for the others'); closing a view closes nothing."""
        return type(self)(self.path, self._shared, account_id, name)

    async def account_id_of(self, name: str) -> int | None:
        """The id of the account named ``name``, or None."""
        rows = await self._fetchall("SELECT id FROM accounts WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

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
        if self._owner:
            await _close_quietly(self._db, self.CLOSE_TIMEOUT)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self, *, rollback: bool = False) -> AsyncIterator[aiosqlite.Connection]:
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
                yield self._db
                await self._db.execute("ROLLBACK" if rollback else "COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error | ValueError):
                    raise StoreError(f"writing to {self.path}: {exc}") from exc
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
        if ident == self._shared.ident:
            return
        if ident is None:
            raise StoreError(f"database {self.path} is gone (deleted or moved away)")
        await asyncio.to_thread(lambda: connect(self.path, create=False).close())  # migrated
        db = await self._connect(self.path)
        shared = self._shared
        old, shared.db, shared.ident = shared.db, db, ident
        await _close_quietly(old, self.CLOSE_TIMEOUT)

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            async with self._db.execute(sql, params) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"reading {self.path}: {exc}") from exc
