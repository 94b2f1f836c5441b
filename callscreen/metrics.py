"""Prometheus metrics and ``/health``, served by asyncio on the server's own loop.

The per-call cost is a dict increment and a bucket increment (:meth:`Metrics.call`); everything
else (gauges, the text) is computed when Prometheus scrapes. A dozen series do not need
prometheus-client, whose labelled counters take a lock per increment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .policy import Decision, Reason, Result, Treatment

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger("callscreen.metrics")

#: Decision latency buckets (seconds): the decision is two indexed reads, microseconds.
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.5,
)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters the screener bumps per call; read at scrape time."""

    __slots__ = (
        "_bounds",
        "block_last",
        "buckets",
        "calls",
        "challenges",
        "latency_sum",
        "unknown_accounts",
    )

    def __init__(self) -> None:
        self.calls: dict[tuple[Result, Reason, Treatment | None], int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        # Held here, and BUCKETS is not Final: the compiled build inlines a Final tuple of
        # floats, building it (eleven floats boxed) at every use, every call; read as a value
        # (this assignment) it was never set ("value for final name was not set").
        self._bounds: tuple[float, ...] = BUCKETS
        self.latency_sum = 0.0
        self.block_last: dict[str, int] = {}
        self.challenges: dict[str, int] = {}
        self.unknown_accounts = 0

    def call(self, d: Decision, seconds: float) -> None:
        key = (d.result, d.reason, d.treatment)
        calls = self.calls
        calls[key] = calls.get(key, 0) + 1
        self.buckets[bisect_left(self._bounds, seconds)] += 1
        self.latency_sum += seconds

    def unknown_account(self) -> None:
        """A call named an account that does not exist (it failed open)."""
        self.unknown_accounts += 1

    def blocked_last(self, status: str) -> None:
        self.block_last[status] = self.block_last.get(status, 0) + 1

    def challenged(self, outcome: str) -> None:
        """How a challenge ended (callscreen.challenge.Outcome); its call is counted by
        :meth:`call` as CHALLENGED."""
        self.challenges[outcome] = self.challenges.get(outcome, 0) + 1


def _series(
    out: list[str], name: str, kind: str, help_: str, rows: Sequence[tuple[str, float]]
) -> None:
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in rows:
        out.append(
            f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}"
        )


