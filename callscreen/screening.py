"""The per-call path, top to bottom: env -> lookup -> decide -> set variables -> treat -> log."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Final

from . import blocklast, logfmt, policy, treatments
from . import challenged as challenged_call
from .challenge import ChallengeConfig
from .db.errors import StoreError, UnknownAccount
from .db.lookup import DEFAULT_ACCOUNT, Lookup
from .db.pglookup import PgLookup
from .db.recorder import Recorder
from .db.store import CallRecord, Store
from .fastagi import AgiSession, Reply
from .metrics import Metrics
from .numbers import DEFAULT_REGION, Caller, caller_from
from .policy import (
    FAIL_OPEN,
    AccountSettings,
    Decision,
    ExtensionSettings,
    Treatment,
)
from .treatments import ROUTINE_PLAYS_BUSY as ROUTINE_PLAYS_BUSY
from .treatments import TreatmentConfig, routine_plays_busy
from .treatments import channel_variables as channel_variables  # the routine's contract

log = logging.getLogger("callscreen.calls")

#: The AGI script path the shipped dialplan calls: agi://host:port/screen
ROUTE_SCREEN: Final = "screen"
#: The *32 feature code: agi://host:port/block-last,EXT (see callscreen.blocklast)
ROUTE_BLOCK_LAST: Final = blocklast.ROUTE_BLOCK_LAST
#: Extensions whose last caller is kept in memory for block-last (then the oldest is dropped).
MAX_REMEMBERED: Final = 100_000


def extension_of(env: Mapping[str, str]) -> str:
    """The dialed extension: the first AGI() argument, else the dialplan's ${EXTEN}."""
    return (env.get("agi_arg_1") or env.get("agi_extension") or "").strip()


def account_of(env: Mapping[str, str]) -> str:
    """The account (tenant) the call belongs to: the second AGI() argument, else the default
    account (a dialplan from before accounts existed sends none)."""
    return (env.get("agi_arg_2") or "").strip() or DEFAULT_ACCOUNT


def caller_of(env: Mapping[str, str], region: str = DEFAULT_REGION) -> Caller:
    """The caller: number, presentation, and the name (``agi_calleridname``) for name rules."""
    return caller_from(
        env.get("agi_callerid", ""),
        env.get("agi_callingpres"),
        region,
        env.get("agi_calleridname"),
    )


#: The outcome of a Busy decision handed to the routine (it runs ``Busy()`` after the AGI).
HANDED_BUSY: Final = "busy"

#: The call-log account of a call whose account does not exist: no row (the warning says it).
NO_ACCOUNT: Final = 0


def decide(
    lookup: Lookup, ext: str, caller: Caller, account_name: str = DEFAULT_ACCOUNT
) -> tuple[AccountSettings, ExtensionSettings, Decision]:
    """The decision for one call, read fresh from the store (raises StoreError)."""
    account, settings, entries = lookup.read(ext, caller.e164, caller.name, account_name)
    return account, settings, policy.decide(account, settings, caller, entries)


