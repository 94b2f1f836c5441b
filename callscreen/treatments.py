"""What a blocked caller gets, run on the channel through the AGI session.

Each treatment returns as soon as the caller is gone (a HANGUP line, a -1 result, a 511 reply):
the caller of these functions closes the connection right after, which is what releases the
channel in Asterisk (it never closes the socket itself).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .fastagi import AgiSession
from .policy import Decision, Treatment

log = logging.getLogger("callscreen.treatments")


def channel_variables(decision: Decision, then: str | None = None) -> str:
    """``MSet`` data: every variable in one round trip. Values are our own fixed words.
    ``then``: what the routine is to run after the AGI (``CALLSCREEN_THEN``)."""
    out = f"CALLSCREEN_RESULT={decision.result},CALLSCREEN_REASON={decision.reason}"
    if decision.treatment is not None:
        out += f",CALLSCREEN_TREATMENT={decision.treatment}"
    if then is not None:
        out += f",CALLSCREEN_THEN={then}"
    return out


#: The routine's third AGI argument when it plays busy itself: then a Busy decision is only
#: the ``MSet`` (with ``CALLSCREEN_THEN=busy``) and the close, like an allowed call, and the
#: routine runs ``Busy()`` once the AGI returns. One round trip instead of two, the AGI
#: connection closed sooner (issue #16). A routine from before sends no such argument: the
#: server runs ``EXEC Busy`` itself, as it always did.
ROUTINE_PLAYS_BUSY: Final = "busy"


def routine_plays_busy(env: Mapping[str, str]) -> bool:
    """Whether the dialplan routine said it runs ``Busy()`` itself (``agi_arg_3``)."""
    return (env.get("agi_arg_3") or "").strip() == ROUTINE_PLAYS_BUSY


@dataclass(frozen=True)
class TreatmentConfig:
    torture_max: float = 3600.0  # seconds of endless ringing before we hang up
    torture_wait: int = 10  # seconds per Wait(); bounds how late a shutdown reaches a held call
    busy_timeout: float = 300.0  # Busy() waits for the caller to hang up (SIP: at once, 486)
    voicemail_timeout: float = 1800.0  # greeting + the longest message voicemail.conf allows
    #: Seconds of busy tone on an answered channel (after a failed challenge): there Busy() is
    #: only a tone, no cause 17, and would hold the line until the caller gives up.
    answered_busy: int = 5


async def busy(session: AgiSession, config: TreatmentConfig, *, answered: bool = False) -> None:
    """Busy() on an unanswered channel: hangup cause 17 (SIP 486); it always returns -1.
    ``answered``: a few seconds of busy tone, then the routine hangs up."""
    if answered:
        seconds = config.answered_busy
        await session.exec("Busy", str(seconds), timeout=seconds + session.reply_timeout)
    else:
        await session.exec("Busy", timeout=config.busy_timeout)


async def voicemail(
    session: AgiSession, mailbox: str, config: TreatmentConfig, *, answered: bool = False
) -> str:
    """VoiceMail with the unavailable greeting; busy if there is no such mailbox.

    VoiceMail answers the channel before it finds out the mailbox does not exist, and Busy on an
    answered channel is only a tone (no cause 17, and the caller pays for an answered call): so
    ask ``VM_INFO(box,exists)`` first (seen on Asterisk 22: ``200 result=1 (0)`` for no box).
    Returns what happened: ``left`` / ``no-mailbox-busy`` / ``failed-busy`` / ``failed``.
    """
    exists = await session.send("GET FULL VARIABLE", f"${{VM_INFO({mailbox},exists)}}")
    if exists.ok and exists.data == "0" and not session.hung_up:
        log.warning("no voicemail box %s: busy instead", mailbox)
        await busy(session, config, answered=answered)
        return "no-mailbox-busy"
    await session.exec("VoiceMail", f"{mailbox},u", timeout=config.voicemail_timeout)
    status = await session.get_variable("VMSTATUS")  # still allowed after a hangup
    if status == "FAILED":
        # The caller hung up during the greeting, or voicemail itself failed.
        log.warning("VoiceMail(%s) ended with VMSTATUS=FAILED", mailbox)
        if not session.hung_up:
            await busy(session, config, answered=answered)
            return "failed-busy"
        return "failed"
    return "left"


async def torture(session: AgiSession, config: TreatmentConfig) -> str:
    """Ringing, then Wait again and again: the caller hears ringing until they give up.

    Returns ``caller-hangup`` or ``max-reached`` (then we hang the channel up ourselves).
    """
    deadline = time.monotonic() + config.torture_max
    reply = await session.exec("Ringing")
    if session.hung_up or reply.result == -1:
        return "caller-hangup"
    session.holding = True
    try:
        while (left := deadline - time.monotonic()) > 0:
            wait = max(1, min(config.torture_wait, round(left)))
            reply = await session.exec("Wait", str(wait), timeout=wait + session.reply_timeout)
            if session.hung_up or reply.result == -1:
                return "caller-hangup"
    finally:
        session.holding = False
    await session.send("HANGUP")
    return "max-reached"


async def run(
    treatment: Treatment,
    session: AgiSession,
    mailbox: str,
    config: TreatmentConfig,
    *,
    answered: bool = False,
) -> str:
    """Run a blocked caller's treatment (or, ``answered``, a failed challenge's fallback);
    returns what happened."""
    if treatment is Treatment.BUSY:
        await busy(session, config, answered=answered)
        return "busy"
    if treatment is Treatment.VOICEMAIL:
        return await voicemail(session, mailbox, config, answered=answered)
    if treatment is Treatment.HANGUP:
        await session.send("HANGUP")
        return "hangup"
    if treatment is Treatment.TORTURE:
        return await torture(session, config)
    raise ValueError(f"not a treatment to run: {treatment}")
