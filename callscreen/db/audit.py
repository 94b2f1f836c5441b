"""The audit log: one row per change, written in the same transaction as the change.

A change and its audit row commit together or not at all: there is no change without its
record, and no record of a change that did not happen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .backends import Conn


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    source: str  # cli, api, portal, phone
    action: str  # block.add, ext.set, user.add, ...
    target: str = ""  # ext:101, account, user:alice
    before: Any = None  # JSON-able, or None
    after: Any = None
    ip: str | None = None
    time: float = 0.0  # set when written


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    time: float
    actor: str
    source: str
    ip: str | None
    action: str
    target: str
    before: Any
    after: Any


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


async def write(db: Conn, account_id: int, entry: AuditEntry) -> None:
    """Append ``entry`` to the audit log of account ``account_id``; call inside the change's
    own transaction (``Store._transaction``)."""
    await db.execute(
        "INSERT INTO audit_log (account_id, time, actor, source, ip, action, target, before, "
        "after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            account_id,
            entry.time or time.time(),
            entry.actor,
            entry.source,
            entry.ip,
            entry.action,
            entry.target,
            _dump(entry.before),
            _dump(entry.after),
        ),
    )


def row(r: Sequence[Any]) -> AuditRow:
    id_, t, actor, source, ip, action, target, before, after = r
    return AuditRow(
        int(id_),
        float(t),
        str(actor),
        str(source),
        ip,
        str(action),
        str(target),
        None if before is None else json.loads(before),
        None if after is None else json.loads(after),
    )


#: Columns for :func:`row`, newest first with ``ORDER BY time DESC, id DESC``.
COLUMNS = "id, time, actor, source, ip, action, target, before, after"


#: Numbers named in one audit row; a bigger batch records the first ones and the counts.
MAX_NUMBERS = 50


def numbers(done: str, done_items: Sequence[Any], other: str, other_items: Sequence[Any]) -> Any:
    """A list change's ``after``: the numbers changed and those that were not (as ``str``),
    compact for big batches (the first :data:`MAX_NUMBERS` of each and the counts)."""
    out: dict[str, Any] = {}
    for key, items in ((done, done_items), (other, other_items)):
        out[key] = [str(i) for i in items[:MAX_NUMBERS]]
        if len(items) > MAX_NUMBERS:
            out[f"{key}_count"] = len(items)
    return out


def settings(s: Any) -> dict[str, Any]:
    """Account or extension settings as a JSON-able dict (every field, enums as their value)."""
    fields = ("enabled", "anonymous", "treatment", "mailbox", "unknown", "remember", "fallback")
    out: dict[str, Any] = {}
    for f in fields:
        if hasattr(s, f):
            v = getattr(s, f)
            out[f] = getattr(v, "value", v)
    return out
