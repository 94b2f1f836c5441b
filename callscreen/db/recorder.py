"""Batched call-log and hit-counter writes, off the per-call path.

A call appends to a list and returns; a background task writes the batch in one transaction
(aiosqlite's thread, so the event loop never waits on the disk or a lock).

The writer must outlive any storage fault, because a call log that silently stops is worse than
one that never started (issue: one full disk ended it for good, and SIGTERM then hung):
- a failed write keeps its rows and is retried with backoff (0.25 s doubling to 5 s);
  any exception, not only StoreError, is caught, logged and counted;
- if the task ends anyway it is started again;
- the admin is told: one ERROR line when writes start failing (cause, rows queued), a reminder
  every ``remind_every`` seconds while it lasts, one WARNING line when writing recovers;
- memory is bounded: past ``max_queued`` rows the *newest* rows are dropped and counted (the
  queue keeps the oldest, which lead up to the fault); hit counters still count them;
- ``close`` always ends within its time limit and says how many rows were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..inert import MAX_STORED, bound
from .store import CallRecord, Store

log = logging.getLogger("callscreen.db")

#: Default cap on queued rows. Measured (``python -m bench.queue_memory``): about 490 bytes per
#: typical row, so a full queue holds about 47 MiB; callers whose number and name fill the
#: 256-character bound (in 4-byte characters) make it at most 2.5 KB a row (240 MiB). Asterisk
#: itself cuts both at 79 characters: 1.1 KB a row at most through it (105 MiB).
DEFAULT_MAX_QUEUED = 100_000
#: Retry delays after a failed write: from ``interval`` doubling up to this.
MAX_BACKOFF = 5.0
#: Rows that wake the writer before its interval. Each batch's rows are made ready on the event
#: loop (a few ms for 2,000); 500 was tried against the p99 (issue #16) and measured no better
#: within this machine's noise, with more CPU per call, so the batch stays at 2,000.
BATCH = 2000
#: Rows per transaction: a long queue after an outage is written in steps, not one huge one.
WRITE_CHUNK = 20_000


def _bounded(call: CallRecord) -> CallRecord:
    """The row with the values from outside cut as the store would cut them (inert.bound)."""
    return call.replace(
        ext=bound(call.ext),
        caller_raw=bound(call.caller_raw),
        caller_name=None if call.caller_name is None else bound(call.caller_name),
        uniqueid=None if call.uniqueid is None else bound(call.uniqueid),
    )


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.25,
        batch: int = BATCH,
        max_queued: int = DEFAULT_MAX_QUEUED,
        remind_every: float = 60.0,
    ) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.max_queued = max_queued
        self.remind_every = remind_every
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self.restarts = 0
        #: Since when writes fail (wall clock), and why; None while writing works.
        self.failing_since: float | None = None
        self.last_error = ""
        self._calls: list[CallRecord] = []
        self._hits: dict[int, tuple[int, float]] = {}
        self._inflight = 0  # rows taken out by a flush that has not finished
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._backoff = 0.0
        self._next_reminder = 0.0
        self._dropped_at_failure = 0

    # -- the per-call side ---------------------------------------------------------------------
    def record(self, call: CallRecord) -> None:
        if (
            len(call.caller_raw) > MAX_STORED
            or len(call.ext) > MAX_STORED
            or (call.caller_name is not None and len(call.caller_name) > MAX_STORED)
            or (call.uniqueid is not None and len(call.uniqueid) > MAX_STORED)
        ):
            call = _bounded(call)  # what is queued is bounded too: memory per row is known
        if call.entry_id is not None:  # counters stay right even when the row is dropped
            n, _ = self._hits.get(call.entry_id, (0, 0.0))
            self._hits[call.entry_id] = (n + 1, call.time)
        if len(self._calls) + self._inflight >= self.max_queued:
            self.dropped += 1  # bounded memory beats an OOM kill that loses everything
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error(
                    "call log queue full (%d rows): the newest rows are dropped, %d so far",
                    self.max_queued,
                    self.dropped,
                )
            return
        self._calls.append(call)
        if len(self._calls) >= self.batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._calls) + self._inflight

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    # -- the background task -------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        task = asyncio.get_running_loop().create_task(self._run(), name="callscreen-recorder")
        task.add_done_callback(self._task_ended)
        self._task = task

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """The writer must not stay dead: log why it ended and start it again."""
        if self._stopping or task.cancelled():
            return
        self.restarts += 1
        exc = task.exception()
        delay = min(MAX_BACKOFF, self.interval * 2 ** min(self.restarts, 5))
        log.error(
            "call log writer stopped (%s); restarting it in %.2g s (%d rows queued)",
            f"{type(exc).__name__}: {exc}" if exc else "returned",
            delay,
            self.queued,
        )
        asyncio.get_running_loop().call_later(delay, self._restart)

    def _restart(self) -> None:
        if not self._stopping:
            self.start()

    async def _run(self) -> None:
        while not self._stopping:
            if self._backoff:  # failing: wait out the backoff, whatever wakes us
                await asyncio.sleep(self._backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if not self._stopping:
                await self.flush()

    async def flush(self) -> bool:
        """Write what is queued now; returns False (rows kept for a retry) if the write failed.

        Rows that arrive while it writes wait for the next round (the interval or a full
        batch). Draining them too kept a busy server's writer in one endless run of
        15-row transactions (issue #16): each commit rewrote the same index pages, about one
        WAL page a call, and four thread hand-offs a transaction cost the event loop CPU.
        """
        remaining = len(self._calls)
        pending_hits = bool(self._hits)
        while remaining or pending_hits:
            n = min(remaining, WRITE_CHUNK)
            calls, self._calls = self._calls[:n], self._calls[n:]
            hits, self._hits = self._hits, {}
            pending_hits = False
            remaining -= n
            self._inflight = len(calls)
            try:
                await self.store.write_calls(calls, hits)
            except Exception as exc:  # any failure keeps the rows: the writer must not die
                self._requeue(calls, hits)
                self._failed(exc)
                return False
            except BaseException:  # cancelled mid-write: keep the rows for close() to retry
                self._requeue(calls, hits)
                raise
            self._inflight = 0
            self.written += len(calls)
            self._recovered()
        return True

    def _requeue(self, calls: list[CallRecord], hits: dict[int, tuple[int, float]]) -> None:
        """Put rows whose write failed back in front of the queue, in their order."""
        self._inflight = 0
        self._calls[:0] = calls
        for entry_id, (n, last) in hits.items():
            m, later = self._hits.get(entry_id, (0, 0.0))
            self._hits[entry_id] = (n + m, max(last, later))

    def _failed(self, exc: Exception) -> None:
        self.write_errors += 1
        self.last_error = str(exc) or type(exc).__name__
        now = time.time()
        self._backoff = min(MAX_BACKOFF, max(self.interval, self._backoff * 2))
        if self.failing_since is None:
            self.failing_since = now
            self._dropped_at_failure = self.dropped
            self._next_reminder = now + self.remind_every
            log.error(
                "call log writes failing: %s; %d rows queued in memory and retried "
                "(up to %d, then the newest are dropped)",
                self.last_error,
                self.queued,
                self.max_queued,
            )
        elif now >= self._next_reminder:
            self._next_reminder = now + self.remind_every
            log.error(
                "call log writes still failing after %.0f s: %s; %d rows queued, %d dropped",
                now - self.failing_since,
                self.last_error,
                self.queued,
                self.dropped - self._dropped_at_failure,
            )

    def _recovered(self) -> None:
        self._backoff = 0.0
        if self.failing_since is None:
            return
        log.warning(
            "call log writes recovered after %.1f s: queued rows written (%d rows in all), "
            "%d dropped while failing",
            time.time() - self.failing_since,
            self.written,
            self.dropped - self._dropped_at_failure,
        )
        self.failing_since = None
        self.last_error = ""

    async def close(self, timeout: float = 5.0) -> int:
        """Stop the task and write what is queued, retrying until ``timeout`` seconds have
        passed. Always returns in about that time. Returns the rows lost over the recorder's
        life: dropped when the queue was full, plus those still unwritten now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            # A write in progress is let finish (cancelling it could leave us unsure whether it
            # committed); one stuck on a lock or a stalled disk is abandoned at the deadline,
            # its rows counted as lost. A task asleep in a backoff is simply cancelled.
            if self._inflight:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - loop.time()))
            if not task.done():
                task.cancel()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 1.0)
        while self._calls or self._hits:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                if await asyncio.wait_for(self.flush(), remaining):
                    continue  # written; rows that came in meanwhile go in the next round
            except (TimeoutError, asyncio.CancelledError):
                break
            await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))
        unwritten = len(self._calls) + self._inflight
        if unwritten:
            log.error(
                "giving up after %.0f s: %d call log rows not written (%s)",
                timeout,
                unwritten,
                self.last_error or "the database did not answer",
            )
        return unwritten + self.dropped
