"""The admin side of the store: settings, lists, bulk import (SQL for both backends).

The connection and transactions are in :mod:`.connection`, the call log in :mod:`.calllog`;
``Store`` puts them together. Every change is one transaction: a batch of numbers is stored
whole or not at all.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from operator import itemgetter
from typing import Any

from ..numbers import Pattern
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
from . import audit as _audit
from .accounts import AccountRow as AccountRow  # re-exported
from .accounts import AccountsMixin
from .audit import AuditEntry
from .backends import POSTGRESQL, Conn, Dialect
from .calllog import CallLogMixin
from .calllog import CallRecord as CallRecord  # re-exported: the store's row type
from .errors import InvalidInput, UnknownAccount
from .lookup import (
    _ENTRY_COLUMNS,
    ACCOUNT_COLUMNS,
    EXTENSION_COLUMNS,
    account_from_row,
    entry_from_row,
    extension_from_row,
)
from .validate import check_ext as check_ext
from .validate import check_mailbox as check_mailbox
from .validate import check_treatment as check_treatment


class Inherit:
    """The type of :data:`INHERIT`."""

    def __repr__(self) -> str:
        return "INHERIT"


#: An extension setting set back to "the account's" (NULL in its row).
INHERIT = Inherit()


def _column_value(v: object) -> object:
    """A settings value as its column holds it."""
    if isinstance(v, Inherit):
        return None
    if isinstance(v, Rule | Treatment):
        return v.value
    if isinstance(v, bool):
        return int(v)
    return v


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """An entry with its bookkeeping, as ``list`` shows it."""

    entry: Entry
    created_at: float
    hits: int
    last_hit: float | None
    expires_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One row of a bulk import."""

    scope: Scope
    ext: str  # "" for the account scope
    kind: Kind
    pattern: Pattern
    note: str = ""
    expires_at: float | None = None
    field: Field = Field.NUMBER  # NAME: pattern.value is a caller-name rule


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int  # new entries
    updated: int  # expired entries revived, or temporary ones given a later expiry
    unchanged: int  # already listed (as they are)
    duplicates: int  # repeated within the input


def _where_list(
    account_id: int, scope: Scope, ext: str | None, kind: Kind
) -> tuple[str, tuple[Any, ...]]:
    return (
        "account_id = ? AND scope = ? AND ext = ? AND kind = ?",
        (account_id, scope.value, ext or "", kind.value),
    )


_INSERT_ENTRY = (
    "INSERT INTO entries (account_id, scope, ext, kind, value, prefix, raw, note, created_at, "
    "expires_at, field) "
)


def _on_conflict(d: Dialect) -> str:
    """An entry already listed changes only when that makes it last longer: an expired one is
    revived (as if new), a temporary one gets the later expiry (NULL: never). ?11 is now."""
    return (
        "ON CONFLICT (account_id, value, prefix, scope, ext, kind, field) DO UPDATE SET "
        "raw = CASE WHEN entries.expires_at <= ?11 THEN excluded.raw ELSE entries.raw END, "
        "note = CASE WHEN entries.expires_at <= ?11 THEN excluded.note ELSE entries.note END, "
        "created_at = CASE WHEN entries.expires_at <= ?11 THEN excluded.created_at "
        "ELSE entries.created_at END, "
        "expires_at = excluded.expires_at "
        "WHERE entries.expires_at IS NOT NULL AND (excluded.expires_at IS NULL "
        f"OR excluded.expires_at > {d.greatest}(entries.expires_at, ?11))"
    )


@cache
def _upsert(d: Dialect) -> str:
    """Add one entry (see :func:`_on_conflict`); ?12 is the field ('number' or 'name')."""
    return f"{_INSERT_ENTRY}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12) {_on_conflict(d)}"


#: PostgreSQL's bulk form of :func:`_upsert`: a chunk of rows as one array per column, one
#: statement (one round trip, and its row count) instead of one per row. ?11 is now, ?12 the
#: field column.
_UPSERT_ARRAYS = (
    f"{_INSERT_ENTRY}SELECT * FROM unnest(?1::bigint[], ?2::text[], ?3::text[], ?4::text[], "
    "?5::text[], ?6::integer[], ?7::text[], ?8::text[], ?9::float8[], ?10::float8[], "
    f"?12::text[]) {_on_conflict(POSTGRESQL)}"
)


