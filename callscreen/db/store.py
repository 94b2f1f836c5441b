"""The admin side of the store (aiosqlite): settings, lists, call log writes.

Every change is one transaction: a batch of numbers is stored whole or not at all.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ..numbers import Pattern
from ..policy import AccountSettings, Entry, ExtensionSettings, Kind, Scope, Treatment
from .errors import InvalidInput, StoreError
from .lookup import _ENTRY_COLUMNS, ACCOUNT_ID, entry_from_row
from .schema import PRAGMAS, connect

_EXT = re.compile(r"^[\w+#*.-]{1,80}$")
# Mailbox goes into VoiceMail(box@context,u): no commas, quotes or spaces may slip through.
_MAILBOX = re.compile(r"^[\w.+-]{1,80}(@[\w.-]{1,80})?$")


def check_ext(ext: str) -> str:
    if not _EXT.match(ext):
        raise InvalidInput(f"not an extension: {ext!r} (letters, digits, + # * . - _)")
    return ext


def check_mailbox(box: str) -> str:
    if not _MAILBOX.match(box):
        raise InvalidInput(f"not a mailbox: {box!r} (expected BOX@CONTEXT, e.g. 101@default)")
    return box


def check_treatment(value: str) -> Treatment:
    try:
        return Treatment(value)
    except ValueError:
        choices = ", ".join(t.value for t in Treatment)
        raise InvalidInput(f"unknown treatment {value!r} (choose {choices})") from None


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """An entry with its bookkeeping, as ``list`` shows it."""

    entry: Entry
    created_at: float
    hits: int
    last_hit: float | None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One screened call, for the call log."""

    time: float
    ext: str
    caller_raw: str
    caller_e164: str | None
    result: str
    reason: str
    treatment: str | None
    entry_id: int | None
    duration: float
    uniqueid: str | None = None


def _where_list(scope: Scope, ext: str | None, kind: Kind) -> tuple[str, tuple[Any, ...]]:
    return (
        "account_id = ? AND scope = ? AND ext = ? AND kind = ?",
        (ACCOUNT_ID, scope.value, ext or "", kind.value),
    )


def _scope_ext(scope: Scope, ext: str | None) -> str:
    if scope is Scope.EXTENSION:
        if not ext:
            raise InvalidInput("an extension entry needs an extension")
        return check_ext(ext)
    return ""


