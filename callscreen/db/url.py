"""Which database ``--db`` names: one function decides, for the CLI, the web tier and serve.

A value starting ``postgresql://`` or ``postgres://`` is a PostgreSQL URL (asyncpg's form,
e.g. ``postgresql://callscreen@127.0.0.1:5432/callscreen``; a password is better kept in
``~/.pgpass`` or ``PGPASSWORD`` than in the URL, which shows in ``ps``); anything else is the
path of a SQLite file, as it always was.
"""

from __future__ import annotations

from pathlib import Path

SCHEMES = ("postgresql://", "postgres://")

#: What ``--db`` holds: a SQLite path or a PostgreSQL URL.
Database = Path | str


def is_postgres(db: str | Path) -> bool:
    """True for a PostgreSQL URL (never for a Path: a SQLite file may have any name)."""
    return isinstance(db, str) and db.startswith(SCHEMES)


def parse(value: str | Path) -> Database:
    """``--db``'s text as the CLI and config hand it over: a URL stays a str, a path becomes an
    expanded Path (``Path("postgresql://x")`` would fold the ``//``: never make one of a URL)."""
    if isinstance(value, str) and value.startswith(SCHEMES):
        return value
    return Path(value).expanduser()


def display(db: Database) -> str:
    """For messages: the path, or the URL without its password."""
    if is_postgres(db):
        from .backends.postgres import redact

        return redact(str(db))
    return str(db)
