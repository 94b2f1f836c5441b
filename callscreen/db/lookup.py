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

Many accounts (tenants) share one database: the account comes with each call (by name, as the
dialplan sends it), the same statement resolves it (the unique index on ``accounts.name``), and
each account's settings, prefixes and name rules are cached on their own, all dropped together
when ``settings_version`` moves.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

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
from .connection import DEFAULT_ACCOUNT as DEFAULT_ACCOUNT  # re-exported: the call path's
from .connection import DEFAULT_ACCOUNT_ID as DEFAULT_ACCOUNT_ID
from .errors import StoreError, UnknownAccount
from .schema import connect

#: Longer account names from a request are not looked up (no account has one: 1-63 chars).
MAX_ACCOUNT_NAME: Final = 63

_ENTRY_COLUMNS = "id, scope, kind, value, prefix, raw, ext, note, field"

#: The settings columns, read by the call path here and by the store (one row shape each).
ACCOUNT_COLUMNS = "enabled, anonymous, treatment, unknown, remember, fallback"
EXTENSION_COLUMNS = "enabled, anonymous, treatment, mailbox, unknown, remember, fallback"
ACCOUNT_SQL: Final = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?"
EXTENSION_SQL: Final = (
    f"SELECT {EXTENSION_COLUMNS} FROM extensions WHERE account_id = ? AND ext = ?"
)
PREFIXES_SQL: Final = (
    f"SELECT {_ENTRY_COLUMNS}, expires_at FROM entries WHERE account_id = ? AND prefix = 1"
)
NAMES_SQL: Final = (
    f"SELECT {_ENTRY_COLUMNS}, expires_at FROM entries WHERE account_id = ? AND field = 'name'"
)
# The version row first (id NULL marks it; it also names the account's id, NULL for no such
# account), then the caller's exact entries: one statement, so both come from the same snapshot
# and a call costs one round through the database. The account's id is an uncorrelated
# subquery on a unique index: evaluated once, and the entries probe still uses entries_key.
_ACCOUNT_ID_SQL = "(SELECT id FROM accounts WHERE name = ?)"
# The version and the id come as text: the same statement runs on PostgreSQL, whose UNION wants
# one type per column (scope and kind are text there). An exact entry's row has only the
# columns the probe does not already fix (value is the caller's number, prefix 0, field
# 'number'; see exact_entry_from_row): Python's sqlite3 spends ~1,000 instructions a column a
# call (cursor.description, a GIL release per value), on the version row too.
_EXACT_COLUMNS = "id, scope, kind, raw, ext, note"
VERSION_AND_EXACT_SQL: Final = (
    f"SELECT NULL, CAST(version AS TEXT), CAST({_ACCOUNT_ID_SQL} AS TEXT), NULL, NULL, NULL "
    "FROM settings_version WHERE id = 1 UNION ALL "
    f"SELECT {_EXACT_COLUMNS} FROM entries "
    f"WHERE account_id = {_ACCOUNT_ID_SQL} AND value = ? AND prefix = 0 "
    "AND (scope = 'account' OR ext = ?) AND field = 'number' "
    "AND (expires_at IS NULL OR expires_at > ?)"
)


