"""``callscreen db copy FROM TO``: every table from one database into another, either backend.

SQLite to PostgreSQL (moving up) and back (moving down, or a local copy to look at). The target
is empty and migrated to the same version (opening it migrates it); it is filled in **one
transaction**: a failure anywhere (a constraint, a disk, a count that does not match) leaves
it as empty as it was. Rows keep their ids (the call log's ``entry_id`` and the audit trail
still point at the right rows); PostgreSQL's identity sequences are moved past them after.

Rows are streamed in batches of :data:`BATCH`: a call log of a million rows never sits in
memory (the source is read by a cursor; PostgreSQL is written with COPY, SQLite with
``executemany``). Triggers on the target fire as rows arrive; the two tables they keep
(``list_sizes``, ``settings_version``) are then replaced with the source's rows, so the copy
is the source, row for row. Each table's count is checked three ways (the source's count,
the rows read, the target's count in the transaction) before the commit: copy a database no
server is writing to, or the counts disagree and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backends import Conn, Row, open_conn
from .errors import InvalidInput, StoreError
from .url import Database, display, is_postgres

#: Every table, parents before children (foreign keys), the trigger-kept ones last.
TABLES = (
    "accounts",
    "extensions",
    "entries",
    "users",
    "user_extensions",
    "tokens",
    "sessions",
    "call_log",
    "audit_log",
    "list_sizes",
    "settings_version",
)
#: Filled by triggers as rows arrive: emptied, then copied from the source.
DERIVED = ("list_sizes", "settings_version")
#: Tables with an ``id`` identity on PostgreSQL (its sequence moves past the copied ids).
IDENTITIES = ("accounts", "entries", "users", "tokens", "call_log", "audit_log")
#: Rows per batch read and written.
BATCH = 5000
#: What a fresh database holds (the default account); more than this and it is not empty.
_FRESH = {"accounts": 1}


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


async def _tables(conn: Conn) -> set[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_version'"
        )
    return {str(r[0]) for r in await conn.fetchall(sql)}


async def _columns(conn: Conn, table: str) -> list[str]:
    if conn.dialect.name == "sqlite":
        return [str(r[1]) for r in await conn.fetchall(f"PRAGMA table_info({table})")]
    rows = await conn.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [str(r[0]) for r in rows]


async def _count(conn: Conn, table: str) -> int:
    row = await conn.fetchone(f"SELECT count(*) FROM {table}")
    return int(row[0]) if row else 0


async def _check_schemas(source: Conn, target: Conn) -> dict[str, list[str]]:
    """The columns to copy per table; refuses tables this version does not know of."""
    for conn in (source, target):
        unknown = (await _tables(conn)) - set(TABLES)
        if unknown:
            raise StoreError(
                f"{conn.where} has tables db copy does not know: {', '.join(sorted(unknown))}"
            )
    out = {}
    for table in TABLES:
        cols, theirs = await _columns(source, table), await _columns(target, table)
        if set(cols) != set(theirs):
            raise StoreError(f"table {table} differs between {source.where} and {target.where}")
        out[table] = cols
    return out


async def _check_empty(target: Conn) -> None:
    for table in TABLES:
        if table in DERIVED:
            continue
        n = await _count(target, table)
        if n > _FRESH.get(table, 0):
            raise InvalidInput(
                f"{target.where} is not empty ({table}: {n} rows): db copy fills only a new, "
                "empty database"
            )


def check(src: Database, dest: Database) -> None:
    """Refuse a copy onto itself, or from a SQLite file that is not there (opening would
    create it)."""
    if display(src) == display(dest) or (
        not is_postgres(src)
        and not is_postgres(dest)
        and Path(src).resolve() == Path(dest).resolve()
    ):
        raise InvalidInput("db copy: FROM and TO are the same database")
    if not is_postgres(src) and not Path(src).exists():
        raise InvalidInput(f"db copy: no database at {src}")


async def copy(
    src: Database,
    dest: Database,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> list[Copied]:
    """Copy every table of ``src`` into the empty ``dest``, all or nothing; the row counts."""
    check(src, dest)
    source = await open_conn(src)
    try:
        target = await open_conn(dest)
        try:
            return await _copy(source, target, batch, progress)
        finally:
            await target.close()
    finally:
        await source.close()


async def _copy(
    source: Conn, target: Conn, batch: int, progress: Callable[[str, int], None] | None
) -> list[Copied]:
    columns = await _check_schemas(source, target)
    await _check_empty(target)
    done: list[Copied] = []
    async with target.transaction() as tx:
        await tx.execute("DELETE FROM accounts")  # the fresh database's default account
        for table in TABLES:
            if table in DERIVED:
                await tx.execute(f"DELETE FROM {table}")  # what the triggers made
            expected = await _count(source, table)
            cols = columns[table]
            read = 0
            rows: list[Row] = []
            order = "id" if "id" in cols else ", ".join(cols)
            async for row in source.stream(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}", (), batch
            ):
                rows.append(row)
                if len(rows) >= batch:
                    await tx.copy_rows(table, cols, rows)
                    read += len(rows)
                    rows = []
                    if progress is not None:
                        progress(table, read)
            if rows:
                await tx.copy_rows(table, cols, rows)
                read += len(rows)
            written = await _count(tx, table)
            if not expected == read == written:
                raise StoreError(
                    f"db copy: {table}: {expected} rows in {source.where}, {read} read, "
                    f"{written} written: is a server writing to it? Nothing was copied"
                )
            done.append(Copied(table, written))
        if tx.dialect.name == "postgresql":
            for table in IDENTITIES:
                await tx.fetchone(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce(max(id), 1), max(id) IS NOT NULL) FROM {table}"
                )
    return done


def summary(copied: list[Copied], seconds: float) -> str:
    return f"copied {sum(c.rows for c in copied)} rows in {len(copied)} tables in {seconds:.1f} s"
