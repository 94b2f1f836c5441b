"""A challenged call, from the screener's side: ask (:mod:`callscreen.challenge`), then set the
result and run the fallback, log the call, and remember a caller who passed.

Apart from :mod:`callscreen.screening` because it is a conversation of its own, rare next to
the one-command calls there, and interpreted: nothing here is on the hot path.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from . import challenge, policy, treatments
from .db.audit import AuditEntry
from .db.errors import StoreError
from .db.store import Store
from .fastagi import AgiSession
from .numbers import Caller, Pattern
from .policy import (
    FAIL_OPEN,
    AccountSettings,
    Decision,
    ExtensionSettings,
    Kind,
    Reason,
    Result,
    Scope,
)
from .timeutil import format_duration
from .treatments import channel_variables

if TYPE_CHECKING:
    from .screening import Screener

log = logging.getLogger("callscreen.calls")

#: The note on an allowlist entry added for a caller who passed the challenge.
REMEMBER_NOTE = "passed the challenge"


async def screen(
    screener: Screener,
    session: AgiSession,
    started: float,
    name: str,
    ext: str,
    caller: Caller,
    account: AccountSettings,
    settings: ExtensionSettings,
    challenged: Decision,
) -> None:
    """Challenge, then set the result: ALLOWED on to Dial, or BLOCKED and the fallback.

    Nothing is set before the challenge ends, so a server that dies meanwhile leaves
    CALLSCREEN_RESULT unset and the routine lets the call through."""
    decision, outcome = FAIL_OPEN, ""
    keep = 0.0
    try:
        result, _digit = await challenge.run(session, screener.challenge_config)
        screener.metrics.challenged(result.value)
        # "challenge anonymous passed": why the caller was asked, and how it went.
        outcome = f"challenge {challenged.reason} {result}"
        if result is challenge.Outcome.PASSED:
            decision = Decision(Result.ALLOWED, Reason.CHALLENGE_PASSED)
            screener.got_through(started, name, ext, caller)
            keep = policy.remember_for(account, settings) if caller.e164 else 0.0
        elif result is not challenge.Outcome.ERROR:
            fallback = policy.fallback_for(account, settings)
            decision = Decision(Result.BLOCKED, Reason.CHALLENGE_FAILED, fallback)
        reply = await session.exec("MSet", channel_variables(decision))
        if failed := screener.set_failed(session, reply):
            outcome += f", {failed}"
        elif decision.treatment is not None and not session.hung_up:
            done = await treatments.run(
                decision.treatment,
                session,
                settings.voicemail_box,
                screener.treatment_config,
                answered=True,
            )
            outcome += f", {done}"
    finally:
        session.close()
        screener.finish(
            session, started, (account.account_id, name), ext, caller, decision, outcome
        )
    if keep and screener.store is not None:
        await remember(screener.store, session, account.account_id, name, ext, caller, keep)


async def remember(
    store: Store,
    session: AgiSession,
    account_id: int,
    account: str,
    ext: str,
    caller: Caller,
    seconds: float,
) -> None:
    """Put a caller who passed on ``ext``'s allowlist for ``seconds`` (after the call was
    handed back: the write never delays it). Audited like *32's change."""
    if caller.e164 is None:
        return
    host = session.peer.rsplit(":", 1)[0]
    # The extension's own rule made the change, from a phone call (like *32's).
    audit = AuditEntry(
        f"ext:{ext}",
        "phone",
        "allow.remember",
        f"ext:{ext}",
        ip=host if host not in ("", "?") else None,
    )
    pattern = Pattern(caller.e164, False, caller.e164)
    try:
        await store.scoped(account_id, account).add_entries(
            Scope.EXTENSION,
            ext,
            Kind.ALLOW,
            [pattern],
            REMEMBER_NOTE,
            expires_at=float(round(time.time() + seconds)),
            audit=audit,
        )
    except StoreError as exc:
        log.error(
            "call to %s from %s passed the challenge; remembering failed: %s",
            ext,
            caller.display,
            exc,
        )
        return
    log.info(
        "call to %s from %s passed the challenge: allowed for %s",
        ext,
        caller.display,
        format_duration(seconds),
    )
