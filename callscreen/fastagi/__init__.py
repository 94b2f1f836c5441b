"""FastAGI: the protocol (pure parsing) and an asyncio server. Knows nothing of screening."""

from .protocol import REPLY_KINDS, ProtocolError, Reply, ReplyKind, ReplyParser, command, quote
from .server import FastAGIServer, ServerLimits, ServerStats, parse_networks
from .session import AgiError, AgiSession, ConnectionClosed, ReplyTimeout

__all__ = [
    "REPLY_KINDS",
    "AgiError",
    "AgiSession",
    "ConnectionClosed",
    "FastAGIServer",
    "ProtocolError",
    "Reply",
    "ReplyKind",
    "ReplyParser",
    "ReplyTimeout",
    "ServerLimits",
    "ServerStats",
    "command",
    "parse_networks",
    "quote",
]
