"""Read-only reports over the call log: ``log`` (newest first, or tailed) and ``stats``.

Synchronous (the CLI is, and these are reads): plain ``sqlite3`` on SQLite, the asyncpg driver
on a private loop on PostgreSQL (:mod:`callscreen.db.reportdb`). On SQLite ``stats`` reads only the
covering index ``call_log_time`` (migration 0004), never the table: on a million call-log
rows about 0.3 s for one extension or a week, about 1.5 s for all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UnknownAccount
from .reportdb import ReportDb, open_reports
from .url import Database


@dataclass(frozen=True, slots=True)
class LoggedCall:
    id: int
    time: float
    ext: str
    caller_raw: str
    caller_e164: str | None
    result: str
    reason: str
    treatment: str | None
    entry_id: int | None
    entry: str | None  # the matched entry's pattern, None if none (or since removed)
    duration: float
    uniqueid: str | None
    caller_name: str | None  # agi_calleridname as sent, bounded (None before migration 0005)


#: An entry as the reports show it: ``+1900*``, or ``name: scam likely`` for a name rule.
_PATTERN = (
    "CASE WHEN field = 'name' THEN 'name: ' || value "
    "ELSE value || CASE WHEN prefix = 1 THEN '*' ELSE '' END END"
)

CALLS_SQL = (
    "SELECT c.id, c.time, c.ext, c.caller_raw, c.caller_e164, c.result, c.reason, c.treatment, "
    "c.entry_id, CASE WHEN e.field = 'name' THEN 'name: ' || e.value ELSE e.value || "
    "CASE WHEN e.prefix = 1 THEN '*' ELSE '' END END, c.duration, c.uniqueid, "
    "c.caller_name "
    "FROM call_log c LEFT JOIN entries e ON e.id = c.entry_id WHERE c.account_id = ?"
)


def open_db(db: Database) -> ReportDb:
    """A connection for reports (creates and migrates the database like every command)."""
    return open_reports(db)


def resolve_account(conn: ReportDb, name: str) -> int:
    """The id of the account named ``name`` (what every report below is scoped to); an
    unknown name raises :class:`UnknownAccount`."""
    rows = _query(conn, "SELECT id FROM accounts WHERE name = ?", [name])
    if not rows:
        raise UnknownAccount(name)
    return int(rows[0][0])


def _filters(
    ext: str | None, result: str | None, since: float | None, prefix: str = ""
) -> tuple[str, list[Any]]:
    sql = ""
    params: list[Any] = []
    if ext is not None:
        sql += f" AND {prefix}ext = ?"
        params.append(ext)
    if result is not None:
        sql += f" AND {prefix}result = ?"
        params.append(result)
    if since is not None:
        sql += f" AND {prefix}time >= ?"
        params.append(since)
    return sql, params


def _query(conn: ReportDb, sql: str, params: list[Any]) -> list[Any]:
    return list(conn.rows(sql, params))


def recent(
    conn: ReportDb,
    *,
    account_id: int,
    ext: str | None = None,
    result: str | None = None,
    since: float | None = None,
    limit: int = 50,
) -> Iterator[LoggedCall]:
    """The newest calls first (by the time each call came in), read as they are consumed."""
    where, params = _filters(ext, result, since, "c.")
    sql = f"{CALLS_SQL}{where} ORDER BY c.time DESC, c.id DESC LIMIT ?"
    for row in conn.rows(sql, [account_id, *params, int(limit)]):
        yield LoggedCall(*row)


def last_id(conn: ReportDb) -> int:
    return int(_query(conn, "SELECT coalesce(max(id), 0) FROM call_log", [])[0][0])


def newer(
    conn: ReportDb,
    after: int,
    *,
    account_id: int,
    ext: str | None = None,
    result: str | None = None,
    since: float | None = None,
) -> tuple[list[LoggedCall], int]:
    """Rows written after row id ``after`` (in write order) and the id to poll after next."""
    upto = last_id(conn)
    if upto <= after:
        return [], after
    where, params = _filters(ext, result, since, "c.")
    sql = f"{CALLS_SQL} AND c.id > ? AND c.id <= ?{where} ORDER BY c.id"
    rows = _query(conn, sql, [account_id, after, upto, *params])
    return [LoggedCall(*r) for r in rows], upto


def stats(
    conn: ReportDb,
    *,
    account_id: int,
    ext: str | None = None,
    since: float | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Calls screened, blocked by reason and by treatment, the most blocked numbers, the
    entries that matched (calls, last call) in the window, and the entries that never did."""
    where, params = _filters(ext, None, since)
    groups = _query(
        conn,
        "SELECT result, reason, treatment, entry_id, count(*), max(time) FROM call_log "
        f"WHERE account_id = ?{where} GROUP BY result, reason, treatment, entry_id",
        [account_id, *params],
    )
    calls = {"ALLOWED": 0, "BLOCKED": 0}
    reasons: dict[str, dict[str, int]] = {"ALLOWED": {}, "BLOCKED": {}}
    treatments: dict[str, int] = {}
    per_entry: dict[int, list[float]] = {}
    for result, reason, treatment, entry_id, n, last in groups:
        calls[result] = calls.get(result, 0) + n
        by = reasons.setdefault(result, {})
        by[reason] = by.get(reason, 0) + n
        if result == "BLOCKED" and treatment:
            treatments[treatment] = treatments.get(treatment, 0) + n
        if entry_id is not None:
            hit = per_entry.setdefault(entry_id, [0, 0.0])
            hit[0] += n
            hit[1] = max(hit[1], last)
    numbers = _query(
        conn,
        "SELECT caller_e164, count(*) AS n, max(time) FROM call_log "
        f"WHERE account_id = ? AND result = 'BLOCKED'{where} "
        "GROUP BY caller_e164 ORDER BY n DESC, caller_e164 NULLS FIRST LIMIT ?",
        [account_id, *params, int(top)],
    )
    top_entries = sorted(per_entry.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    return {
        "calls": sum(calls.values()),
        "allowed": calls.get("ALLOWED", 0),
        "blocked": calls.get("BLOCKED", 0),
        "allowed_by_reason": _sorted(reasons.get("ALLOWED", {})),
        "blocked_by_reason": _sorted(reasons.get("BLOCKED", {})),
        "blocked_by_treatment": _sorted(treatments),
        "top_blocked_numbers": [
            {"number": number, "calls": n, "last": last} for number, n, last in numbers
        ],
        "entries_matched": len(per_entry),
        "top_entries": _describe(conn, top_entries),
        "never_matched": _never_matched(conn, account_id, ext, top),
    }


def _sorted(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _entry_info(conn: ReportDb, ids: list[int]) -> dict[int, tuple[Any, ...]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = _query(
        conn,
        f"SELECT id, scope, ext, kind, {_PATTERN}, "
        f"hits, expires_at FROM entries WHERE id IN ({marks})",
        ids,
    )
    return {r[0]: r[1:] for r in rows}


def _describe(conn: ReportDb, hits: list[tuple[int, list[float]]]) -> list[Any]:
    info = _entry_info(conn, [entry_id for entry_id, _ in hits])
    out = []
    for entry_id, (n, last) in hits:
        scope, ext, kind, pattern, total, expires = info.get(entry_id, (None,) * 6)
        out.append(
            {
                "id": entry_id,
                "pattern": pattern,  # None: the entry was removed since
                "scope": scope,
                "ext": ext or None,
                "kind": kind,
                "calls": int(n),
                "last": last,
                "hits_all_time": total,
                "expires": expires,
            }
        )
    return out


def _never_matched(conn: ReportDb, account_id: int, ext: str | None, top: int) -> dict[str, Any]:
    where = " AND hits = 0"
    params: list[Any] = [account_id]
    if ext is not None:
        where += " AND (scope = 'account' OR ext = ?)"
        params.append(ext)
    count = _query(conn, f"SELECT count(*) FROM entries WHERE account_id = ?{where}", params)
    rows = _query(
        conn,
        f"SELECT id, scope, ext, kind, {_PATTERN}, "
        f"created_at, expires_at FROM entries WHERE account_id = ?{where} "
        "ORDER BY created_at, id LIMIT ?",
        [*params, int(top)],
    )
    return {
        "count": int(count[0][0]),
        "oldest": [
            {
                "id": r[0],
                "scope": r[1],
                "ext": r[2] or None,
                "kind": r[3],
                "pattern": r[4],
                "created": r[5],
                "expires": r[6],
            }
            for r in rows
        ],
    }
