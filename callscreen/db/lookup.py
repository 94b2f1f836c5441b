"""The per-call read: settings and candidate entries in two indexed queries.

Synchronous on purpose: SQLite serves these from its page cache in microseconds, so a thread hop
(aiosqlite) would cost more than the read. WAL mode means the CLI's writes never block it, and
every call reads the committed state: a CLI change applies to the next call, no restart.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..numbers import prefixes_of
from ..policy import AccountSettings, Entry, ExtensionSettings, Kind, Scope, Treatment
from .errors import StoreError
from .schema import connect

ACCOUNT_ID = 1

_SETTINGS_SQL = """
SELECT a.enabled, a.block_anonymous, a.treatment,
       e.enabled, e.block_anonymous, e.treatment, e.mailbox
FROM accounts a LEFT JOIN extensions e ON e.account_id = a.id AND e.ext = ?
WHERE a.id = ?"""

_ENTRY_COLUMNS = "id, scope, kind, value, prefix, raw, ext, note"


def entry_from_row(row: tuple[Any, ...]) -> Entry:
    id_, scope, kind, value, prefix, raw, ext, note = row
    return Entry(
        id=int(id_),
        scope=Scope(scope),
        kind=Kind(kind),
        value=str(value),
        prefix=bool(prefix),
        raw=str(raw),
        ext=str(ext) or None,
        note=str(note),
    )


def _candidates_sql(n: int) -> str:
    marks = ",".join("?" * n)
    return (
        f"SELECT {_ENTRY_COLUMNS} FROM entries "
        f"WHERE account_id = ? AND value IN ({marks}) AND (scope = 'account' OR ext = ?)"
    )


class Lookup:
    """A read-only view for screening. One per server (or per ``check``)."""

    #: How often (seconds) to check that the file on disk is still the one we read.
    FILE_CHECK_INTERVAL = 1.0

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 50) -> None:
        # A short busy timeout: this runs on the event loop, and a reader in WAL mode only
        # waits in rare recovery cases. Failing fast fails the call open.
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._conn = connect(path, busy_timeout_ms=busy_timeout_ms)
        self._ident = self._file_ident()
        self._next_check = time.monotonic() + self.FILE_CHECK_INTERVAL
        self._sql = [_candidates_sql(n) for n in range(17)]

    def close(self) -> None:
        self._conn.close()

    def _file_ident(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise StoreError(f"database {self.path} is gone: {exc.strerror}") from None
        return st.st_dev, st.st_ino

    def _check_file(self) -> None:
        """Notice a database file deleted or replaced (restored from backup, moved in place):
        an open connection would keep reading the old inode and miss every later change."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.FILE_CHECK_INTERVAL
        ident = self._file_ident()
        if ident != self._ident:
            conn = connect(self.path, busy_timeout_ms=self._busy_timeout_ms, create=False)
            self._conn.close()
            self._conn, self._ident = conn, ident

    def settings(self, ext: str) -> tuple[AccountSettings, ExtensionSettings]:
        self._check_file()
        try:
            row = self._conn.execute(_SETTINGS_SQL, (ext, ACCOUNT_ID)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"reading settings: {exc}") from exc
        if row is None:
            raise StoreError("the account row is missing")
        a_on, a_anon, a_treat, e_on, e_anon, e_treat, mailbox = row
        account = AccountSettings(bool(a_on), bool(a_anon), Treatment(a_treat))
        extension = ExtensionSettings(
            ext,
            bool(e_on),
            bool(e_anon),
            Treatment(e_treat) if e_treat else None,
            mailbox or None,
        )
        return account, extension

    def candidates(self, ext: str, e164: str) -> list[Entry]:
        """Entries that may match a call from ``e164`` to ``ext`` (any scope, any kind)."""
        values = prefixes_of(e164)
        sql = (
            self._sql[len(values)] if len(values) < len(self._sql) else _candidates_sql(len(values))
        )
        try:
            rows = self._conn.execute(sql, (ACCOUNT_ID, *values, ext)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"reading entries: {exc}") from exc
        return [entry_from_row(r) for r in rows]
