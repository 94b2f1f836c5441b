"""The asyncio FastAGI server: connections, limits, shutdown. Knows nothing of screening.

An asyncio Protocol (not streams) on the hot path: the environment block is cut out of the
first bytes with one search, and each connection costs one object and one task. Time limits
(the environment block, each reply) are deadlines checked by one sweep every
``SWEEP_INTERVAL`` seconds rather than a timer per connection and per command: cheaper per
call, and 10,000 held calls keep no timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from .protocol import AgiEnv, ProtocolError, ReplyParser
from .session import AgiError, AgiSession, ConnectionClosed

log = logging.getLogger("callscreen.fastagi")

#: Seconds between deadline sweeps: time limits are enforced to within this.
SWEEP_INTERVAL: Final = 0.25

#: Runs one call. It returns a coroutine for a conversation (the server runs it as a task and
#: closes the session when it ends), or None when it has already finished the call
#: synchronously: closed the session, or handed it to ``send_then_close``.
Handler = Callable[[AgiSession], Awaitable[None] | None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class ServerLimits:
    header_timeout: float = 10.0  # seconds to receive the whole environment block
    max_header_bytes: int = 64 * 1024  # the environment block, and any unread backlog later
    max_connections: int = 20_000  # beyond this, new connections are closed at once
    reply_timeout: float = 10.0  # default wait for a command's reply (long apps set their own)
    allow_from: tuple[Network, ...] = field(default_factory=tuple)  # empty: everyone


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "192.0.2.7"]`` -> networks; raises ValueError on bad text."""
    return tuple(ipaddress.ip_network(i.strip(), strict=False) for i in items if i.strip())


@dataclass
class ServerStats:
    accepted: int = 0
    refused_cap: int = 0
    refused_address: int = 0
    bad_header: int = 0
    handler_errors: int = 0


def peer_of(transport: asyncio.BaseTransport | None) -> str:
    """``host:port`` of a connection's peer, or ``?``."""
    peername = transport.get_extra_info("peername") if transport is not None else None
    return f"{peername[0]}:{peername[1]}" if peername else "?"


