"""The driver interface the store modules write to, and the named differences of the dialects.

SQL is written once, with ``?`` placeholders (``?N`` for a numbered one); the PostgreSQL driver
rewrites them to ``$N`` (:func:`callscreen.db.backends.postgres.translate`, cached per
statement). Where SQLite and PostgreSQL differ, the difference has a name here
(:class:`Dialect`), so a query says ``{d.group_concat('ext')}`` instead of holding two strings.
Errors: a driver raises only :class:`StoreError` (and :class:`Conflict`, a StoreError, for a
unique or foreign key violation), never sqlite3's or asyncpg's exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Row = tuple[Any, ...]
Params = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """One named fragment per difference between the two SQL dialects."""

    name: str  # "sqlite" or "postgresql"
    #: The scalar max of two values (SQLite's two-argument max(), PostgreSQL's greatest()).
    greatest: str
    #: Case-insensitive LIKE. SQLite's LIKE ignores ASCII case; PostgreSQL's needs ILIKE.
    like: str
    #: Aggregate strings: SQLite group_concat(x, ','), PostgreSQL string_agg(x, ',').
    concat_agg: str
    #: ``LIMIT ?`` for "no limit": SQLite takes -1 (NULL is a type error), PostgreSQL NULL.
    no_limit: int | None

    def group_concat(self, expr: str, sep: str = ",") -> str:
        return f"{self.concat_agg}({expr}, '{sep}')"

    def ci_eq(self, column: str) -> str:
        """``column = ?`` ignoring ASCII case: SQLite's usernames are COLLATE NOCASE; on
        PostgreSQL the unique index is on lower(username) (COLLATE "C": ASCII only, the same)."""
        if self.name == "sqlite":
            return f"{column} = ?"
        return f"lower({column}) = lower(?)"

    def ci_order(self, column: str) -> str:
        """ORDER BY ``column`` ignoring ASCII case (see :meth:`ci_eq`)."""
        return column if self.name == "sqlite" else f"lower({column})"


SQLITE = Dialect(name="sqlite", greatest="max", like="LIKE", concat_agg="group_concat", no_limit=-1)
POSTGRESQL = Dialect(
    name="postgresql", greatest="greatest", like="ILIKE", concat_agg="string_agg", no_limit=None
)


class Conn(Protocol):
    """An open database: what the store modules use instead of aiosqlite or asyncpg.

    Reads outside :meth:`transaction` see committed data; inside it (on the same Conn) they
    see the transaction's own changes. Transactions on one Conn are serialized."""

    dialect: Dialect
    #: What ``--db`` named: the SQLite path or the PostgreSQL URL.
    database: Path | str
    #: What the errors name: the SQLite path, or the URL without its password.
    where: str

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement per row (a transaction's bulk path); returns the rows changed."""
        ...

    async def pipeline(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement per row, uncounted: on PostgreSQL the batch goes out pipelined
        (one round trip, not one a row): the call log's writer, a batch every 0.25 s."""
        ...

    async def insert(self, sql: str, params: Params = ()) -> int:
        """An INSERT ending in ``RETURNING id``: the new row's id."""
        ...

    def stream(self, sql: str, params: Params = (), chunk: int = 5000) -> AsyncIterator[Row]:
        """The rows of a query, ``chunk`` at a time: a million rows never sit in memory."""
        ...

    def transaction(self, *, rollback: bool = False) -> AbstractAsyncContextManager[Conn]:
        """All or nothing (``rollback``: undo at the end anyway, a dry run)."""
        ...

    async def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Insert rows as they are (ids included): ``db copy``'s bulk path, in a transaction."""
        ...

    async def close(self) -> None: ...