class Store:
    """Open with ``await Store.open(path)``; close with ``await store.close()``."""

    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self._db = db

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        path = Path(path)
        # Create and migrate with a plain connection first (one place for that logic).
        await asyncio.to_thread(lambda: connect(path).close())
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
            await db.execute("PRAGMA busy_timeout=5000")
            for pragma in PRAGMAS:
                await db.execute(pragma)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        return cls(path, db)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            await self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from exc
        try:
            yield self._db
            await self._db.execute("COMMIT")
        except BaseException as exc:
            await self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"writing to {self.path}: {exc}") from exc
            raise

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            async with self._db.execute(sql, params) as cur:
                return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"reading {self.path}: {exc}") from exc

    # -- settings ----------------------------------------------------------------------------
    async def settings(self, ext: str) -> tuple[AccountSettings, ExtensionSettings]:
        check_ext(ext)
        rows = await self._fetchall(
            "SELECT enabled, block_anonymous, treatment, mailbox FROM extensions "
            "WHERE account_id = ? AND ext = ?",
            (ACCOUNT_ID, ext),
        )
        account = await self.account()
        if not rows:
            return account, ExtensionSettings(ext)
        on, anon, treat, box = rows[0]
        return account, ExtensionSettings(
            ext, bool(on), bool(anon), Treatment(treat) if treat else None, box or None
        )

    async def account(self) -> AccountSettings:
        rows = await self._fetchall(
            "SELECT enabled, block_anonymous, treatment FROM accounts WHERE id = ?", (ACCOUNT_ID,)
        )
        on, anon, treat = rows[0]
        return AccountSettings(bool(on), bool(anon), Treatment(treat))

    async def set_account(
        self,
        *,
        enabled: bool | None = None,
        block_anonymous: bool | None = None,
        treatment: Treatment | None = None,
    ) -> AccountSettings:
        changes = {"enabled": enabled, "block_anonymous": block_anonymous, "treatment": treatment}
        sets = {
            k: (v.value if isinstance(v, Treatment) else int(v))
            for k, v in changes.items()
            if v is not None
        }
        if sets:
            cols = ", ".join(f"{k} = ?" for k in sets)
            async with self._transaction() as db:
                await db.execute(
                    f"UPDATE accounts SET {cols}, updated_at = ? WHERE id = ?",
                    (*sets.values(), time.time(), ACCOUNT_ID),
                )
        return await self.account()

    async def extensions(self) -> list[ExtensionSettings]:
        rows = await self._fetchall(
            "SELECT ext, enabled, block_anonymous, treatment, mailbox FROM extensions "
            "WHERE account_id = ? ORDER BY ext",
            (ACCOUNT_ID,),
        )
        return [
            ExtensionSettings(e, bool(on), bool(anon), Treatment(t) if t else None, box or None)
            for e, on, anon, t, box in rows
        ]

    async def set_extension(
        self,
        ext: str,
        *,
        enabled: bool | None = None,
        block_anonymous: bool | None = None,
        treatment: Treatment | None = None,
        mailbox: str | None = None,
    ) -> ExtensionSettings:
        check_ext(ext)
        if mailbox is not None and mailbox != "":
            check_mailbox(mailbox)
        values: dict[str, Any] = {}
        if enabled is not None:
            values["enabled"] = int(enabled)
        if block_anonymous is not None:
            values["block_anonymous"] = int(block_anonymous)
        if treatment is not None:
            values["treatment"] = treatment.value
        if mailbox is not None:
            values["mailbox"] = mailbox or None  # "" resets to EXT@default
        async with self._transaction() as db:
            await self._ensure_extension(db, ext)
            if values:
                cols = ", ".join(f"{k} = ?" for k in values)
                await db.execute(
                    f"UPDATE extensions SET {cols}, updated_at = ? "
                    "WHERE account_id = ? AND ext = ?",
                    (*values.values(), time.time(), ACCOUNT_ID, ext),
                )
        return (await self.settings(ext))[1]

    @staticmethod
    async def _ensure_extension(db: aiosqlite.Connection, ext: str) -> None:
        await db.execute(
            "INSERT OR IGNORE INTO extensions (account_id, ext, updated_at) VALUES (?, ?, ?)",
            (ACCOUNT_ID, ext, time.time()),
        )

    # -- lists -------------------------------------------------------------------------------
    async def add_entries(
        self,
        scope: Scope,
        ext: str | None,
        kind: Kind,
        patterns: Iterable[Pattern],
        note: str = "",
    ) -> tuple[list[Pattern], list[Pattern]]:
        """Add all or nothing. Returns (added, already listed)."""
        ext_value = _scope_ext(scope, ext)
        added: list[Pattern] = []
        existing: list[Pattern] = []
        now = time.time()
        async with self._transaction() as db:
            if scope is Scope.EXTENSION:
                await self._ensure_extension(db, ext_value)
            for p in dict.fromkeys(patterns):  # dedupe within the batch, keep order
                cur = await db.execute(
                    "INSERT OR IGNORE INTO entries (account_id, scope, ext, kind, value, prefix, "
                    "raw, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ACCOUNT_ID,
                        scope.value,
                        ext_value,
                        kind.value,
                        p.value,
                        int(p.prefix),
                        p.raw,
                        note,
                        now,
                    ),
                )
                (added if cur.rowcount else existing).append(p)
        return added, existing

    async def remove_entries(
        self, scope: Scope, ext: str | None, kind: Kind, patterns: Iterable[Pattern]
    ) -> tuple[list[Pattern], list[Pattern]]:
        """Remove in one transaction. Returns (removed, not listed)."""
        ext_value = _scope_ext(scope, ext)
        where, params = _where_list(scope, ext_value, kind)
        removed: list[Pattern] = []
        missing: list[Pattern] = []
        async with self._transaction() as db:
            for p in dict.fromkeys(patterns):
                cur = await db.execute(
                    f"DELETE FROM entries WHERE {where} AND value = ? AND prefix = ?",
                    (*params, p.value, int(p.prefix)),
                )
                (removed if cur.rowcount else missing).append(p)
        return removed, missing

    async def list_entries(
        self, scope: Scope, ext: str | None, kind: Kind, *, limit: int | None = None
    ) -> list[ListedEntry]:
        where, params = _where_list(scope, _scope_ext(scope, ext), kind)
        sql = (
            f"SELECT {_ENTRY_COLUMNS}, created_at, hits, last_hit FROM entries WHERE {where} "
            "ORDER BY value, prefix"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = await self._fetchall(sql, params)
        return [ListedEntry(entry_from_row(r[:8]), r[8], r[9], r[10]) for r in rows]

    # -- call log and counters (the server's batched writer calls these) ---------------------
    async def write_calls(
        self, calls: Sequence[CallRecord], hits: dict[int, tuple[int, float]]
    ) -> None:
        """Append call-log rows and add hit counts ({entry id: (count, last time)}), atomically."""
        async with self._transaction() as db:
            await db.executemany(
                "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, "
                "reason, treatment, entry_id, duration, uniqueid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        ACCOUNT_ID,
                        c.time,
                        c.ext,
                        c.caller_raw,
                        c.caller_e164,
                        c.result,
                        c.reason,
                        c.treatment,
                        c.entry_id,
                        c.duration,
                        c.uniqueid,
                    )
                    for c in calls
                ],
            )
            await db.executemany(
                "UPDATE entries SET hits = hits + ?, last_hit = max(coalesce(last_hit, 0), ?) "
                "WHERE id = ?",
                [(n, last, entry_id) for entry_id, (n, last) in hits.items()],
            )

    async def recent_calls(self, *, ext: str | None = None, limit: int = 50) -> list[CallRecord]:
        sql = (
            "SELECT time, ext, caller_raw, caller_e164, result, reason, treatment, entry_id, "
            "duration, uniqueid FROM call_log WHERE account_id = ?"
        )
        params: list[Any] = [ACCOUNT_ID]
        if ext is not None:
            sql += " AND ext = ?"
            params.append(ext)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return [CallRecord(*r) for r in await self._fetchall(sql, params)]