class _Connection(asyncio.Protocol):
    __slots__ = ("_buf", "_parser", "_peer", "deadline", "server", "session", "task", "transport")

    def __init__(self, server: FastAGIServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: AgiSession | None = None
        self.task: asyncio.Task[None] | None = None
        self._buf = b""
        self._parser = ReplyParser()
        self.deadline = 0.0  # for the environment block
        self._peer: str | None = None

    @property
    def peer(self) -> str:
        """``host:port`` of the peer, for log lines (looked up only when needed)."""
        if self._peer is None:
            self._peer = peer_of(self.transport)
        return self._peer

    # -- asyncio callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        server = self.server
        if server.limits.allow_from and not server.allowed(self.peer.rsplit(":", 1)[0]):
            server.stats.refused_address += 1
            log.warning("refused %s: not in --allow-from", self.peer)
            transport.abort()
            return
        if len(server.connections) >= server.limits.max_connections:
            server.stats.refused_cap += 1
            log.warning(
                "refused %s: %d connections open (the cap)", self.peer, len(server.connections)
            )
            transport.abort()
            return
        server.stats.accepted += 1
        server.connections.add(self)
        self.deadline = server.loop_time() + server.limits.header_timeout

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if self.session is None:
            end, skip = buf.find(b"\n\n"), 2
            if end < 0:
                end, skip = buf.find(b"\r\n\r\n"), 4
            if end < 0:
                if len(buf) > self.server.limits.max_header_bytes:
                    self._drop(
                        f"environment block over {self.server.limits.max_header_bytes} bytes"
                    )
                else:
                    self._buf = buf
                return
            if end > self.server.limits.max_header_bytes:
                self._drop(f"environment block over {self.server.limits.max_header_bytes} bytes")
                return
            self._start(buf[:end])
            buf = buf[end + skip :]
        session = self.session
        assert session is not None
        parser = self._parser
        while (nl := buf.find(b"\n")) >= 0:
            reply = parser.feed(buf[:nl])
            buf = buf[nl + 1 :]
            if reply is not None:
                session.feed_reply(reply)
        if len(buf) > self.server.limits.max_header_bytes:
            self._drop(f"reply line over {self.server.limits.max_header_bytes} bytes")
            return
        self._buf = buf

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.connections.discard(self)
        if server._drained is not None and not server.connections:
            server._drained.set()
        if self.session is not None:
            self.session.feed_eof(exc)
        elif self.transport is not None and self._buf:
            self.server.stats.bad_header += 1
            log.info("%s closed before the end of the environment block", self.peer)

    # -- internals -------------------------------------------------------------------------------
    def _start(self, header: bytes) -> None:
        assert self.transport is not None
        transport = self.transport
        # The session's peer is looked up from the transport, not through this object: a
        # closure over self would make a reference cycle (connection -> session -> closure ->
        # connection), and every call would leave its objects to the garbage collector instead
        # of being freed when the connection closes (measured: ~14 objects a call, issue #16).
        self.session = AgiSession(
            AgiEnv(header),
            transport.write,
            transport.close,
            functools.partial(peer_of, transport),
            self.server.limits.reply_timeout,
            self.server.loop_time,
        )
        session = self.session
        try:
            conversation = self.server.handler(session)
        except Exception:
            self.server.stats.handler_errors += 1
            log.exception("%s: handler failed", self.peer)
            session.close()
            return
        if conversation is not None:
            self.task = asyncio.get_running_loop().create_task(self._run(session, conversation))

    async def _run(self, session: AgiSession, conversation: Awaitable[None]) -> None:
        try:
            await conversation
        except ConnectionClosed:
            log.debug("%s: connection closed during the call", self.peer)
        except (ProtocolError, AgiError) as exc:
            self.server.stats.handler_errors += 1
            log.warning("%s: %s: %s; closing", self.peer, type(exc).__name__, exc)
        except asyncio.CancelledError:
            log.info("%s: call cancelled (shutdown)", self.peer)
            raise
        except Exception:
            self.server.stats.handler_errors += 1
            log.exception("%s: handler failed", self.peer)
        finally:
            session.close()

    def check_deadline(self, now: float) -> None:
        """Called by the server's sweep: enforce the header limit and the reply limit."""
        if self.session is not None:
            self.session.check_deadline(now)
        elif now >= self.deadline:
            self._drop(f"no environment block within {self.server.limits.header_timeout:g} s")

    def _drop(self, why: str) -> None:
        self.server.stats.bad_header += 1
        log.warning("%s: %s; closing", self.peer, why)
        self._buf = b""
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        elif self.transport is not None:
            self.transport.close()


class FastAGIServer:
    """Accepts FastAGI connections and runs ``handler(session)`` for each (a task for each
    call that needs a conversation)."""

    def __init__(self, handler: Handler, limits: ServerLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or ServerLimits()
        self.stats = ServerStats()
        self.connections: set[_Connection] = set()
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Event | None = None  # set when the last connection is gone
        #: The loop's clock, set by start(): deadlines and the sweep use the same one.
        self.loop_time: Callable[[], float] = time.monotonic

    def _sweep(self) -> None:
        now = self.loop_time()
        for conn in list(self.connections):
            conn.check_deadline(now)
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.limits.allow_from)

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        """Listen on ``host:port`` (port 0 picks a free one); returns the bound addresses."""
        loop = asyncio.get_running_loop()
        self.loop_time = loop.time
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_INTERVAL, self._sweep)
        server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=4096
        )
        self._servers.append(server)
        # uvloop's ``sockets`` is a list where typeshed says tuple: read it untyped, or the
        # compiled module's type check (mypyc, setup.py) refuses it.
        untyped: Any = server
        return [tuple(s.getsockname()[:2]) for s in untyped.sockets]

    @property
    def active_tasks(self) -> list[asyncio.Task[None]]:
        return [c.task for c in self.connections if c.task is not None and not c.task.done()]

    async def shutdown(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let decisions in flight finish, close held calls, then the rest.

        Closing a connection hands the channel back to the dialplan (the shipped routine hangs
        up a BLOCKED caller), so nothing is left waiting on us.
        """
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.session is None or conn.session.holding:
                conn.close()
        if self.connections:  # let the calls in flight finish on their own
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain_timeout)
        for conn in list(self.connections):
            conn.close()
        if pending := self.active_tasks:
            _, pending_set = await asyncio.wait(pending, timeout=1.0)
            for task in pending_set:
                task.cancel()
            await asyncio.gather(*pending_set, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
