"""Call-log retention: delete rows older than ``serve --log-retention`` in small batches, in the
background, and ``log prune``'s loop.

The call log grows by a row a call, forever, unless something deletes old rows. Deleting a
million rows in one statement would hold SQLite's single write lock (and the CPU the server
screens on) for many seconds: the call-log writer would wait, and with a long enough wait
report ``call log writes failing``. So rows go in batches of :data:`BATCH` (one short
transaction each, oldest first on the time index), and between two batches the pruner sleeps
at least :data:`PAUSE_FACTOR` times as long as the batch took: it uses a bounded share of the
writer's time and of the CPU, however many rows are due. Measured in ``bench/prune.py``.

The server's pruner is housekeeping, like the recorder it must never take the server down or
slow a call: any exception is caught, logged once (ERROR when pruning starts failing, WARNING
when it works again), and the next run is simply tried later. It writes no audit row: the
audit log answers "who changed what", and an hourly row from the server itself would bury
the admins' changes; its work is in the server log (one INFO line per run that deleted rows)
and in ``callscreen_call_log_pruned_rows_total``. ``log prune`` (a person's change) audits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from .audit import AuditEntry
from .store import Store

log = logging.getLogger("callscreen.db")

#: Rows per transaction. A batch of 5,000 takes 8 ms median, 63 ms at worst, on a small VM.
BATCH = 5000
#: After a batch that took t seconds, sleep at least PAUSE_FACTOR * t: pruning uses at most
#: 1 / (1 + PAUSE_FACTOR) of a core and of the write lock while it catches up: 5%. A million
#: rows take about a minute beside a saturated server (bench/prune.py); at 4 (20%) they took
#: 35 s, but at saturation p99 rises with the CPU taken.
PAUSE_FACTOR = 19.0
#: ... and at least this long, so the writer and the event loop always get a turn; at most
#: MAX_PAUSE: a batch slowed by a busy core (or a stopped process: wall time) must not stall
#: the prune for minutes, and past ~50 ms a batch is waiting, not working.
MIN_PAUSE = 0.02
MAX_PAUSE = 1.0
#: Default retention and interval of ``serve``.
DEFAULT_RETENTION = 90 * 86400.0
DEFAULT_INTERVAL = 3600.0


async def prune(
    store: Store,
    before: float,
    *,
    batch: int = BATCH,
    pause_factor: float = PAUSE_FACTOR,
    min_pause: float = MIN_PAUSE,
    audit: AuditEntry | None = None,
    progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> int:
    """Delete every call-log row older than ``before``, ``batch`` rows per transaction, with a
    pause between batches; returns the rows deleted. ``audit`` goes into the first batch's
    transaction (no deletion without its record). A failure raises after the batches already
    committed (they stay deleted: a later run goes on from there)."""
    total = 0
    while True:
        t0 = time.monotonic()
        n = await store.prune_calls(before, batch, audit=audit if total == 0 else None)
        total += n
        if progress is not None:
            maybe = progress(n)
            if maybe is not None:
                await maybe
        if n < batch:
            return total
        took = time.monotonic() - t0
        await asyncio.sleep(min(MAX_PAUSE, max(min_pause, pause_factor * took)))


class Pruner:
    """The server's background task: prune once soon after start, then every ``interval``,
    the call log of every account (one after the other, each in its batches)."""

    def __init__(
        self,
        store: Store,
        retention: float,
        *,
        interval: float = DEFAULT_INTERVAL,
        first_delay: float | None = None,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.retention = retention
        self.interval = interval
        #: The first run: a second after start (sooner when the interval is shorter).
        self.first_delay = min(1.0, interval) if first_delay is None else first_delay
        self.batch = batch
        #: Rows deleted since start (the metric), runs finished, runs failed.
        self.pruned = 0
        self.runs = 0
        self.errors = 0
        self.failing = False
        self.last_error = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name="callscreen-log-pruner"
        )

    async def _loop(self) -> None:
        delay = self.first_delay  # not at once: let the server take its first calls first
        while True:
            await asyncio.sleep(delay)
            await self.run_once()
            delay = self.interval

    def _count(self, n: int) -> None:
        self.pruned += n  # counted per batch: the metric moves while a long prune runs

    async def run_once(self) -> int:
        """One pass; never raises (except cancellation). Returns the rows deleted."""
        cutoff = time.time() - self.retention
        t0 = time.monotonic()
        before = self.pruned
        try:
            for account in await self.store.account_list():  # every account's log
                view = (
                    self.store
                    if account.id == self.store.account_id
                    else self.store.scoped(account.id, account.name)
                )
                await prune(view, cutoff, batch=self.batch, progress=self._count)
        except Exception as exc:  # housekeeping must never end the server
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self.failing:
                self.failing = True
                log.error(
                    "call log retention: pruning failed (%s); trying again in %.0f s",
                    self.last_error,
                    self.interval,
                )
            return self.pruned - before
        self.runs += 1
        done = self.pruned - before
        if self.failing:
            self.failing = False
            log.warning("call log retention: pruning works again")
        if done:
            log.info(
                "call log retention: %d rows older than %.0f days deleted in %.1f s",
                done,
                self.retention / 86400,
                time.monotonic() - t0,
            )
        return done

    async def close(self) -> None:
        """Stop at once: a batch in progress is cancelled (its transaction rolls back)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2.0)