#: The same, for an account whose id is known (cached by name at the current version).
VERSION_AND_EXACT_BY_ID_SQL: Final = (
    "SELECT NULL, CAST(version AS TEXT), NULL, NULL, NULL, NULL "
    "FROM settings_version WHERE id = 1 UNION ALL "
    f"SELECT {_EXACT_COLUMNS} FROM entries "
    "WHERE account_id = ? AND value = ? AND prefix = 0 "
    "AND (scope = 'account' OR ext = ?) AND field = 'number' "
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


def exact_entry_from_row(row: tuple[Any, ...], value: str) -> Entry:
    """An exact number entry from a row of the per-call statement (``_EXACT_COLUMNS``): the
    ``value`` the probe matched, no prefix, the number field."""
    id_, scope, kind, raw, ext, note = row
    return Entry(
        int(id_),
        # A dict, not Scope(scope): an enum's call goes through EnumType.__call__ (~3,000
        # instructions a blocked call); a value neither knows still raises ValueError.
        _SCOPES.get(scope) or Scope(scope),
        _KINDS.get(kind) or Kind(kind),
        value,
        False,
        str(raw),
        str(ext) or None,
        str(note),
        Field.NUMBER,
    )


_SCOPES: Final[dict[str, Scope]] = {s.value: s for s in Scope}
_KINDS: Final[dict[str, Kind]] = {k.value: k for k in Kind}


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


def account_from_row(row: tuple[Any, ...], account_id: int = DEFAULT_ACCOUNT_ID) -> AccountSettings:
    """Settings from a row of :data:`ACCOUNT_COLUMNS`."""
    on, anon, treatment, unknown, remember, fallback = row
    return AccountSettings(
        bool(on),
        Rule(anon),
        Treatment(treatment),
        Rule(unknown),
        float(remember),
        Treatment(fallback),
        account_id,
    )


class AccountCache:
    """One account's cached settings, prefix entries and name rules (see :class:`Lookup`).

    Filled from the statements below by :meth:`load`; the same shape for every backend."""

    __slots__ = ("account", "extensions", "names", "prefix_lengths", "prefixes")

    def __init__(
        self,
        account: AccountSettings,
        prefix_rows: list[Any],
        name_rows: list[Any],
    ) -> None:
        prefixes: dict[str, list[tuple[Entry, float | None]]] = {}
        for r in prefix_rows:
            prefixes.setdefault(r[3], []).append((entry_from_row(r[:9]), r[9]))
        self.account = account
        self.extensions: dict[str, ExtensionSettings] = {}
        self.prefixes = prefixes
        self.prefix_lengths = tuple(sorted({len(v) for v in prefixes}))  # the cached lengths
        self.names: NameIndex[tuple[Entry, float | None]] = NameIndex(
            [(r[3], (entry_from_row(r[:9]), r[9])) for r in name_rows]
        )

    def matches(self, e164: str | None, name: str | None, now: float) -> list[Entry]:
        """The prefix entries and name rules (unexpired) that match this caller."""
        found: list[Entry] = []
        if e164 and self.prefixes:
            prefixes = self.prefixes
            for n in self.prefix_lengths:
                for entry, expires in prefixes.get(e164[:n], ()):
                    if expires is None or expires > now:
                        found.append(entry)
        if name and self.names:
            for entry, expires in self.names.find(name):
                if expires is None or expires > now:
                    found.append(entry)
        return found


class Lookup:
    """A read-only view for screening. One per server (or per ``check``)."""

    #: The screener reads inline, without a task (:class:`.pglookup.PgLookup` is awaited).
    sync = True

    #: How often (seconds) to check that the file on disk is still the one we read.
    #: Final: a class constant in the compiled build too (mypyc makes a plain one a per-instance
    #: attribute, and ``Lookup.FILE_CHECK_INTERVAL`` would read a descriptor, not the number).
    FILE_CHECK_INTERVAL: Final = 1.0

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 50) -> None:
        # A short busy timeout: this runs on the event loop, and a reader in WAL mode only
        # waits in rare recovery cases. Failing fast fails the call open.
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._conn = self._open()
        #: The per-call statement's cursor, reused: a new one per call (``conn.execute``) is
        #: an object made and freed for nothing.
        self._cursor = self._conn.cursor()
        self._ident = self._file_ident()
        self._next_check = time.monotonic() + self.FILE_CHECK_INTERVAL
        self._version: str | None = None
        self._accounts: dict[int, AccountCache] = {}  # by account id, for this version
        self._ids: dict[str, int] = {
            DEFAULT_ACCOUNT: DEFAULT_ACCOUNT_ID
        }  # names seen, to their ids

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
            self._cursor = conn.cursor()

    def account_id(self, account: str) -> int | None:
        """The id of an account a call named before (None: not seen). For the call-log row of
        a call that failed open before its own lookup could say."""
        return self._ids.get(account)

    # -- the cache ----------------------------------------------------------------------------
    def _cache(self, version: str, account_id: int) -> AccountCache:
        """The account's cache, reloaded if ``version`` says anything changed."""
        if version != self._version:
            self._accounts.clear()
            self._version = version
        cache = self._accounts.get(account_id)
        if cache is None:
            cache = self._accounts[account_id] = self._load(account_id)
        return cache

    def _load(self, account_id: int) -> AccountCache:
        conn = self._conn
        try:
            row = conn.execute(ACCOUNT_SQL, (account_id,)).fetchone()
            prefix_rows = conn.execute(PREFIXES_SQL, (account_id,)).fetchall()
            name_rows = conn.execute(NAMES_SQL, (account_id,)).fetchall()
            if row is None:
                raise StoreError("the account row is missing")
            return AccountCache(account_from_row(row, account_id), prefix_rows, name_rows)
        except (sqlite3.Error, TypeError, ValueError) as exc:
            self._version = None
            raise StoreError(f"reading settings: {exc}") from exc

    def read(
        self,
        ext: str,
        e164: str | None,
        name: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> tuple[AccountSettings, ExtensionSettings, list[Entry]]:
        """Everything one call needs: the account's and the extension's settings, and the
        entries (any scope, any kind) that may match ``e164`` calling ``ext``, and the name
        rules that match ``name`` (a :func:`callscreen.names.caller_key`). Raises
        :class:`UnknownAccount` for an ``account`` name that does not exist."""
        self._check_file()
        if len(account) > MAX_ACCOUNT_NAME:
            raise UnknownAccount(account[:MAX_ACCOUNT_NAME] + "...")
        now = time.time()
        number = e164 or ""
        account_id = self._ids.get(account)
        try:
            if account_id is not None:
                # The id this name had at the cached version: valid while the version holds
                # (adding or removing an account moves it); else asked by name, once.
                rows = self._cursor.execute(
                    VERSION_AND_EXACT_BY_ID_SQL, (account_id, number, ext, now)
                ).fetchall()
                if rows and rows[0][0] is None and rows[0][1] != self._version:
                    account_id = None
                    self._ids = {DEFAULT_ACCOUNT: DEFAULT_ACCOUNT_ID}
            if account_id is None:
                rows = self._cursor.execute(
                    VERSION_AND_EXACT_SQL, (account, account, number, ext, now)
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"reading entries: {exc}") from exc
        if not rows or rows[0][0] is not None:
            raise StoreError("the settings_version row is missing")
        if account_id is None:
            if rows[0][2] is None:
                raise UnknownAccount(account)
            account_id = self._ids[account] = int(rows[0][2])
        cache = self._cache(rows[0][1], account_id)
        settings = cache.extensions.get(ext) or self._extension(cache, account_id, ext)
        found = [exact_entry_from_row(r, number) for r in rows[1:]]
        if cache.prefixes or cache.names:
            found += cache.matches(e164, name, now)
        return cache.account, settings, found

    async def fetch(
        self,
        ext: str,
        e164: str | None,
        name: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> tuple[AccountSettings, ExtensionSettings, list[Entry]]:
        """:meth:`read` for callers that serve both backends (``check``)."""
        return self.read(ext, e164, name, account)

    def _extension(self, cache: AccountCache, account_id: int, ext: str) -> ExtensionSettings:
        try:
            row = self._conn.execute(EXTENSION_SQL, (account_id, ext)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"reading settings: {exc}") from exc
        try:
            settings = cache.extensions[ext] = extension_from_row(ext, row)
        except ValueError as exc:  # a value the CHECK constraints should have refused
            raise StoreError(f"reading settings of {ext}: {exc}") from exc
        return settings