def exposition(server: Server) -> str:
    """The Prometheus text format (0.0.4) for one running server."""
    out: list[str] = []
    screener, agi, recorder = server.screener, server.agi, server.recorder
    m = screener.metrics if screener is not None else Metrics()
    calls = [
        (f'{{result="{r}",reason="{why}",treatment="{t or ""}"}}', n)
        for (r, why, t), n in sorted(m.calls.items(), key=lambda kv: tuple(map(str, kv[0])))
    ]
    _series(out, "callscreen_calls_total", "counter", "Calls screened, by decision.", calls)
    _series(
        out,
        "callscreen_challenges_total",
        "counter",
        "Challenges (press a digit), by how they ended.",
        [(f'{{outcome="{o}"}}', n) for o, n in sorted(m.challenges.items())],
    )
    _series(
        out,
        "callscreen_unknown_account_calls_total",
        "counter",
        "Calls that named an account that does not exist (let through).",
        [("", m.unknown_accounts)],
    )
    out.append(
        "# HELP callscreen_decision_seconds Time to decide a call (settings and list reads)."
    )
    out.append("# TYPE callscreen_decision_seconds histogram")
    total = 0
    for bound, n in zip([*map(str, BUCKETS), "+Inf"], m.buckets, strict=True):
        total += n
        out.append(f'callscreen_decision_seconds_bucket{{le="{bound}"}} {total}')
    out.append(f"callscreen_decision_seconds_sum {m.latency_sum:.9f}")
    out.append(f"callscreen_decision_seconds_count {total}")
    conns = list(agi.connections) if agi is not None else []
    held = sum(1 for c in conns if c.session is not None and c.session.holding)
    _series(
        out, "callscreen_open_connections", "gauge", "FastAGI connections open.", [("", len(conns))]
    )
    _series(
        out,
        "callscreen_held_calls",
        "gauge",
        "Blocked calls held in endless ringing.",
        [("", held)],
    )
    _series(
        out,
        "callscreen_tasks",
        "gauge",
        "asyncio tasks alive (calls in a treatment, and the server's own).",
        [("", len(asyncio.all_tasks()))],
    )
    stats = agi.stats if agi is not None else None
    _series(
        out,
        "callscreen_connections_total",
        "counter",
        "FastAGI connections, by outcome at accept.",
        [
            ('{outcome="accepted"}', stats.accepted if stats else 0),
            ('{outcome="refused_cap"}', stats.refused_cap if stats else 0),
            ('{outcome="refused_address"}', stats.refused_address if stats else 0),
            ('{outcome="bad_header"}', stats.bad_header if stats else 0),
        ],
    )
    _series(
        out,
        "callscreen_db_errors_total",
        "counter",
        "Database errors: reads while deciding (the call failed open), call-log writes refused.",
        [
            ('{op="decide"}', screener.decision_errors if screener is not None else 0),
            ('{op="call_log_write"}', recorder.write_errors if recorder is not None else 0),
        ],
    )
    _series(
        out,
        "callscreen_call_log_queue",
        "gauge",
        "Call-log rows waiting to be written.",
        [("", recorder.queued if recorder is not None else 0)],
    )
    _series(
        out,
        "callscreen_call_log_queue_limit",
        "gauge",
        "Call-log rows kept at most while writes fail; past it the newest are dropped.",
        [("", recorder.max_queued if recorder is not None else 0)],
    )
    _series(
        out,
        "callscreen_call_log_failing",
        "gauge",
        "1 while call-log writes fail (rows queued and retried), else 0.",
        [("", int(recorder is not None and recorder.failing))],
    )
    _series(
        out,
        "callscreen_call_log_writer_restarts_total",
        "counter",
        "Times the call-log writer task ended unexpectedly and was started again.",
        [("", recorder.restarts if recorder is not None else 0)],
    )
    _series(
        out,
        "callscreen_call_log_rows_total",
        "counter",
        "Call-log rows written, and dropped when the queue was full.",
        [
            ('{state="written"}', recorder.written if recorder is not None else 0),
            ('{state="dropped"}', recorder.dropped if recorder is not None else 0),
        ],
    )
    lines = screener.call_lines if screener is not None else None
    _series(
        out,
        "callscreen_log_call_lines_total",
        "counter",
        "Per-call log lines written in batches to stderr, and lost because the write failed "
        "(0 and 0 when they go through the logging module: --log-level above info, or a test).",
        [
            ('{state="written"}', lines.written if lines is not None else 0),
            ('{state="failed"}', lines.failed if lines is not None else 0),
        ],
    )
    pruner = server.pruner
    _series(
        out,
        "callscreen_call_log_pruned_rows_total",
        "counter",
        "Call-log rows deleted by --log-retention (older than the retention).",
        [("", pruner.pruned if pruner is not None else 0)],
    )
    _series(
        out,
        "callscreen_call_log_prune_errors_total",
        "counter",
        "Retention runs that failed (logged; tried again at the next interval).",
        [("", pruner.errors if pruner is not None else 0)],
    )
    _series(
        out,
        "callscreen_block_last_total",
        "counter",
        "Feature-code requests to block the last caller, by outcome.",
        [(f'{{status="{s}"}}', n) for s, n in sorted(m.block_last.items())],
    )
    return "\n".join(out) + "\n"


class MetricsServer:
    """A tiny HTTP/1.0 server: ``GET /metrics`` and ``GET /health``, one request per connection."""

    def __init__(self, render: Callable[[], str], health: Callable[[], tuple[bool, str]]) -> None:
        self.render = render
        self.health = health
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        # uvloop's ``sockets`` is a list where typeshed says tuple: read it untyped, or the
        # compiled module's type check (mypyc, setup.py) refuses it (as in FastAGIServer.start).
        untyped: Any = self._server
        return [tuple(s.getsockname()[:2]) for s in untyped.sockets]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(), "", ""]
            status, body, ctype = self._route(method, path.split("?", 1)[0])
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(data)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        except Exception:  # a scrape must never take the server down
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _route(self, method: str, path: str) -> tuple[str, str, str]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "GET only\n", "text/plain"
        if path == "/metrics":
            return "200 OK", self.render(), CONTENT_TYPE
        if path == "/health":
            ok, why = self.health()
            return ("200 OK" if ok else "503 Service Unavailable"), why + "\n", "text/plain"
        return "404 Not Found", "try /metrics or /health\n", "text/plain"