class Screener:
    """The FastAGI handler: one call per :meth:`__call__`."""

    def __init__(
        self,
        lookup: Lookup | PgLookup,
        recorder: Recorder | None = None,
        *,
        region: str = DEFAULT_REGION,
        treatment_config: TreatmentConfig | None = None,
        challenge_config: ChallengeConfig | None = None,
        store: Store | None = None,
    ) -> None:
        self.lookup = lookup
        self.recorder = recorder
        self.region = region
        self.treatment_config = treatment_config or TreatmentConfig()
        self.challenge_config = challenge_config or ChallengeConfig()
        self.decision_errors = 0
        self.store = store or (recorder.store if recorder is not None else None)
        self.metrics = Metrics()
        #: The batched writer of the per-call lines (callscreen.logfmt.call_lines); None: log
        #: them through the logging module.
        self.call_lines: logfmt.CallLines | None = None
        #: (account, ext) -> (time, caller) of the newest call that got through: block-last
        #: must see a call before the batched call-log write does.
        self.last_callers: dict[tuple[str, str], tuple[float, Caller]] = {}

    def __call__(self, session: AgiSession) -> Awaitable[None] | None:
        """Route one connection (see :data:`callscreen.fastagi.server.Handler`)."""
        script = session.script
        if script == ROUTE_SCREEN:
            return self.screen(session)
        if script == ROUTE_BLOCK_LAST:
            return self._block_last(session)
        # Not ours to judge: close without a result; the shipped routine lets it through.
        log.warning("unknown AGI script %r from %s: closing", script, session.peer)
        session.close()
        return None

    async def _block_last(self, session: AgiSession) -> None:
        self.metrics.blocked_last(await blocklast.handle(session, self.store, self.last_callers))

    def _decide(
        self, ext: str, caller: Caller, account: str
    ) -> tuple[AccountSettings, ExtensionSettings, Decision]:
        if not ext:
            log.warning(
                "call from %s with no extension (agi_arg_1/agi_extension): fail open",
                caller.display,
            )
            return self._no_settings(account), ExtensionSettings(ext), FAIL_OPEN
        try:
            return decide(self.lookup, ext, caller, account)  # type: ignore[arg-type]
        except StoreError as exc:
            return self._failed(exc, ext, caller, account)

    async def _decide_later(
        self, ext: str, caller: Caller, account: str
    ) -> tuple[AccountSettings, ExtensionSettings, Decision]:
        if not ext:
            return self._decide(ext, caller, account)
        try:
            a, s, entries = await self.lookup.fetch(ext, caller.e164, caller.name, account)
        except StoreError as exc:
            return self._failed(exc, ext, caller, account)
        return a, s, policy.decide(a, s, caller, entries)

    def _failed(
        self, exc: StoreError, ext: str, caller: Caller, account: str
    ) -> tuple[AccountSettings, ExtensionSettings, Decision]:
        """The call fails open: an account that does not exist, or a store that failed."""
        if isinstance(exc, UnknownAccount):
            self.metrics.unknown_account()
            log.warning("call to %s from %s: %s, fail open", ext, caller.display, exc)
            return AccountSettings(account_id=NO_ACCOUNT), ExtensionSettings(ext), FAIL_OPEN
        self.decision_errors += 1
        log.error("call to %s from %s: store error, fail open: %s", ext, caller.display, exc)
        return self._no_settings(account), ExtensionSettings(ext), FAIL_OPEN

    def _no_settings(self, account: str) -> AccountSettings:
        """Defaults for a call that failed open, carrying the account's id if it is known
        (for its call-log row)."""
        return AccountSettings(account_id=self.lookup.account_id(account) or NO_ACCOUNT)

    def screen(self, session: AgiSession) -> Awaitable[None] | None:
        """Decide, then set the variables; a blocked call goes on to its treatment.

        The decision is synchronous (no awaits), and an allowed call needs one command and a
        close: it is finished from the reply callback, without a task. Only a treatment is a
        conversation, run as a coroutine.
        """
        started = time.time()
        env = session.env
        ext = extension_of(env)
        caller = caller_of(env, self.region)
        name = account_of(env)
        if not self.lookup.sync:
            return self._screen_later(session, started, name, ext, caller)
        t0 = time.perf_counter()
        account, settings, decision = self._decide(ext, caller, name)
        self.metrics.call(decision, time.perf_counter() - t0)
        return self._act(session, started, name, ext, caller, account, settings, decision)

    async def _screen_later(
        self, session: AgiSession, started: float, name: str, ext: str, caller: Caller
    ) -> None:
        """:meth:`screen` with a lookup that is awaited (PostgreSQL: a network round trip)."""
        t0 = time.perf_counter()
        account, settings, decision = await self._decide_later(ext, caller, name)
        self.metrics.call(decision, time.perf_counter() - t0)
        variables = channel_variables(decision)
        aid = (account.account_id, name)  # the call log's account, the log line's name
        # The same steps as _act's, as awaits: this coroutine is the conversation (the
        # server closes the connection when it returns, so no reply may be left to a callback).
        if decision.treatment is Treatment.CHALLENGE:
            await self._challenge(session, started, name, ext, caller, account, settings, decision)
        elif decision.treatment is Treatment.BUSY and routine_plays_busy(session.env):
            variables = channel_variables(decision, ROUTINE_PLAYS_BUSY)
            outcome = "no-result"
            try:
                reply = await session.exec("MSet", variables)
                outcome = self.set_failed(session, reply) or HANDED_BUSY
            finally:
                session.close()
                self.finish(session, started, aid, ext, caller, decision, outcome)
        elif decision.treatment is not None:
            await self._treat(session, started, aid, ext, caller, settings, decision, variables)
        else:
            self.got_through(started, name, ext, caller)
            outcome = "no-result"
            try:
                outcome = self.set_failed(session, await session.exec("MSet", variables))
            finally:
                session.close()
                self.finish(session, started, aid, ext, caller, decision, outcome)

    def _act(
        self,
        session: AgiSession,
        started: float,
        name: str,
        ext: str,
        caller: Caller,
        account: AccountSettings,
        settings: ExtensionSettings,
        decision: Decision,
    ) -> Awaitable[None] | None:
        """Set the variables and run the treatment of a decided call."""
        variables = channel_variables(decision)
        aid = (account.account_id, name)  # the call log's account, the log line's name
        if decision.treatment is None:
            self.got_through(started, name, ext, caller)

            def done(reply: Reply | None) -> None:
                outcome = self.set_failed(session, reply)
                self.finish(session, started, aid, ext, caller, decision, outcome)

            session.send_then_close("EXEC MSet", variables, done=done)
            return None
        if decision.treatment is Treatment.BUSY:
            if routine_plays_busy(session.env):  # MSet and close, like an allowed call
                variables = channel_variables(decision, ROUTINE_PLAYS_BUSY)

                def handed(reply: Reply | None) -> None:
                    outcome = self.set_failed(session, reply) or HANDED_BUSY
                    self.finish(session, started, aid, ext, caller, decision, outcome)

                session.send_then_close("EXEC MSet", variables, done=handed)
                return None
            self._busy(session, started, aid, ext, caller, decision, variables)
            return None
        if decision.treatment is Treatment.CHALLENGE:
            return self._challenge(session, started, name, ext, caller, account, settings, decision)
        return self._treat(session, started, aid, ext, caller, settings, decision, variables)

    def got_through(self, started: float, account: str, ext: str, caller: Caller) -> None:
        """Remember the newest caller who reached ``ext`` of ``account``: the one *32 blocks."""
        if ext:
            last = self.last_callers
            key = (account, ext)
            if len(last) >= MAX_REMEMBERED and key not in last:
                del last[next(iter(last))]
            last[key] = (started, caller)

    def _busy(
        self,
        session: AgiSession,
        started: float,
        account_id: tuple[int, str],
        ext: str,
        caller: Caller,
        decision: Decision,
        variables: str,
    ) -> None:
        """The blocked path most calls take (issue #16): ``MSet``, ``EXEC Busy``, close, as two
        reply callbacks like an allowed call's one: no task, no coroutine, no future. The same
        steps as :meth:`_treat` with :func:`treatments.busy` (an unanswered channel)."""
        call = _BusyCall(self, session, started, account_id, ext, caller, decision)
        session.send_then("EXEC MSet", variables, done=call.set_done)

    def _challenge(
        self,
        session: AgiSession,
        started: float,
        name: str,
        ext: str,
        caller: Caller,
        account: AccountSettings,
        settings: ExtensionSettings,
        challenged: Decision,
    ) -> Awaitable[None]:
        """The conversation of a challenged call (:func:`callscreen.challenged.screen`)."""
        return challenged_call.screen(
            self, session, started, name, ext, caller, account, settings, challenged
        )

    async def _treat(
        self,
        session: AgiSession,
        started: float,
        account_id: tuple[int, str],
        ext: str,
        caller: Caller,
        settings: ExtensionSettings,
        decision: Decision,
        variables: str,
    ) -> None:
        outcome = ""
        try:
            reply = await session.exec("MSet", variables)
            # If the dialplan cannot learn the decision it lets the caller through after any
            # treatment anyway: close at once (fail open).
            outcome = self.set_failed(session, reply)
            if not outcome and decision.treatment is not None and not session.hung_up:
                outcome = await treatments.run(
                    decision.treatment, session, settings.voicemail_box, self.treatment_config
                )
        finally:
            session.close()
            self.finish(session, started, account_id, ext, caller, decision, outcome)

    @staticmethod
    def set_failed(session: AgiSession, reply: Reply | None) -> str:
        """'' if the variables were set, else the outcome to log."""
        if reply is not None and reply.ok:
            return ""
        log.warning(
            "%s: setting the result failed: %s", session.peer, reply.text if reply else "no reply"
        )
        return "no-result"

    def finish(
        self,
        session: AgiSession,
        started: float,
        account: tuple[int, str],
        ext: str,
        caller: Caller,
        decision: Decision,
        outcome: str,
    ) -> None:
        """The call is over: log it and queue its call-log row (none for a call to an account
        that does not exist: its warning line is the record).

        The caller's number and name go to the log and the call log as sent: the log formatter
        and every reader show them inertly (callscreen.inert), the store bounds their length.
        """
        name = session.env.get("agi_calleridname")
        outcome = outcome or ("hangup" if session.hung_up else "")
        account_id, account_name = account
        self._log(started, ext, caller, name, account_name, decision, outcome, self.call_lines)
        if self.recorder is not None and account_id:
            # Positional: a keyword call to a dataclass builds a dict of the arguments first.
            self.recorder.record(
                CallRecord(
                    started,
                    ext,
                    caller.raw,
                    caller.e164,
                    # str(): a StrEnum's text, in C (``.value`` is a Python property).
                    str(decision.result),
                    str(decision.reason),
                    str(decision.treatment) if decision.treatment else None,
                    decision.entry.id if decision.entry else None,
                    time.time() - started,
                    session.env.get("agi_uniqueid"),
                    name,
                    account_id,
                )
            )

    @staticmethod
    def _log(
        started: float,
        ext: str,
        caller: Caller,
        name: str | None,
        account: str,
        d: Decision,
        outcome: str,
        lines: logfmt.CallLines | None = None,
    ) -> None:
        """The per-call INFO line: batched by ``lines`` when given (:attr:`call_lines`, set
        by ``serve``), else through logging. The same fields either way
        (callscreen.logfmt.CALL_FIELDS)."""
        if lines is not None:
            now = time.time()
            entry = d.entry.pattern if d.entry else None
            lines.add(
                now,
                (
                    ext,
                    caller.display,
                    d.result,
                    d.reason,
                    d.treatment,
                    entry,
                    outcome or None,
                    (now - started) * 1000,
                    name,
                    account,
                ),
            )
        elif log.isEnabledFor(logging.INFO):
            ms = (time.time() - started) * 1000
            entry = d.entry.pattern if d.entry else None
            call = (ext, caller.display, d.result, d.reason, d.treatment, entry, outcome or None)
            log.info(
                logfmt.call_message((*call, ms, name, account)),
                # Fields for --log-format json (callscreen.logfmt.CALL_FIELDS).
                extra={"call": (*call, round(ms, 2), name, account)},
            )


