"""Opening the database: pragmas and versioned migrations (``migrations/NNNN_name.sql``)."""

from __future__ import annotations

import os
import sqlite3
from importlib import resources
from pathlib import Path

from .backup import backup_before_migrate
from .errors import StoreError

#: Where the database lives unless --db / CALLSCREEN_DB say otherwise.
DEFAULT_DB = (
    Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
    / "callscreen/callscreen.db"
)

#: Applied to every connection. WAL lets the server read while the CLI writes.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable across process crashes; WAL makes it safe
    "PRAGMA foreign_keys=ON",
)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, in order."""
    out = []
    for item in resources.files("callscreen.db").joinpath("migrations").iterdir():
        if item.name.endswith(".sql"):
            version = int(item.name.split("_", 1)[0])
            out.append((version, item.name, item.read_text(encoding="utf-8")))
    return sorted(out)


LATEST_VERSION = migrations()[-1][0]


def connect(
    path: str | Path, *, busy_timeout_ms: int = 5000, create: bool = True
) -> sqlite3.Connection:
    """Open (and if needed create and migrate) the database; raise StoreError on failure.

    A database at an older schema version is first copied to ``DB.vN.bak`` (the SQLite
    backup API, see :mod:`callscreen.db.backup`); if that copy cannot be written, nothing is
    migrated and the open fails. Version 0 is a new, empty file: nothing to keep."""
    path = Path(path)
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise StoreError(f"no database at {path}")
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        for pragma in PRAGMAS:
            conn.execute(pragma)
        current = schema_version(conn)
        if 0 < current < LATEST_VERSION:
            # An upgrade: keep the old database before the first migration touches it.
            try:
                backup_before_migrate(conn, path, current)
            except StoreError:
                conn.close()
                raise
        migrate(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot open database {path}: {exc.strerror or exc}") from exc
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction; safe with concurrent openers."""
    if schema_version(conn) >= LATEST_VERSION:
        return LATEST_VERSION
    for version, _name, sql in migrations():
        conn.execute("BEGIN IMMEDIATE")  # the write lock: a second process waits, then re-checks
        try:
            current = schema_version(conn)
            if current > LATEST_VERSION:
                raise StoreError(
                    f"database schema v{current} is newer than this callscreen (v{LATEST_VERSION})"
                )
            if version > current:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
