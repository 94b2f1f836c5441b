"""Backups: the copy written before a migration, ``db backup``, ``db restore``, and the lock
that tells ``restore`` a server is running on the database.

Every copy goes through SQLite's online backup API, never a file copy: a file copy of a WAL
database taken while a server writes can miss the WAL's committed pages or tear a page, while
the backup API copies one consistent snapshot (and, restoring, writes the destination under
SQLite's own locks, so no reader sees half a database). A copy is written to a temporary file
and renamed into place: a crash or a full disk never leaves a half-written file under the
backup's name.

The server lock is ``flock`` on ``DB.lock`` next to the database: ``serve`` and ``web`` hold
it shared for as long as they run, ``restore`` asks for it exclusively without waiting. The
kernel drops it when a process ends however it ends (``kill -9`` included), so there is no
stale PID file to clean up; a lock file on the database itself would not do, because closing
any descriptor of that file drops SQLite's own POSIX locks in the process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreError


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def upgrade_backup_path(db: Path, version: int) -> Path:
    """Where the copy taken before migrating from ``version`` goes: ``callscreen.db.v1.bak``."""
    return db.with_name(f"{db.name}.v{version}.bak")


def copy_connection(src: sqlite3.Connection, dest: Path) -> None:
    """Write a consistent snapshot of ``src`` to ``dest`` (temporary file, then rename)."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)
            # The copy is a standalone file: no -wal beside it to lose when it is moved.
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
        # The copy holds the password hashes: readable by its owner only, wherever it goes.
        os.chmod(tmp, 0o600)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def backup_before_migrate(conn: sqlite3.Connection, db: Path, version: int) -> Path:
    """Copy the database at schema ``version`` next to it before a migration touches it.

    A failure raises StoreError, and the caller does not migrate: an upgrade never changes a
    database whose old state is not safely kept."""
    dest = upgrade_backup_path(db, version)
    try:
        copy_connection(conn, dest)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(
            f"not migrating {db}: cannot write the backup {dest} first: {exc}"
        ) from exc
    return dest


def inspect(path: Path, latest: int) -> int:
    """A file that is a callscreen database we can open: returns its schema version."""
    if not path.is_file():
        raise StoreError(f"no such file: {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable SQLite database: {exc}") from exc
    if ok != "ok":
        raise StoreError(f"{path} is damaged: {ok}")
    if "entries" not in tables or version < 1:
        raise StoreError(f"{path} is not a callscreen database")
    if version > latest:
        raise StoreError(f"{path} has schema v{version}, newer than this callscreen (v{latest})")
    return version


def backup(db: Path, dest: Path, latest: int) -> int:
    """``db backup``: a consistent copy of a live database; returns the copy's schema version."""
    if not db.is_file():
        raise StoreError(f"no database at {db}")
    if dest.resolve() == db.resolve():
        raise StoreError("the backup cannot be the database itself")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            copy_connection(conn, dest)
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot back up {db} to {dest}: {exc}") from exc
    return inspect(dest, latest)


def restore(src: Path, db: Path, latest: int) -> tuple[int, Path | None]:
    """``db restore``: replace the database's contents with the copy at ``src``.

    Refused while a server holds the lock; the current database is first copied to
    ``DB.before-restore.bak`` (a restore can be undone). Returns the restored schema version
    (an older one is migrated by the next open, with its own backup) and that safety copy."""
    version = inspect(src, latest)
    if src.resolve() == db.resolve():
        raise StoreError("the backup to restore is the database itself")
    db.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(db):
        saved = None
        try:
            if db.exists():
                saved = db.with_name(db.name + ".before-restore.bak")
                live = sqlite3.connect(db)
                try:
                    copy_connection(live, saved)
                finally:
                    live.close()
            source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
            target = sqlite3.connect(db)
            try:
                target.execute("PRAGMA busy_timeout=5000")
                source.backup(target)
                target.execute("PRAGMA journal_mode=WAL")
            finally:
                source.close()
                target.close()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot restore {src} into {db}: {exc}") from exc
    return version, saved


class ServerLock:
    """Held (shared) by ``serve`` and ``web`` for as long as they run on a database."""

    def __init__(self, db: Path) -> None:
        self.path = lock_path(db)
        self._fd: int | None = None

    def acquire(self, wait: float = 10.0) -> None:
        """Take the lock shared; wait up to ``wait`` seconds while a restore holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Read-only is enough for flock, and works on a file another user created.
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from exc
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreError(f"{self.path}: a restore is running; try again") from exc
                time.sleep(0.1)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


@contextlib.contextmanager
def exclusive(db: Path) -> Iterator[None]:
    """Hold the lock exclusively, or fail at once when a server holds it (shared)."""
    path = lock_path(db)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreError(
                    f"a callscreen server (serve or web) is running on {db}: stop it first "
                    "(systemctl stop callscreen callscreen-web)"
                ) from None
            raise
        yield
    finally:
        os.close(fd)
