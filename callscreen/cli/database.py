"""``db backup`` and ``db restore``: consistent copies of a live database (SQLite's backup
API, :mod:`callscreen.db.backup`), and putting one back while no server runs on it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from ..db import backup as ops
from ..db import dbcopy, url
from ..db.errors import StoreError
from ..db.schema import LATEST_VERSION
from .base import Ctx, cli, echo, run


def _same_owner(path: Path, like: Path) -> None:
    """Run as root on the service's database: give new files the directory's owner, or the
    service (its own user) could not write the database it is handed."""
    if os.geteuid() != 0 or not path.exists():
        return
    st = like.stat()
    os.chown(path, st.st_uid, st.st_gid)


def _sqlite_only(obj: Ctx, tool: str) -> None:
    if url.is_postgres(obj.database):
        raise click.UsageError(
            f"{url.display(obj.database)} is PostgreSQL: use {tool} (backup and restore are "
            "SQLite's)"
        )


@cli.group(name="db")
def db_group() -> None:
    """Back up, restore and copy the database."""


@db_group.command(name="backup")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def db_backup(obj: Ctx, dest: Path) -> None:
    """Write a consistent copy of the database to DEST, also while the server runs."""
    _sqlite_only(obj, "pg_dump -Fc")
    try:
        version = ops.backup(obj.db, dest, LATEST_VERSION)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    echo(f"backed up {obj.db} to {dest} ({dest.stat().st_size} bytes, schema v{version})")


@db_group.command(name="restore")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def db_restore(obj: Ctx, src: Path) -> None:
    """Replace the database with the backup SRC; refused while serve or web runs on it."""
    _sqlite_only(obj, "pg_restore")
    existed = obj.db.exists()
    try:
        version, saved = ops.restore(src, obj.db, LATEST_VERSION)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if not existed:
        _same_owner(obj.db, obj.db.parent)
    echo(f"restored {src} (schema v{version}) into {obj.db}")
    if saved is not None:
        echo(f"the database it replaced is kept as {saved}")
    if version < LATEST_VERSION:
        echo(
            f"it is migrated to v{LATEST_VERSION} when next opened (after a copy to "
            f"{ops.upgrade_backup_path(obj.db, version)})"
        )


@db_group.command(name="copy")
@click.argument("src", metavar="FROM")
@click.argument("dest", metavar="TO")
def db_copy(src: str, dest: str) -> None:
    """Copy every table of the database FROM into the new, empty database TO, all or nothing.

    Either may be a SQLite path or a postgresql:// URL (SQLite to PostgreSQL and back). TO is
    created (SQLite) and migrated; a TO that holds anything is refused. Stop the server on
    FROM first: the row counts are checked, and a copy of a moving database is refused."""
    t0 = time.monotonic()
    copied = run(dbcopy.copy(url.parse(src), url.parse(dest)))
    for c in copied:
        echo(f"{c.table:<18} {c.rows:>10}")
    echo(f"{dbcopy.summary(copied, time.monotonic() - t0)} into {url.display(url.parse(dest))}")
