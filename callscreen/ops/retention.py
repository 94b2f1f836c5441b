"""``log prune``: delete the call log older than a date, as a person's change (audited).

The server prunes by itself (``serve --log-retention``, :mod:`callscreen.db.retention`); this
is for an admin who wants less kept now, or runs with retention off and prunes from cron.
"""

from __future__ import annotations

import time
from typing import Any

from ..db.errors import InvalidInput
from ..db.retention import BATCH as BATCH
from ..db.retention import prune
from ..db.store import Store
from ..timeutil import iso, parse_since
from .actor import Actor, permit_admin
from .lists import audit_entry

#: Bound on ``--batch``: a transaction this big still ends in well under a second.
MAX_BATCH = 100_000


def cutoff(before: str, now: float | None = None) -> float:
    """``--before``: a date (UTC unless an offset) or a duration ago (``90d``). A time in the
    future is refused: it would delete the calls being logged now, surely a typo."""
    try:
        ts = parse_since(before, now)
    except ValueError as exc:
        raise InvalidInput(f"--before: {exc}") from None
    if ts > (time.time() if now is None else now):
        raise InvalidInput(f"--before: {before!r} is in the future (nothing would be kept)")
    return ts


async def log_prune(
    store: Store, actor: Actor, before: str, *, dry_run: bool = False, batch: int = BATCH
) -> dict[str, Any]:
    """Delete (or with ``dry_run`` count) the call-log rows older than ``before``, ``batch``
    rows per transaction -> ``{"before", "dry_run", "rows", "oldest", "batch"}``. One audit row
    (``log.prune``, target ``call_log``) in the first batch's transaction; none when nothing
    was older (nothing changed) or on a dry run."""
    ts = cutoff(before)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise InvalidInput(f"batch: expected 1 to {MAX_BATCH:,} rows")
    permit_admin(actor)
    count, oldest = await store.count_calls_before(ts)
    rows = count
    if not dry_run and count:
        entry = audit_entry(
            actor, "log.prune", "call_log", after={"before": iso(ts), "rows": count}
        )
        rows = await prune(store, ts, batch=batch, audit=entry)
    return {
        "before": iso(ts),
        "dry_run": dry_run,
        "rows": rows,
        "oldest": iso(oldest),
        "batch": batch,
    }
