"""The two database drivers behind one interface (:class:`base.Conn`): SQLite (aiosqlite) and
PostgreSQL (asyncpg). :func:`open_conn` picks one from ``--db`` (:mod:`callscreen.db.url`).
asyncpg is imported only when a PostgreSQL URL is opened: the SQLite path loads nothing new."""

from __future__ import annotations

from ..url import Database, is_postgres
from .base import POSTGRESQL, SQLITE, Conn, Dialect, Row


async def open_conn(db: Database) -> Conn:
    """Open (creating and migrating as needed) the database ``db`` names."""
    if is_postgres(db):
        from .postgres import PgConn

        return await PgConn.open(str(db))
    from .sqlite import SqliteConn

    return await SqliteConn.open(db)


__all__ = ["POSTGRESQL", "SQLITE", "Conn", "Database", "Dialect", "Row", "open_conn"]
