"""The call log in the store: the batched writer's rows and hit counts, and the reads of the
recent calls and of the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import audit as _audit
from .audit import AuditRow
from .callrecord import INSERT_SQL
from .callrecord import CallRecord as CallRecord  # re-exported: the store's row type
from .connection import StoreBase
from .reports import CALLS_SQL, LoggedCall
from .validate import check_ext

_CALL_COLUMNS = (
    "time, ext, caller_raw, caller_e164, result, reason, treatment, entry_id, duration, uniqueid, "
    "caller_name"
)


class CallLogMixin(StoreBase):
    # -- call log and counters (the server's batched writer calls these) ---------------------
    async def write_calls(
        self, calls: Sequence[CallRecord], hits: dict[int, tuple[int, float]]
    ) -> None:
        """Append call-log rows and add hit counts ({entry id: (count, last time)}), atomically.

        The caller's number and name (and the extension and uniqueid, also as Asterisk sent
        them) are kept as sent but bounded (:func:`inert.bound`: at most 256 characters, the
        cut marked, :meth:`CallRecord.insert_row`): in the batched writer, off the call path.
        """
        async with self._transaction() as db:
            await db.pipeline(INSERT_SQL, [c.insert_row() for c in calls])
            await db.pipeline(
                f"UPDATE entries SET hits = hits + ?, last_hit = {db.dialect.greatest}"
                "(coalesce(last_hit, 0), ?) "
                "WHERE id = ?",
                [(n, last, entry_id) for entry_id, (n, last) in hits.items()],
            )

    async def recent_calls(
        self, *, ext: str | None = None, result: str | None = None, limit: int = 50
    ) -> list[CallRecord]:
        """The newest calls first (by the time each call came in)."""
        sql = f"SELECT {_CALL_COLUMNS} FROM call_log WHERE account_id = ?"
        params: list[Any] = [self.account_id]
        if ext is not None:
            sql += " AND ext = ?"
            params.append(ext)
        if result is not None:
            sql += " AND result = ?"
            params.append(result)
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return [CallRecord(*r) for r in await self._fetchall(sql, params)]

    async def last_caller(self, ext: str) -> CallRecord | None:
        """The most recent call to ``ext`` that got through (rang the phone), or None."""
        calls = await self.recent_calls(ext=check_ext(ext), result="ALLOWED", limit=1)
        return calls[0] if calls else None

    async def logged_calls(self, ext: str, *, limit: int = 50) -> list[LoggedCall]:
        """The newest calls to ``ext`` first, as ``log`` shows them (with the matched entry)."""
        sql = f"{CALLS_SQL} AND c.ext = ? ORDER BY c.time DESC, c.id DESC LIMIT ?"
        rows = await self._fetchall(sql, (self.account_id, check_ext(ext), int(limit)))
        return [LoggedCall(*r) for r in rows]

    # -- retention (``serve --log-retention``, ``log prune``) ----------------------------------
    async def prune_calls(
        self, before: float, limit: int, *, audit: _audit.AuditEntry | None = None
    ) -> int:
        """Delete up to ``limit`` call-log rows older than ``before`` (epoch seconds), oldest
        first, in one transaction; returns the rows deleted (fewer than ``limit``: done).

        One bounded transaction, not one DELETE of everything: SQLite has one writer at a
        time, and the server's call-log writer shares this Store's lock, so a batch holds it
        for milliseconds, never for the minutes a million rows take. The oldest rows are found
        on ``call_log_time`` (account_id, time, ...), which also carries the rowid.
        ``audit``: written in the same transaction (the CLI's prune, in its first batch).
        """
        async with self._transaction() as db:
            deleted = await db.execute(
                "DELETE FROM call_log WHERE id IN (SELECT id FROM call_log "
                "WHERE account_id = ? AND time < ? ORDER BY account_id, time LIMIT ?)",
                (self.account_id, float(before), int(limit)),
            )
            if audit is not None:
                await _audit.write(db, self.account_id, audit)
        return deleted

    async def count_calls_before(self, before: float) -> tuple[int, float | None]:
        """(rows older than ``before``, the oldest row's time or None): ``log prune
        --dry-run``; read from the covering time index only."""
        rows = await self._fetchall(
            "SELECT count(*), min(time) FROM call_log WHERE account_id = ? AND time < ?",
            (self.account_id, float(before)),
        )
        n, oldest = rows[0]
        return int(n), None if oldest is None else float(oldest)

    # -- the audit log -----------------------------------------------------------------------
    async def audit_log(
        self, *, since: float | None = None, limit: int = 100, before: int | None = None
    ) -> list[AuditRow]:
        """The newest changes first (``since``: epoch seconds, on the audit_time index).

        ``before`` (a row id, e.g. the last of the previous page) pages by keyset: the rows
        older than that one, so a page deep into a long log costs what the first does."""
        sql = f"SELECT {_audit.COLUMNS} FROM audit_log WHERE account_id = ?"
        params: list[Any] = [self.account_id]
        if since is not None:
            sql += " AND time >= ?"
            params.append(since)
        if before is not None:
            sql += " AND (time, id) < ((SELECT time FROM audit_log WHERE id = ?), ?)"
            params += [int(before), int(before)]
        sql += " ORDER BY time DESC, id DESC LIMIT ?"
        params.append(int(limit))
        return [_audit.row(r) for r in await self._fetchall(sql, params)]
