"""The store's connection: open, close, one write transaction at a time, on either backend.

The driver (:mod:`callscreen.db.backends`: SQLite through aiosqlite, PostgreSQL through
asyncpg) does the work; ``--db`` picks it (:mod:`callscreen.db.url`). Every change is one
transaction: a batch of numbers is stored whole or not at all. Transactions on one Store (and
its :meth:`StoreBase.scoped` views) are serialized (the server's call-log writer and
``block-last`` share one). On SQLite, writes refuse a database file that was deleted and
follow one that was replaced (:class:`callscreen.db.backends.sqlite.SqliteConn`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from .backends import Conn, Database, Dialect, open_conn
from .errors import UnknownAccount
from .url import parse

#: The account every database has (id 1): what a command works on without ``--account``.
DEFAULT_ACCOUNT = "default"
DEFAULT_ACCOUNT_ID = 1


class StoreBase:
    """The connection and its transactions; open with ``await Store.open(db)``, close with
    ``await store.close()``.

    A store works on one account (``account_id``, ``account``: its name); every query of the
    admin side is scoped to it. :meth:`scoped` gives a view on another account that shares
    the connection and the write lock (the web tier: one view per signed-in user's account)."""

    def __init__(
        self,
        conn: Conn,
        account_id: int = DEFAULT_ACCOUNT_ID,
        account: str = DEFAULT_ACCOUNT,
        *,
        owner: bool = True,
    ) -> None:
        self.conn = conn
        self._owner = owner  # a view never closes the connection
        self.account_id = account_id
        self.account = account

    @property
    def path(self) -> Database:
        """The database: a SQLite path, or a PostgreSQL URL (with its password, if it has one:
        for messages use ``conn.where``)."""
        return self.conn.database

    @property
    def dialect(self) -> Dialect:
        return self.conn.dialect

    @property
    def _db(self) -> aiosqlite.Connection:
        """SQLite's aiosqlite connection (the storage-fault tests put a failing double in)."""
        return self.conn._db  # type: ignore[attr-defined,no-any-return]

    @_db.setter
    def _db(self, db: aiosqlite.Connection) -> None:
        self.conn._db = db  # type: ignore[attr-defined]

    @classmethod
    async def open(cls, db: str | Path, account: str = DEFAULT_ACCOUNT) -> Self:
        """Open (creating and migrating) the database, working on the account named
        ``account``; an unknown name raises :class:`UnknownAccount`."""
        store = cls(await open_conn(parse(db) if isinstance(db, str) else db))
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
        return type(self)(self.conn, account_id, name, owner=False)

    async def account_id_of(self, name: str) -> int | None:
        """The id of the account named ``name``, or None."""
        rows = await self._fetchall("SELECT id FROM accounts WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

    async def close(self) -> None:
        """Close the connection (bounded: see the drivers)."""
        if self._owner:
            await self.conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _transaction(self, *, rollback: bool = False) -> AbstractAsyncContextManager[Conn]:
        """One write transaction, all or nothing (``rollback``: a dry run). Callers only ever
        see StoreError (or what their own block raised)."""
        return self.conn.transaction(rollback=rollback)

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.conn.fetchall(sql, params)
