"""One AGI conversation: send a command, get a typed reply, know when the channel is gone."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from .protocol import ProtocolError, Reply, ReplyKind, command

_Writer = Callable[[bytes], None]
_Closer = Callable[[], None]
_Peer = Callable[[], str]
#: Called with the final reply, or None if none came (EOF, overdue, unreadable).
Done = Callable[[Reply | None], None]

#: Replies nobody asked for that we keep before giving up on the peer.
_MAX_UNREAD: Final = 64


class AgiError(Exception):
    """Base class of the errors a session raises."""


class ConnectionClosed(AgiError):
    """The connection closed (peer EOF, reset, or we closed it) before the reply came."""


class ReplyTimeout(AgiError):
    """No reply within the command's time limit (Asterisk itself has none: we need ours)."""


class AgiSession:
    """The server side of one FastAGI connection.

    The transport layer (:mod:`callscreen.fastagi.server`) feeds replies in; handlers call
    :meth:`send` and friends. Asterisk's out-of-band ``HANGUP`` line sets :attr:`hung_up` and is
    otherwise skipped: the real reply to the command still follows it.
    """

    __slots__ = (
        "_clock",
        "_close_after",
        "_close_transport",
        "_closed",
        "_deadline",
        "_done",
        "_peer",
        "_pending",
        "_verb",
        "_waiter",
        "_write",
        "env",
        "holding",
        "hung_up",
        "reply_timeout",
    )

    def __init__(
        self,
        env: Mapping[str, str],
        write: _Writer,
        close: _Closer,
        peer: _Peer | str = "",
        reply_timeout: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.env = env
        #: The event loop's clock (``loop.time``), for reply deadlines; None: asked from the
        #: running loop. The server passes it: ``asyncio.get_running_loop()`` makes a getpid
        #: system call each time, and an allowed call sets one deadline (issue #16's profile).
        self._clock = clock
        self._peer = peer
        #: Default limit for a reply; long applications pass their own to :meth:`send`.
        self.reply_timeout = reply_timeout
        self.hung_up = False
        #: True while the channel is parked in a long application (torture's Wait): the server
        #: closes such calls first on shutdown instead of waiting for them.
        self.holding = False
        self._write = write
        self._close_transport = close
        self._waiter: asyncio.Future[Reply] | None = None
        self._pending: deque[Reply | BaseException] = deque()
        self._closed = False
        self._deadline: float | None = None  # when the awaited reply is overdue
        self._done: Done | None = None  # set by send_then / send_then_close
        self._close_after = False  # send_then_close: close when the reply comes
        self._verb = ""

    @property
    def peer(self) -> str:
        return self._peer if isinstance(self._peer, str) else self._peer()

    # -- environment -----------------------------------------------------------------------
    @property
    def script(self) -> str:
        """The script path of ``agi://host:port/PATH`` (query string removed)."""
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    @property
    def args(self) -> list[str]:
        """``agi_arg_1 .. agi_arg_N``: the AGI() arguments after the URL."""
        out: list[str] = []
        while (value := self.env.get(f"agi_arg_{len(out) + 1}")) is not None:
            out.append(value)
        return out

    @property
    def closed(self) -> bool:
        return self._closed

    # -- commands --------------------------------------------------------------------------
    async def send(self, verb: str, *args: str, timeout: float | None = None) -> Reply:
        """Send one command and return its reply (never a HANGUP or 100 Trying line).

        A 511 reply means the channel is dead: :attr:`hung_up` is set and the reply returned.
        Raises :class:`ConnectionClosed` if the connection ends first, :class:`ReplyTimeout`
        after ``timeout`` seconds (default :attr:`reply_timeout`) and
        :class:`~callscreen.fastagi.protocol.ProtocolError` on a reply we cannot read.
        """
        if self._closed:
            raise ConnectionClosed("session closed")
        self._write(command(verb, *args))
        limit = self.reply_timeout if timeout is None else timeout
        while True:
            reply = await self._next(limit, verb)
            if reply.kind is ReplyKind.TRYING:
                continue
            if reply.kind is ReplyKind.DEAD_CHANNEL:
                self.hung_up = True
            elif reply.kind is ReplyKind.GARBAGE:
                raise ProtocolError(f"unreadable reply: {reply.text[:80]!r}")
            return reply

    async def exec(
        self, app: str, data: str | None = None, *, timeout: float | None = None
    ) -> Reply:
        """Run a dialplan application; the reply's result is the application's return value."""
        args = () if data is None else (data,)
        return await self.send(f"EXEC {app}", *args, timeout=timeout)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.send(f"GET VARIABLE {name}")
        return reply.data if reply.ok and reply.result == 1 else None

    def send_then_close(self, verb: str, *args: str, done: Done) -> None:
        """Send a last command without a coroutine: when its reply comes, close the connection
        and call ``done(reply)`` (``done(None)`` on EOF, an overdue or unreadable reply).

        The cheap path for a conversation of one command (an allowed call): no task, no future.
        """
        self.send_then(verb, *args, done=done, close=True)

    def send_then(
        self,
        verb: str,
        *args: str,
        done: Done,
        timeout: float | None = None,
        close: bool = False,
    ) -> None:
        """Send a command without a coroutine; ``done(reply)`` runs when its reply comes
        (``done(None)``, the connection closed, on EOF, an overdue or unreadable reply). With
        ``close`` the connection is closed before ``done`` runs; else ``done`` may send the
        next command: a short conversation (Busy) as a chain of callbacks, without a task."""
        if self._closed:
            done(None)
            return
        self._write(command(verb, *args))
        self._done = done
        self._close_after = close
        limit = self.reply_timeout if timeout is None else timeout
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        self._deadline, self._verb = now + limit, verb

    def _finish(self, reply: Reply | None) -> None:
        done, self._done, self._deadline = self._done, None, None
        if self._close_after or reply is None:
            self.close()
        if done is not None:
            done(reply)

    def close(self) -> None:
        """Close the connection: this is what hands the channel back to the dialplan."""
        if not self._closed:
            self._closed = True
            self._close_transport()

    # -- fed by the transport ----------------------------------------------------------------
    def feed_reply(self, reply: Reply) -> None:
        if reply.kind is ReplyKind.HANGUP:
            self.hung_up = True
            return
        self._deliver(reply)

    def feed_eof(self, exc: BaseException | None = None) -> None:
        self._closed = True
        self._deliver(ConnectionClosed(str(exc) if exc else "connection closed by peer"))

    def _deliver(self, item: Reply | BaseException) -> None:
        if self._done is not None:
            if isinstance(item, BaseException):
                self._finish(None)
            elif item.kind is ReplyKind.TRYING:
                pass
            else:
                if item.kind is ReplyKind.DEAD_CHANNEL:
                    self.hung_up = True
                self._finish(None if item.kind is ReplyKind.GARBAGE else item)
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            if isinstance(item, BaseException):
                waiter.set_exception(item)
            else:
                waiter.set_result(item)
        elif len(self._pending) < _MAX_UNREAD:
            self._pending.append(item)
        else:  # a peer talking without being asked: not Asterisk
            self.close()

    async def _next(self, timeout: float, verb: str) -> Reply:
        if self._pending:
            item = self._pending.popleft()
            if isinstance(item, BaseException):
                self._pending.appendleft(item)  # stays closed for every later call
                raise item
            return item
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Reply] = loop.create_future()
        self._waiter = waiter
        # A deadline the server's sweep checks (check_deadline), not a timer per command.
        self._deadline, self._verb = loop.time() + timeout, verb
        try:
            return await waiter
        finally:
            self._deadline = None

    def check_deadline(self, now: float) -> None:
        """Fail the awaited reply with :class:`ReplyTimeout` once its deadline has passed."""
        if self._done is not None:
            if self._deadline is not None and now >= self._deadline:
                self._finish(None)
            return
        waiter = self._waiter
        if self._deadline is not None and now >= self._deadline and waiter and not waiter.done():
            self._waiter = None
            waiter.set_exception(ReplyTimeout(f"{self._verb}: reply overdue"))
