"""The connection the CLI's reports read through (``log``, ``stats``): synchronous, either backend.

The CLI is synchronous and these are reads, so SQLite keeps its plain ``sqlite3`` connection
(no thread hop; ``log`` streams rows as they are printed, ``stats`` reads a covering index).
PostgreSQL has no synchronous driver here: :class:`PgReports` runs the asyncpg driver on a
private event loop, one query at a time (the reports' queries are bounded: aggregates, or
``LIMIT``-ed pages). Both raise only :class:`StoreError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .backends.base import POSTGRESQL, SQLITE, Dialect
from .errors import StoreError
from .url import Database, is_postgres


class ReportDb(Protocol):
    dialect: Dialect

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class SqliteReports:
    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        from .schema import connect

        self.conn = connect(path)  # creates and migrates, like every command

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            yield from self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"reading the call log: {exc}") from exc

    def close(self) -> None:
        self.conn.close()


class PgReports:
    dialect = POSTGRESQL

    def __init__(self, url: str) -> None:
        from .backends.postgres import PgConn

        self._loop = asyncio.new_event_loop()
        try:
            self._conn = self._loop.run_until_complete(PgConn.open(url))
        except BaseException:
            self._loop.close()
            raise

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        try:
            found = self._loop.run_until_complete(self._conn.fetchall(sql, params))
        except StoreError as exc:
            raise StoreError(f"reading the call log: {exc}") from exc
        yield from found

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._conn.close())
        finally:
            self._loop.close()


def open_reports(db: Database) -> ReportDb:
    """Open ``db`` for the reports: SQLite's own connection, or PostgreSQL's through asyncpg."""
    if is_postgres(db):
        return PgReports(str(db))
    return SqliteReports(db)