class _BusyCall:
    """One call's Busy treatment as two reply callbacks (:meth:`Screener._busy`).

    An object rather than two nested functions: compiled (mypyc), nested functions that name
    each other share one environment object that holds them both, a reference cycle that left
    every blocked call's objects to the garbage collector."""

    __slots__ = ("account_id", "caller", "decision", "ext", "screener", "session", "started")

    def __init__(
        self,
        screener: Screener,
        session: AgiSession,
        started: float,
        account_id: tuple[int, str],
        ext: str,
        caller: Caller,
        decision: Decision,
    ) -> None:
        self.screener = screener
        self.session = session
        self.started = started
        self.account_id = account_id
        self.ext = ext
        self.caller = caller
        self.decision = decision

    def set_done(self, reply: Reply | None) -> None:
        session = self.session
        outcome = self.screener.set_failed(session, reply)
        if outcome or session.hung_up or session.closed:
            session.close()  # fail open / the caller is gone: hand the channel back
            self.finish(outcome)
            return
        session.send_then(
            "EXEC Busy",
            done=self.busy_done,
            timeout=self.screener.treatment_config.busy_timeout,
            close=True,
        )

    def busy_done(self, reply: Reply | None) -> None:  # the connection is closed
        self.finish("" if reply is None else "busy")

    def finish(self, outcome: str) -> None:
        self.screener.finish(
            self.session,
            self.started,
            self.account_id,
            self.ext,
            self.caller,
            self.decision,
            outcome,
        )
