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

import aiosqlite

from .lookup import ACCOUNT_ID


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


async def write(db: aiosqlite.Connection, entry: AuditEntry) -> None:
    """Append ``entry``; call inside the change's own transaction (``Store._transaction``)."""
    await db.execute(
        "INSERT INTO audit_log (account_id, time, actor, source, ip, action, target, before, "
        "after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ACCOUNT_ID,
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
