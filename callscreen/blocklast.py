"""The ``block-last`` AGI route: a user dials *32 to block the last caller to their extension.

``AGI(agi://host:port/block-last,EXT)`` where EXT is the user's own extension. The last caller
is the newest call to EXT that got through (a blocked caller never rang the phone), taken from
the screener's memory of recent calls and from the call log, whichever is newer: the call log
is written in batches, so a call a tenth of a second ago may not be in it yet.

The server answers with one ``MSet``: ``CALLSCREEN_BLOCK_STATUS`` is ``ADDED`` (now on EXT's
block list), ``ALREADY`` (it was), ``ANONYMOUS`` (the last caller had no number to block),
``NOCALLER`` (no call to EXT known) or ``ERROR``; ``CALLSCREEN_BLOCKED_NUMBER`` is the number
(E.164) for ADDED and ALREADY, else empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .db.audit import AuditEntry
from .db.errors import InvalidInput, StoreError, UnknownAccount
from .db.lookup import DEFAULT_ACCOUNT, MAX_ACCOUNT_NAME
from .db.store import Store, check_ext
from .fastagi import AgiSession
from .numbers import Caller, Pattern
from .policy import Kind, Scope

log = logging.getLogger("callscreen.calls")

ROUTE_BLOCK_LAST = "block-last"
NOTE = "*32: blocked by the user"

ADDED, ALREADY, ANONYMOUS, NOCALLER, ERROR = "ADDED", "ALREADY", "ANONYMOUS", "NOCALLER", "ERROR"
STATUSES = (ADDED, ALREADY, ANONYMOUS, NOCALLER, ERROR)


@dataclass(frozen=True, slots=True)
class LastCall:
    time: float
    raw: str
    e164: str | None


async def last_call(store: Store | None, ext: str, remembered: LastCall | None) -> LastCall | None:
    """The newer of the in-memory last caller and the call log's (raises StoreError)."""
    best = remembered
    if store is not None:
        row = await store.last_caller(ext)
        if row is not None and (best is None or row.time > best.time):
            best = LastCall(row.time, row.caller_raw, row.caller_e164)
    return best


async def block(
    store: Store, ext: str, last: LastCall | None, *, peer: str | None = None
) -> tuple[str, str]:
    """Put the last caller on EXT's block list; returns (status, number).

    A change by a person like any other, so it is audited (source ``phone``, the actor the
    extension dialed from, ``peer`` the Asterisk host that asked), in the same transaction.
    The audit writer is the store's (``db.audit``): nothing of ``ops`` on this path."""
    if last is None:
        return NOCALLER, ""
    if last.e164 is None:
        return ANONYMOUS, ""
    pattern = Pattern(last.e164, False, last.raw.strip() or last.e164)
    audit = AuditEntry(f"ext:{ext}", "phone", "block.last", f"ext:{ext}", ip=peer)
    added, _ = await store.add_entries(
        Scope.EXTENSION, ext, Kind.BLOCK, [pattern], NOTE, audit=audit
    )
    return (ADDED if added else ALREADY), last.e164


async def handle(
    session: AgiSession,
    store: Store | None,
    remembered: dict[tuple[str, str], tuple[float, Caller]],
) -> str:
    """Serve one *32 request (``block-last,EXT[,ACCOUNT]``); returns the status."""
    args = session.args
    ext = args[0].strip() if args else ""
    account = (args[1].strip() if len(args) > 1 else "") or DEFAULT_ACCOUNT
    account = account[: MAX_ACCOUNT_NAME + 1]  # from outside: bounded (longer is no account)
    status, number = ERROR, ""
    try:
        if store is None:
            raise StoreError("no store")
        check_ext(ext)
        account_id = await store.account_id_of(account)
        if account_id is None:
            raise UnknownAccount(account)
        store = store.scoped(account_id, account)
        mem = remembered.get((account, ext))
        last = await last_call(
            store, ext, LastCall(mem[0], mem[1].raw, mem[1].e164) if mem else None
        )
        host = session.peer.rsplit(":", 1)[0]
        status, number = await block(store, ext, last, peer=host if host not in ("", "?") else None)
    except InvalidInput:
        log.warning("block-last from %s: no valid extension in the request (%r)", session.peer, ext)
    except UnknownAccount as exc:
        log.warning("block-last for %s: %s", ext, exc)
    except StoreError as exc:
        log.error("block-last for %s: store error: %s", ext, exc)
    log.info("block-last for %s: %s %s", ext or "?", status, number)
    if not session.hung_up:
        await session.exec(
            "MSet", f"CALLSCREEN_BLOCK_STATUS={status},CALLSCREEN_BLOCKED_NUMBER={number}"
        )
    return status
