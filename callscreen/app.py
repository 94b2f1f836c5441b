"""Running the server: Config -> Server -> run(). No sys.exit here; the CLI owns the process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import compiled, logfmt
from .challenge import ChallengeConfig
from .db.backup import ServerLock
from .db.errors import StoreError
from .db.lookup import Lookup
from .db.pglookup import PgLookup
from .db.recorder import DEFAULT_MAX_QUEUED, Recorder
from .db.retention import DEFAULT_INTERVAL, DEFAULT_RETENTION, Pruner
from .db.store import Store
from .db.url import display, is_postgres
from .fastagi import FastAGIServer, ServerLimits
from .fastagi.server import Network
from .metrics import MetricsServer, exposition
from .numbers import DEFAULT_REGION
from .screening import Screener
from .treatments import TreatmentConfig

log = logging.getLogger("callscreen")

#: The young generation's collection threshold while serving (see Server.start).
GC_YOUNG = 20_000

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573


class ConfigError(ValueError):
    """A server setting that cannot work (e.g. a public bind without --allow-from)."""


@dataclass
class Config:
    db: Path | str  # a SQLite file, or a postgresql:// URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    torture_max: float = 3600.0
    torture_wait: int = 10
    challenge_wait: float = 5.0  # seconds for the key, after the digit was said
    header_timeout: float = 10.0
    reply_timeout: float = 10.0
    max_connections: int = 20_000
    drain_timeout: float = 5.0
    allow_from: tuple[Network, ...] = field(default_factory=tuple)
    metrics_port: int | None = None  # None: no /metrics and /health
    metrics_host: str = DEFAULT_HOST
    #: Call-log rows kept in memory while the database refuses writes (then dropped, counted).
    call_log_queue: int = DEFAULT_MAX_QUEUED
    #: Seconds SIGTERM spends writing the queued call log before giving up (and saying so).
    flush_timeout: float = 3.0
    #: Seconds of call log kept (``--log-retention``); 0 keeps everything (no pruner runs).
    log_retention: float = DEFAULT_RETENTION
    #: Seconds between two prunes (the first runs a second after start).
    log_prune_interval: float = DEFAULT_INTERVAL

    def check(self) -> None:
        loopback = self.host in ("127.0.0.1", "::1", "localhost") or self.host.startswith("127.")
        if not loopback and not self.allow_from:
            raise ConfigError(
                f"FastAGI has no authentication: binding to {self.host} needs --allow-from "
                "with the addresses of your Asterisk servers"
            )
        if self.torture_max <= 0 or self.torture_wait <= 0:
            raise ConfigError("torture limits must be positive")
        if not 1 <= self.challenge_wait <= 30:
            raise ConfigError("the challenge wait must be 1 to 30 seconds")
        if self.log_retention < 0:
            raise ConfigError("log retention must be 0 (keep everything) or a positive duration")
        if self.log_prune_interval <= 0:
            raise ConfigError("the log prune interval must be positive")


class Server:
    """The screening server: store, recorder and FastAGI listener, started and stopped together."""

    def __init__(self, config: Config) -> None:
        config.check()
        self.config = config
        self.lookup: Lookup | PgLookup | None = None
        self.store: Store | None = None
        self.recorder: Recorder | None = None
        self.pruner: Pruner | None = None
        self.agi: FastAGIServer | None = None
        self.screener: Screener | None = None
        self.metrics: MetricsServer | None = None
        self.addresses: list[tuple[str, int]] = []
        self.metrics_addresses: list[tuple[str, int]] = []
        self.lock: ServerLock | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        c = self.config
        if is_postgres(c.db):
            # Several servers share one PostgreSQL: no lock; each reads through its own pool.
            self.store = await Store.open(c.db)
            self.lookup = PgLookup(str(c.db))
        else:
            # Held until stop(): `callscreen db restore` refuses while it is (db/backup.py).
            self.lock = ServerLock(Path(c.db))
            await asyncio.to_thread(self.lock.acquire)
            self.store = await Store.open(c.db)
            self.lookup = Lookup(c.db)
        self.recorder = Recorder(self.store, max_queued=c.call_log_queue)
        self.recorder.start()
        if c.log_retention > 0:
            self.pruner = Pruner(self.store, c.log_retention, interval=c.log_prune_interval)
            self.pruner.start()
        screener = self.screener = Screener(
            self.lookup,
            self.recorder,
            region=c.region,
            treatment_config=TreatmentConfig(c.torture_max, c.torture_wait),
            challenge_config=ChallengeConfig(wait=c.challenge_wait),
            store=self.store,
        )
        limits = ServerLimits(
            header_timeout=c.header_timeout,
            max_connections=c.max_connections,
            reply_timeout=c.reply_timeout,
            allow_from=c.allow_from,
        )
        screener.call_lines = logfmt.call_lines()
        self.agi = FastAGIServer(screener, limits)
        # Everything loaded so far (phonenumbers' metadata for every country, modules) lives as
        # long as the process: keep it out of the garbage collector's full passes.
        gc.collect()
        gc.freeze()
        # A call leaves no cycles (a test holds it to that), so the collector only ever finds
        # the objects of calls in flight, alive: collecting the young generation every 700
        # allocations (the default) traversed them again and again, 1-3% of a call under
        # load. Every GC_YOUNG allocations instead; what it frees is the same.
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        # Said before "listening": whoever waits for that line can read this one too.
        log.info(
            "call path: %s",
            "compiled (mypyc)" if compiled() else "interpreted (not compiled: see setup.py)",
        )
        self.addresses = await self.agi.start(c.host, c.port)
        for host, port in self.addresses:
            log.info("listening on %s:%d (database %s)", host, port, display(c.db))
        if c.metrics_port is not None:
            self.metrics = MetricsServer(lambda: exposition(self), self.health)
            self.metrics_addresses = await self.metrics.start(c.metrics_host, c.metrics_port)
            for host, port in self.metrics_addresses:
                log.info("metrics on http://%s:%d/metrics (and /health)", host, port)

    def health(self) -> tuple[bool, str]:
        """For /health: serving, and the reads a call makes (settings, entries) work.

        Failing call-log writes are ``degraded``, still 200: calls are screened correctly, and
        a health check that fails would get the server restarted, losing the queued rows.
        """
        if self._stop.is_set() or self.lookup is None:
            return False, "stopping"
        if isinstance(self.lookup, PgLookup):
            # Not asked here (this runs inline): the calls' own reads say whether it answers.
            if (error := self.lookup.unreachable()) is not None:
                return False, f"database: {error}"
        else:
            try:
                self.lookup.read("health", "+1")
            except StoreError as exc:
                return False, f"database: {exc}"
        rec = self.recorder
        if rec is not None and rec.failing_since is not None:
            return True, (
                f"degraded: call log writes failing for {time.time() - rec.failing_since:.0f} s "
                f"({rec.queued} rows queued, {rec.dropped} dropped): {rec.last_error}"
            )
        return True, "ok"

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_until_stopped(self) -> None:
        await self._stop.wait()

    async def stop(self) -> int:
        """Stop accepting, drain calls, close held ones, flush the call log, close the store.

        Always ends, in about ``drain_timeout + flush_timeout`` seconds at most, whatever state
        the database is in; each step runs even if an earlier one failed. Returns the call-log
        rows lost (0: every screened call is in the database).
        """
        lost = 0
        if self.metrics is not None:
            await _step("closing the metrics listener", self.metrics.close())
        if self.agi is not None:
            log.info("shutting down: %d calls open", len(self.agi.connections))
            await _step("draining calls", self.agi.shutdown(self.config.drain_timeout))
        lines = self.screener.call_lines if self.screener is not None else None
        if lines is not None:  # every call has ended: write the last call lines
            lines.close()
            if lines.failed:
                log.error("%d call log lines could not be written", lines.failed)
        if self.pruner is not None:  # first: a batch in progress would hold up the flush
            await _step("stopping the call log pruner", self.pruner.close())
        if self.recorder is not None:
            lost = await self.recorder.close(self.config.flush_timeout)
            if lost:
                log.error("call log: %d rows written, %d rows lost", self.recorder.written, lost)
            else:
                log.info("call log flushed: %d rows written", self.recorder.written)
        if isinstance(self.lookup, PgLookup):
            await _step("closing the lookup", self.lookup.aclose())
        elif self.lookup is not None:
            await _step("closing the lookup", asyncio.to_thread(self.lookup.close))
        if self.store is not None:
            await _step("closing the database", self.store.close())
        if self.lock is not None:
            self.lock.release()
        return lost


async def _step(what: str, step: Coroutine[Any, Any, object], timeout: float = 10.0) -> None:
    """One shutdown step: an error or a stall is logged, never stops the next step."""
    try:
        await asyncio.wait_for(step, timeout)
    except Exception as exc:
        log.error("shutdown: %s failed: %s", what, exc or type(exc).__name__)


#: ``callscreen serve`` exits with this status when call-log rows were lost (README).
EXIT_ROWS_LOST = 3


async def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status (0, or EXIT_ROWS_LOST)."""
    server = Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, server.request_stop)
    lost = 0
    try:
        await server.start()
        await server.serve_until_stopped()
    finally:
        lost = await server.stop()
    return EXIT_ROWS_LOST if lost else 0


def run(config: Config) -> int:
    """Blocking entry point: uvloop when available (it halves the per-connection cost)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))
