"""Batched call-log and hit-counter writes, off the per-call path.

A call appends to a list and returns; a background task writes the batch in one transaction
(aiosqlite's thread, so the event loop never waits on the disk or a lock). If the database
refuses the write (locked for long, read-only, full), the rows stay queued and are retried:
nothing is dropped until the queue cap, and that is counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .errors import StoreError
from .store import CallRecord, Store

log = logging.getLogger("callscreen.db")


class Recorder:
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.25,
        batch: int = 2000,
        max_queued: int = 1_000_000,
    ) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.max_queued = max_queued
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self._calls: list[CallRecord] = []
        self._hits: dict[int, tuple[int, float]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def record(self, call: CallRecord) -> None:
        if len(self._calls) >= self.max_queued:
            self.dropped += 1  # bounded memory beats an OOM kill that loses everything
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error(
                    "call log queue full (%d rows): %d rows dropped", self.max_queued, self.dropped
                )
            return
        self._calls.append(call)
        if call.entry_id is not None:
            n, _ = self._hits.get(call.entry_id, (0, 0.0))
            self._hits[call.entry_id] = (n + 1, call.time)
        if len(self._calls) >= self.batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._calls)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="callscreen-recorder")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write what is queued; returns False (rows kept) if the database refused."""
        if not self._calls and not self._hits:
            return True
        calls, hits = self._calls, self._hits
        self._calls, self._hits = [], {}
        try:
            await self.store.write_calls(calls, hits)
        except StoreError as exc:
            self.write_errors += 1
            log.error("call log write failed (%d rows kept for retry): %s", len(calls), exc)
            self._calls[:0] = calls
            for entry_id, (n, last) in hits.items():
                m, later = self._hits.get(entry_id, (0, 0.0))
                self._hits[entry_id] = (n + m, max(last, later))
            return False
        self.written += len(calls)
        return True

    async def close(self, retry_for: float = 10.0) -> None:
        """Stop the background task; write what is queued, retrying for ``retry_for`` seconds."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        deadline = asyncio.get_running_loop().time() + retry_for
        while not await self.flush():
            if asyncio.get_running_loop().time() > deadline:
                log.error("giving up: %d call log rows not written", len(self._calls))
                break
            await asyncio.sleep(0.2)
