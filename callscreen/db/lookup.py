"""The per-call read: settings and the entries that may match one caller.

Synchronous on purpose: SQLite serves these from its page cache (and a memory map) in
microseconds, so a thread hop (aiosqlite) would cost more than the read. WAL mode means the
CLI's writes never block it.

Per call, one statement in one read transaction: ``settings_version`` (moved by triggers on any
change to the account, the extensions, a prefix entry or a caller-name rule), which says whether
the cached settings, prefix entries and name rules are still current, and the index probe for
the caller's exact number. Name rules are matched against the caller's name in memory
(:class:`callscreen.names.NameIndex`), so they add no statement. Every
call sees the committed state: a CLI change applies to the next call, no restart, and a list of
a million exact numbers costs the same probe as a list of ten.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..names import NameIndex
from ..policy import (
    AccountSettings,
    Entry,
    ExtensionSettings,
    Field,
    Kind,
    Rule,
    Scope,
    Treatment,
)
from .errors import StoreError
from .schema import connect

ACCOUNT_ID = 1

_ENTRY_COLUMNS = "id, scope, kind, value, prefix, raw, ext, note, field"

#: The settings columns, read by the call path here and by the store (one row shape each).
ACCOUNT_COLUMNS = "enabled, anonymous, treatment, unknown, remember, fallback"
EXTENSION_COLUMNS = "enabled, anonymous, treatment, mailbox, unknown, remember, fallback"
_ACCOUNT_SQL = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
_EXTENSION_SQL = f"SELECT {EXTENSION_COLUMNS} FROM extensions WHERE account_id = ? AND ext = ?"
_PREFIXES_SQL = (
    f"SELECT {_ENTRY_COLUMNS}, expires_at FROM entries WHERE account_id = ? AND prefix = 1"
)
_NAMES_SQL = (
    f"SELECT {_ENTRY_COLUMNS}, expires_at FROM entries WHERE account_id = ? AND field = 'name'"
)
# The version row first (id NULL marks it), then the caller's exact entries: one statement, so
# both come from the same snapshot and a call costs one round through SQLite.
_VERSION_AND_EXACT_SQL = (
    "SELECT NULL, version, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM settings_version "
    "WHERE id = 1 UNION ALL "
    f"SELECT {_ENTRY_COLUMNS} FROM entries "
    "WHERE account_id = ? AND value = ? AND prefix = 0 AND (scope = 'account' OR ext = ?) "
    "AND field = 'number' "
    "AND (expires_at IS NULL OR expires_at > ?)"
)


def entry_from_row(row: tuple[Any, ...]) -> Entry:
    id_, scope, kind, value, prefix, raw, ext, note, field = row
    return Entry(
        id=int(id_),
        scope=Scope(scope),
        kind=Kind(kind),
        value=str(value),
        prefix=bool(prefix),
        raw=str(raw),
        ext=str(ext) or None,
        note=str(note),
        field=Field.NAME if field == "name" else Field.NUMBER,
    )


def extension_from_row(ext: str, row: tuple[Any, ...] | None) -> ExtensionSettings:
    """Settings from a row of :data:`EXTENSION_COLUMNS` (None: never configured, all off)."""
    if row is None:
        return ExtensionSettings(ext)
    on, anon, treatment, mailbox, unknown, remember, fallback = row
    return ExtensionSettings(
        ext,
        bool(on),
        Rule(anon),
        Treatment(treatment) if treatment else None,
        mailbox or None,
        Rule(unknown),
        None if remember is None else float(remember),
        Treatment(fallback) if fallback else None,
    )


def account_from_row(row: tuple[Any, ...]) -> AccountSettings:
    """Settings from a row of :data:`ACCOUNT_COLUMNS`."""
    on, anon, treatment, unknown, remember, fallback = row
    return AccountSettings(
        bool(on),
        Rule(anon),
        Treatment(treatment),
        Rule(unknown),
        float(remember),
        Treatment(fallback),
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
        self._conn = self._open()
        self._ident = self._file_ident()
        self._next_check = time.monotonic() + self.FILE_CHECK_INTERVAL
        self._version: int | None = None
        self._account = AccountSettings()
        self._extensions: dict[str, ExtensionSettings] = {}
        self._prefixes: dict[str, list[tuple[Entry, float | None]]] = {}
        self._prefix_lengths: tuple[int, ...] = ()  # the lengths of the cached prefixes
        self._names: NameIndex[tuple[Entry, float | None]] = NameIndex(())

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.path, busy_timeout_ms=self._busy_timeout_ms)
        try:
            # Reads straight from a memory map, and a page cache that holds a big list's index.
            conn.execute("PRAGMA mmap_size=1073741824")
            conn.execute("PRAGMA cache_size=-65536")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        return conn

    def close(self) -> None:
        self._conn.close()

    # -- the file itself ----------------------------------------------------------------------
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
        # While the file is gone, look on every call (a stat): no call is decided from the
        # unlinked copy, and a restored file is used at once.
        self._next_check = now
        ident = self._file_ident()
        self._next_check = now + self.FILE_CHECK_INTERVAL
        if ident != self._ident:
            conn = self._open()
            self._conn.close()
            self._conn, self._ident, self._version = conn, ident, None

    # -- the cache ----------------------------------------------------------------------------
    def _refresh(self, version: int) -> None:
        """Reload the cached settings and prefix entries if ``version`` says they changed."""
        if version == self._version:
            return
        conn = self._conn
        try:
            row = conn.execute(_ACCOUNT_SQL, (ACCOUNT_ID,)).fetchone()
            prefixes: dict[str, list[tuple[Entry, float | None]]] = {}
            for r in conn.execute(_PREFIXES_SQL, (ACCOUNT_ID,)):
                prefixes.setdefault(r[3], []).append((entry_from_row(r[:9]), r[9]))
            rules = [
                (r[3], (entry_from_row(r[:9]), r[9]))
                for r in conn.execute(_NAMES_SQL, (ACCOUNT_ID,))
            ]
        except (sqlite3.Error, TypeError) as exc:
            self._version = None
            raise StoreError(f"reading settings: {exc}") from exc
        if row is None:
            raise StoreError("the account row is missing")
        try:
            self._account = account_from_row(row)
        except ValueError as exc:
            self._version = None
            raise StoreError(f"reading settings: {exc}") from exc
        self._extensions.clear()
        self._prefixes = prefixes
        self._prefix_lengths = tuple(sorted({len(v) for v in prefixes}))
        self._names = NameIndex(rules)
        self._version = version

    def read(
        self, ext: str, e164: str | None, name: str | None = None
    ) -> tuple[AccountSettings, ExtensionSettings, list[Entry]]:
        """Everything one call needs: the account's and the extension's settings, and the
        entries (any scope, any kind) that may match ``e164`` calling ``ext``, and the name
        rules that match ``name`` (a :func:`callscreen.names.caller_key`)."""
        self._check_file()
        now = time.time()
        try:
            rows = self._conn.execute(
                _VERSION_AND_EXACT_SQL, (ACCOUNT_ID, e164 or "", ext, now)
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"reading entries: {exc}") from exc
        if not rows or rows[0][0] is not None:
            raise StoreError("the settings_version row is missing")
        self._refresh(rows[0][1])
        account, settings = self._settings(ext)
        found = [entry_from_row(r) for r in rows[1:]]
        if e164 and self._prefixes:
            prefixes = self._prefixes
            for n in self._prefix_lengths:
                for entry, expires in prefixes.get(e164[:n], ()):
                    if expires is None or expires > now:
                        found.append(entry)
        if name and self._names:
            for entry, expires in self._names.find(name):
                if expires is None or expires > now:
                    found.append(entry)
        return account, settings, found

    def _settings(self, ext: str) -> tuple[AccountSettings, ExtensionSettings]:
        settings = self._extensions.get(ext)
        if settings is None:
            try:
                row = self._conn.execute(_EXTENSION_SQL, (ACCOUNT_ID, ext)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"reading settings: {exc}") from exc
            try:
                settings = self._extensions[ext] = extension_from_row(ext, row)
            except ValueError as exc:  # a value the CHECK constraints should have refused
                raise StoreError(f"reading settings of {ext}: {exc}") from exc
        return self._account, settings
