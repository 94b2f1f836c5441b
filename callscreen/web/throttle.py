"""Login throttling, in memory: failures per username and per client address.

After ``free`` failures in ``window`` seconds, each further attempt for that username (or from
that address) waits, doubling from ``base_delay`` up to ``max_delay``; once ``lock_after``
failures are counted the next attempt is refused, and so is every one for ``lock_for`` seconds,
even with the right password.

Why it cannot tell an attacker anything: the key is the username as typed, whether or not such
a user exists, so an unknown name is slowed and locked exactly like a real one, and the locked
answer is the same for both. An attempt counts as a failure the moment it starts (and is taken
back on success), so a burst of parallel guesses is counted before any of them finishes.

Addresses get higher limits than usernames: many honest users may share one NAT address. A
success clears the username's record, not the address's: otherwise an attacker with one valid
account could reset the address counter between guesses at another.

The table is bounded (``max_keys``, oldest dropped first), so a flood of made-up usernames
costs a fixed amount of memory. It lives in the ``callscreen web`` process: a restart forgets it
(the argon2 hash still makes each guess cost the attacker tens of milliseconds).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limits:
    free: int  # failures before attempts are slowed
    lock_after: int  # failures that lock the key


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    user: Limits = field(default_factory=lambda: Limits(free=5, lock_after=10))
    address: Limits = field(default_factory=lambda: Limits(free=20, lock_after=50))
    window: float = 15 * 60.0  # failures older than this are forgotten
    lock_for: float = 15 * 60.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_keys: int = 100_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one attempt: refuse it (``locked_for`` > 0), or wait ``delay`` first."""

    delay: float = 0.0
    locked_for: float = 0.0


@dataclass(slots=True)
class _Record:
    failures: list[float] = field(default_factory=list)  # times, oldest first
    locked_until: float = 0.0


class Throttle:
    def __init__(
        self, config: ThrottleConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or ThrottleConfig()
        self.clock = clock
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    @staticmethod
    def _keys(username: str, address: str | None) -> list[tuple[str, str]]:
        # casefold: "Alice" and "alice" are one target for a guesser, whatever the store says.
        keys = [("user", username.casefold()[:200])]
        if address:
            keys.append(("addr", address))
        return keys

    def _limits(self, key: tuple[str, str]) -> Limits:
        return self.config.user if key[0] == "user" else self.config.address

    def _record(self, key: tuple[str, str], now: float) -> _Record:
        rec = self._records.get(key)
        if rec is None:
            rec = self._records[key] = _Record()
            while len(self._records) > self.config.max_keys:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(key)
        horizon = now - self.config.window
        if rec.failures and rec.failures[0] <= horizon:
            rec.failures = [t for t in rec.failures if t > horizon]
        return rec

    def begin(self, username: str, address: str | None) -> Verdict:
        """Check an attempt and count it as a failure until :meth:`succeeded` says otherwise."""
        c = self.config
        now = self.clock()
        delay = 0.0
        locked = 0.0
        for key in self._keys(username, address):
            rec = self._record(key, now)
            limits = self._limits(key)
            if rec.locked_until > now:
                locked = max(locked, rec.locked_until - now)
                continue
            if len(rec.failures) >= limits.lock_after:
                # Locked from now; the count starts afresh when the lock ends.
                rec.locked_until = now + c.lock_for
                rec.failures.clear()
                locked = max(locked, c.lock_for)
                continue
            over = len(rec.failures) - limits.free
            if over >= 0:
                delay = max(delay, min(c.base_delay * 2**over, c.max_delay))
            rec.failures.append(now)
        if locked:
            return Verdict(locked_for=locked)
        return Verdict(delay=delay)

    def succeeded(self, username: str, address: str | None) -> None:
        """The password was right: forget the username's failures and take this attempt back
        from the address (its earlier failures stay)."""
        self._records.pop(("user", username.casefold()[:200]), None)
        if address and (rec := self._records.get(("addr", address))) and rec.failures:
            rec.failures.pop()

    def __len__(self) -> int:
        return len(self._records)