async def _upsert_chunk(db: Conn, rows: list[tuple[Any, ...]]) -> int:
    """Add rows of :func:`_upsert`'s parameters; returns the rows added or changed."""
    if db.dialect is not POSTGRESQL:
        return await db.executemany(_upsert(db.dialect), rows)
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    return await db.execute(_UPSERT_ARRAYS, [*map(list, columns[:10]), rows[0][10], columns[11]])


_LISTED_COLUMNS = f"{_ENTRY_COLUMNS}, created_at, hits, last_hit, expires_at"
#: Rows per executemany in a bulk import (a progress tick between chunks).
IMPORT_CHUNK = 50_000
#: Page cache (KiB) during a big import: the index pages being appended to stay in memory.
IMPORT_CACHE_KIB = 65536


def _first_of_each(params: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Drop repeated entries (same list, value, prefix, field) from rows sorted by value."""
    unique: list[tuple[Any, ...]] = []
    group: list[tuple[Any, ...]] = []
    value = None
    for p in params:
        if p[4] != value:
            value, group = p[4], [p]
            unique.append(p)
        elif not any(q[1:4] == p[1:4] and q[5] == p[5] and q[11] == p[11] for q in group):
            group.append(p)
            unique.append(p)
    return unique


def _listed(r: Sequence[Any]) -> ListedEntry:
    return ListedEntry(entry_from_row(tuple(r[:9])), r[9], r[10], r[11], r[12])


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """A search in a list: ``value_prefix`` is a range on the entries_list index (a number
    typed in any form, normalized by the caller); ``text`` is a substring of the note or the
    number as typed (a scan of that one list)."""

    value_prefix: str | None = None
    text: str | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where_entries(
    d: Dialect,
    account_id: int,
    scope: Scope | None,
    ext: str | None,
    kind: Kind | None,
    match: EntryFilter | None = None,
    field: Field | None = None,
) -> tuple[str, list[Any]]:
    where: list[str] = ["account_id = ?"]
    params: list[Any] = [account_id]
    if field is not None:
        where.append("field = ?")
        params.append(field.value)
    if scope is not None:
        where.append("scope = ? AND ext = ?")
        params += [scope.value, _scope_ext(scope, ext)]
    if kind is not None:
        where.append("kind = ?")
        params.append(kind.value)
    if match is not None and match.value_prefix is not None:
        # value >= p AND value < p + U+10FFFF: a range scan, no LIKE (which skips the index).
        where.append("value >= ? AND value < ?")
        params += [match.value_prefix, match.value_prefix + "\U0010ffff"]
    if match is not None and match.text is not None:
        where.append(f"(note {d.like} ? ESCAPE '\\' OR raw {d.like} ? ESCAPE '\\')")
        params += [_like(match.text)] * 2
    return " AND ".join(where), params


def _scope_ext(scope: Scope, ext: str | None) -> str:
    if scope is Scope.EXTENSION:
        if not ext:
            raise InvalidInput("an extension entry needs an extension")
        return check_ext(ext)
    return ""


class Store(AccountsMixin, CallLogMixin):
    """Open with ``await Store.open(path)``; close with ``await store.close()``.

    The connection and its transactions are :class:`StoreBase`'s, the call log
    :class:`CallLogMixin`'s; here: settings and lists."""

    # -- settings ----------------------------------------------------------------------------
    async def settings(self, ext: str) -> tuple[AccountSettings, ExtensionSettings]:
        check_ext(ext)
        rows = await self._fetchall(
            f"SELECT {EXTENSION_COLUMNS} FROM extensions WHERE account_id = ? AND ext = ?",
            (self.account_id, ext),
        )
        return await self.account_settings(), extension_from_row(ext, rows[0] if rows else None)

    async def account_settings(self) -> AccountSettings:
        """The settings of the store's account (``self.account`` is its name)."""
        rows = await self._fetchall(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (self.account_id,)
        )
        if not rows:  # removed (account remove --force) while this store was open
            raise UnknownAccount(self.account)
        return account_from_row(rows[0])

    async def set_account(
        self,
        *,
        enabled: bool | None = None,
        anonymous: Rule | None = None,
        treatment: Treatment | None = None,
        unknown: Rule | None = None,
        remember: float | None = None,
        fallback: Treatment | None = None,
        audit: AuditEntry | None = None,
    ) -> AccountSettings:
        """Change the account row; ``audit`` (its before/after filled in here, the whole
        settings) is written in the same transaction, so a change never goes unrecorded."""
        changes: dict[str, object] = {
            "enabled": enabled,
            "anonymous": anonymous,
            "treatment": treatment,
            "unknown": unknown,
            "remember": remember,
            "fallback": fallback,
        }
        sets = {k: _column_value(v) for k, v in changes.items() if v is not None}
        if sets or audit is not None:
            cols = "".join(f"{k} = ?, " for k in sets)
            async with self._transaction() as db:
                before = await self.account_settings()
                await db.execute(
                    f"UPDATE accounts SET {cols}updated_at = ? WHERE id = ?",
                    (*sets.values(), time.time(), self.account_id),
                )
                after = await self.account_settings()
                if audit is not None and after != before:  # a change that changes nothing
                    await _audit.write(  # is not one: no row
                        db,
                        self.account_id,
                        replace(
                            audit, before=_audit.settings(before), after=_audit.settings(after)
                        ),
                    )
        return await self.account_settings()

    async def extensions(self) -> list[ExtensionSettings]:
        rows = await self._fetchall(
            f"SELECT ext, {EXTENSION_COLUMNS} FROM extensions WHERE account_id = ? ORDER BY ext",
            (self.account_id,),
        )
        return [extension_from_row(r[0], tuple(r[1:])) for r in rows]

    async def set_extension(
        self,
        ext: str,
        *,
        enabled: bool | None = None,
        anonymous: Rule | None = None,
        treatment: Treatment | None = None,
        mailbox: str | None = None,
        unknown: Rule | None = None,
        remember: float | Inherit | None = None,
        fallback: Treatment | Inherit | None = None,
        audit: AuditEntry | None = None,
    ) -> ExtensionSettings:
        """Change (creating) an extension's row; ``audit`` as in :meth:`set_account`.

        None leaves a setting as it is; :data:`INHERIT` sets ``remember`` or ``fallback``
        back to the account's."""
        check_ext(ext)
        if mailbox is not None and mailbox != "":
            check_mailbox(mailbox)
        changes: dict[str, object] = {
            "enabled": enabled,
            "anonymous": anonymous,
            "treatment": treatment,
            "unknown": unknown,
            "remember": remember,
            "fallback": fallback,
        }
        values: dict[str, Any] = {k: _column_value(v) for k, v in changes.items() if v is not None}
        if mailbox is not None:
            values["mailbox"] = mailbox or None  # "" resets to EXT@default
        async with self._transaction() as db:
            before = (await self.settings(ext))[1]
            await self._ensure_extension(db, ext, self.account_id)
            if values:
                cols = ", ".join(f"{k} = ?" for k in values)
                await db.execute(
                    f"UPDATE extensions SET {cols}, updated_at = ? "
                    "WHERE account_id = ? AND ext = ?",
                    (*values.values(), time.time(), self.account_id, ext),
                )
            after = (await self.settings(ext))[1]
            if audit is not None and after != before:  # nothing changed: no audit row
                await _audit.write(
                    db,
                    self.account_id,
                    replace(audit, before=_audit.settings(before), after=_audit.settings(after)),
                )
        return (await self.settings(ext))[1]

    @staticmethod
    async def _ensure_extension(db: Conn, ext: str, account_id: int) -> None:
        await db.execute(
            "INSERT INTO extensions (account_id, ext, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (account_id, ext, time.time()),
        )

    # -- lists -------------------------------------------------------------------------------
    async def add_entries(
        self,
        scope: Scope,
        ext: str | None,
        kind: Kind,
        patterns: Iterable[Pattern],
        note: str = "",
        *,
        expires_at: float | None = None,
        audit: AuditEntry | None = None,
        field: Field = Field.NUMBER,
    ) -> tuple[list[Pattern], list[Pattern]]:
        """Add all or nothing. Returns (added, already listed); ``audit`` is written in the same
        transaction with ``after`` = what was added (:func:`audit.numbers`, compact).

        ``expires_at`` (epoch seconds) makes the entries temporary. An entry already listed
        counts as added when this revives it (it had expired) or makes it last longer.
        ``field`` NAME: the patterns are caller-name rules (``value`` the stored rule).
        """
        ext_value = _scope_ext(scope, ext)
        added: list[Pattern] = []
        existing: list[Pattern] = []
        now = time.time()
        async with self._transaction() as db:
            if scope is Scope.EXTENSION:
                await self._ensure_extension(db, ext_value, self.account_id)
            for p in dict.fromkeys(patterns):  # dedupe within the batch, keep order
                changed = await db.execute(
                    _upsert(db.dialect),
                    (
                        self.account_id,
                        scope.value,
                        ext_value,
                        kind.value,
                        p.value,
                        int(p.prefix),
                        p.raw,
                        note,
                        now,
                        expires_at,
                        now,
                        field.value,
                    ),
                )
                (added if changed else existing).append(p)
            if audit is not None:
                after = _audit.numbers("added", added, "already_listed", existing)
                if field is Field.NAME:
                    after["field"] = field.value
                await _audit.write(db, self.account_id, replace(audit, after=after))
        return added, existing

    async def import_entries(
        self,
        scope: Scope,
        ext: str | None,
        kind: Kind,
        patterns: Iterable[Pattern],
        *,
        note: str = "",
        expires_at: float | None = None,
        dry_run: bool = False,
    ) -> ImportResult:
        """The bulk path for one list: like :meth:`add_entries` without the per-number lists
        (a million numbers in seconds: sorted rows, ``executemany``, one transaction)."""
        ext_value = _scope_ext(scope, ext)
        return await self.import_rows(
            (NewEntry(scope, ext_value, kind, p, note, expires_at) for p in patterns),
            dry_run=dry_run,
        )

    async def import_rows(
        self,
        rows: Iterable[NewEntry],
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
        audit: AuditEntry | None = None,
    ) -> ImportResult:
        """Add entries of any lists, all or nothing (``dry_run``: count, then roll back).

        ``progress(n)`` is called after each chunk of rows written. ``audit`` is written in the
        same transaction with the counts added to its ``after`` (one row per import, not per
        number).
        """
        now = time.time()
        scopes = {sc: sc.value for sc in Scope}  # enum .value is slow a million times over
        kinds = {k: k.value for k in Kind}
        params = [
            (
                self.account_id,
                scopes[r.scope],
                r.ext,
                kinds[r.kind],
                r.pattern.value,
                1 if r.pattern.prefix else 0,
                r.pattern.raw,
                r.note,
                now,
                r.expires_at,
                now,
                r.field.value,
            )
            for r in rows
        ]
        lists = {(p[1], p[2]) for p in params}
        for scope, ext in lists:
            if scope == Scope.EXTENSION.value:
                check_ext(ext)
            elif ext:
                raise InvalidInput("an account entry has no extension")
        # Number order is entries_key order: the inserts append instead of landing on random
        # pages. The sort is stable, so of repeated rows the first in the input is kept.
        params.sort(key=itemgetter(4))
        unique = _first_of_each(params)
        exts = sorted(ext for scope, ext in lists if scope == Scope.EXTENSION.value)
        changed = 0
        async with self._transaction(rollback=dry_run) as db:
            sqlite = db.dialect.name == "sqlite"
            if sqlite and len(unique) > 10_000:  # a bigger page cache for the index inserts
                await db.execute(f"PRAGMA cache_size=-{int(IMPORT_CACHE_KIB)}")
            before = await self._count(db, self.account_id)
            for ext in exts:
                await self._ensure_extension(db, ext, self.account_id)
            for start in range(0, len(unique), IMPORT_CHUNK):
                changed += await _upsert_chunk(db, unique[start : start + IMPORT_CHUNK])
                if progress is not None:
                    progress(min(start + IMPORT_CHUNK, len(unique)))
            added = await self._count(db, self.account_id) - before
            if sqlite:
                await db.execute("PRAGMA cache_size=-2000")
            result = ImportResult(
                added=added,
                updated=changed - added,
                unchanged=len(unique) - changed,
                duplicates=len(params) - len(unique),
            )
            if audit is not None:
                after = {**(audit.after or {}), **asdict(result)}
                await _audit.write(db, self.account_id, replace(audit, after=after))
        return result

    @staticmethod
    async def _count(db: Conn, account_id: int) -> int:
        row = await db.fetchone("SELECT count(*) FROM entries WHERE account_id = ?", (account_id,))
        return int(row[0]) if row else 0

    async def remove_entries(
        self,
        scope: Scope,
        ext: str | None,
        kind: Kind,
        patterns: Iterable[Pattern],
        *,
        audit: AuditEntry | None = None,
        field: Field = Field.NUMBER,
    ) -> tuple[list[Pattern], list[Pattern]]:
        """Remove in one transaction. Returns (removed, not listed); ``audit`` as in
        :meth:`add_entries` (``after``: what was removed); ``field`` as there."""
        ext_value = _scope_ext(scope, ext)
        where, params = _where_list(self.account_id, scope, ext_value, kind)
        removed: list[Pattern] = []
        missing: list[Pattern] = []
        async with self._transaction() as db:
            for p in dict.fromkeys(patterns):
                gone = await db.execute(
                    f"DELETE FROM entries WHERE {where} AND value = ? AND prefix = ? AND field = ?",
                    (*params, p.value, int(p.prefix), field.value),
                )
                (removed if gone else missing).append(p)
            if audit is not None:
                after = _audit.numbers("removed", removed, "not_listed", missing)
                if field is Field.NAME:
                    after["field"] = field.value
                await _audit.write(db, self.account_id, replace(audit, after=after))
        return removed, missing

    async def list_entries(
        self,
        scope: Scope,
        ext: str | None,
        kind: Kind,
        *,
        limit: int | None = None,
        offset: int = 0,
        match: EntryFilter | None = None,
        after: int | None = None,
    ) -> list[ListedEntry]:
        """One page of a list, in number order (all of it without ``limit``).

        ``after`` (an entry id) starts the page right after that entry: an index seek, so the
        last page of a million entries costs what the first does (``offset`` has to step over
        every entry before it)."""
        entries = self.iter_entries(
            scope, ext, kind, limit=limit, offset=offset, match=match, after=after
        )
        return [e async for e in entries]

    async def iter_entries(
        self,
        scope: Scope | None = None,
        ext: str | None = None,
        kind: Kind | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        chunk: int = 5000,
        match: EntryFilter | None = None,
        after: int | None = None,
        field: Field | None = None,
    ) -> AsyncGenerator[ListedEntry, None]:
        """Stream entries (``scope``/``kind`` None: every list) in list then number order,
        ``chunk`` rows per read: a million entries never sit in memory at once. ``field``:
        only numbers (as an export writes) or only name rules; None: both."""
        where, params = _where_entries(
            self.dialect, self.account_id, scope, ext, kind, match, field
        )
        if after is not None:  # keyset: (value, id) after that entry's, along the index
            where += " AND (value, id) > ((SELECT value FROM entries WHERE id = ?), ?)"
            params += [int(after), int(after)]
        # ORDER BY ... value, id follows the entries_list index: no sort, rows stream.
        sql = (
            f"SELECT {_LISTED_COLUMNS} FROM entries WHERE {where} "
            "ORDER BY scope, ext, kind, value, id LIMIT ? OFFSET ?"
        )
        params += [self.dialect.no_limit if limit is None else int(limit), int(offset)]
        async for r in self.conn.stream(sql, params, chunk):
            yield _listed(r)

    async def count_entries(
        self,
        scope: Scope | None = None,
        ext: str | None = None,
        kind: Kind | None = None,
        match: EntryFilter | None = None,
    ) -> int:
        if match is None and scope is not None and kind is not None:
            # One list's size, kept by triggers (migration 0007): a lookup, not a count.
            rows = await self._fetchall(
                "SELECT n FROM list_sizes WHERE account_id = ? AND scope = ? AND ext = ? "
                "AND kind = ?",
                (self.account_id, scope.value, _scope_ext(scope, ext), kind.value),
            )
            return int(rows[0][0]) if rows else 0
        where, params = _where_entries(self.dialect, self.account_id, scope, ext, kind, match)
        rows = await self._fetchall(f"SELECT count(*) FROM entries WHERE {where}", params)
        return int(rows[0][0])
