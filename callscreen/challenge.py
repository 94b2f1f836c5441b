"""The challenge: "To call this number, press 7", run on the channel through the AGI session.

Robocallers rotate numbers and hide behind "anonymous"; a person can press a key. The server
answers, plays Asterisk's stock prompts ``to-call-this-number`` ("To call this number.") and
``vm-press`` ("press") and says a random digit, then waits for one key: twice at most, with
``please-try-again`` between. Only stock sounds and AGI's own commands (ANSWER, STREAM FILE,
SAY DIGITS, WAIT FOR DIGIT): nothing to record, no module beyond res_agi and the sounds.

Every step is bounded (the prompts, :attr:`ChallengeConfig.wait` per try, two tries), so a
caller who does nothing is done within about 20 s. A caller who hangs up is noticed on the reply
to the step in progress (-1, or the 511 of the next command) and the challenge ends at once: the
caller of :func:`run` closes the connection, which frees the channel.

The challenge is the one treatment that leaves the call going to Dial, so the screener sets
``CALLSCREEN_RESULT`` only *after* it: if the server dies mid-challenge, the variable is unset
and the shipped routine lets the call through (fail open).
"""

from __future__ import annotations

import enum
import logging
import secrets
from dataclasses import dataclass

from .fastagi import AgiSession, Reply

log = logging.getLogger("callscreen.treatments")

#: Stock prompts (asterisk-core-sounds-en): what the caller hears, in order.
PROMPT = ("to-call-this-number", "vm-press")
RETRY = "please-try-again"
#: Keys that stop a prompt: the caller may press as soon as they hear the digit.
KEYS = "0123456789*#"


class Outcome(enum.StrEnum):
    PASSED = "passed"
    WRONG_DIGIT = "wrong-digit"
    NO_DIGIT = "no-digit"
    HANGUP = "hangup"
    #: A prompt could not be played (sounds missing, a 5xx reply): the caller cannot know the
    #: digit, so the call is let through unscreened instead of failed.
    ERROR = "error"


@dataclass(frozen=True)
class ChallengeConfig:
    tries: int = 2
    wait: float = 5.0  # seconds for the key after the digit was said


class _Gone(Exception):
    """The caller hung up."""


class _Broken(Exception):
    """Asterisk could not do what we asked (no such sound, an error reply)."""


async def _step(session: AgiSession, verb: str, *args: str, timeout: float | None = None) -> str:
    """One command that may collect a key: the key pressed, or "" for none."""
    reply = await session.send(verb, *args, timeout=timeout)
    if session.hung_up:
        raise _Gone
    if not reply.ok or reply.result is None:
        raise _Broken(f"{verb}: {reply.text.strip()}")
    if reply.result == -1:
        await _hung_up_or_broken(session, verb, reply)
    return chr(reply.result) if reply.result > 0 else ""


async def _hung_up_or_broken(session: AgiSession, verb: str, reply: Reply) -> None:
    """-1 means "hung up" or "failed" (a sound file that does not exist). The out-of-band
    HANGUP comes before the reply to the next command: ask something a dead channel refuses
    (511) to tell the two apart."""
    await session.send("CHANNEL STATUS")
    if session.hung_up:
        raise _Gone
    raise _Broken(f"{verb}: {reply.text.strip()} on a live channel")


async def _ask(session: AgiSession, digit: str, config: ChallengeConfig, first: bool) -> str:
    """One try: the prompt and the digit, then the wait; the key pressed or ""."""
    if not first:
        await _step(session, "STREAM FILE", RETRY, "")
    for sound in PROMPT:
        # No keys stop the words before the digit: a key pressed then cannot be the answer.
        await _step(session, "STREAM FILE", sound, "")
    key = await _step(session, "SAY DIGITS", digit, KEYS)
    if key:
        return key
    ms = int(config.wait * 1000)
    return await _step(
        session, "WAIT FOR DIGIT", str(ms), timeout=config.wait + session.reply_timeout
    )


async def run(
    session: AgiSession, config: ChallengeConfig, digit: str | None = None
) -> tuple[Outcome, str]:
    """Answer and challenge the caller; returns the outcome and the digit asked for."""
    digit = digit or str(secrets.randbelow(10))
    outcome = Outcome.NO_DIGIT
    try:
        await _step(session, "ANSWER")
        for n in range(config.tries):
            key = await _ask(session, digit, config, first=n == 0)
            if key == digit:
                return Outcome.PASSED, digit
            outcome = Outcome.WRONG_DIGIT if key else Outcome.NO_DIGIT
    except _Gone:
        return Outcome.HANGUP, digit
    except _Broken as exc:
        log.error("challenge on %s could not run: %s", session.peer, exc)
        return Outcome.ERROR, digit
    return outcome, digit
