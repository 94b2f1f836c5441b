"""The FastAGI wire protocol, pure: no sockets, no asyncio.

Asterisk (res_agi.c) opens the connection and sends an environment block of ``key: value``
lines closed by an empty line. The server then sends one command per line and reads one reply
per command. Replies (every form has a name in :data:`REPLY_KINDS`):

- ``200 result=N [(data)] [endpos=N]``  success; ``200 result= (timeout)`` has an empty result
- ``100 result=0 Trying...``            interim (GOSUB only): skip it and read on
- ``510 Invalid or unknown command``
- ``511 Command Not Permitted on a dead channel or intercept routine``
- ``520 Invalid command syntax...`` or a ``520-`` block ending with a line starting ``520 ``
- ``HANGUP``                            out of band, between replies: the channel is gone
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

#: Longest line Asterisk reads for a command (AGI_BUF_LEN); we never send more.
MAX_COMMAND_BYTES: Final = 8192


class ReplyKind(enum.Enum):
    SUCCESS = "200"
    TRYING = "100"
    INVALID_COMMAND = "510"
    DEAD_CHANNEL = "511"
    USAGE = "520"
    HANGUP = "HANGUP"
    GARBAGE = "garbage"


#: Every reply form we understand, with the example text Asterisk sends. Tests assert against it.
REPLY_KINDS: Mapping[str, tuple[ReplyKind, bytes]] = {
    "success": (ReplyKind.SUCCESS, b"200 result=0"),
    "success_data": (ReplyKind.SUCCESS, b"200 result=1 (SUCCESS)"),
    "success_endpos": (ReplyKind.SUCCESS, b"200 result=0 endpos=12345"),
    "success_data_endpos": (ReplyKind.SUCCESS, b"200 result=49 (dtmf) endpos=8000"),
    "timeout": (ReplyKind.SUCCESS, b"200 result= (timeout)"),
    "exec_failed": (ReplyKind.SUCCESS, b"200 result=-1"),
    "trying": (ReplyKind.TRYING, b"100 result=0 Trying..."),
    "invalid_command": (ReplyKind.INVALID_COMMAND, b"510 Invalid or unknown command"),
    "dead_channel": (
        ReplyKind.DEAD_CHANNEL,
        b"511 Command Not Permitted on a dead channel or intercept routine",
    ),
    "dead_channel_old": (ReplyKind.DEAD_CHANNEL, b"511 Command Not Permitted on a dead channel"),
    "usage": (ReplyKind.USAGE, b"520 Invalid command syntax.  Proper usage not available."),
    "usage_multiline": (
        ReplyKind.USAGE,
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b" Usage: EXEC <application> <options>\n"
        b"520 End of proper usage.",
    ),
    "hangup": (ReplyKind.HANGUP, b"HANGUP"),
}


class ProtocolError(Exception):
    """The peer broke the FastAGI protocol (bad header, oversized block, garbage reply)."""


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    result: int | None = None  # None for an empty result ("200 result= (timeout)") or non-200
    data: str | None = None  # the text in parentheses
    endpos: int | None = None
    text: str = ""  # the whole reply as received (all lines of a 520 block)

    @property
    def ok(self) -> bool:
        return self.kind is ReplyKind.SUCCESS


_REPLY_200: Final = re.compile(r"^200 result=(-?\d*)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$")


def decode(raw: bytes) -> str:
    """Decode peer text; Asterisk may send invalid UTF-8 (a truncated multibyte caller name)."""
    return raw.decode("utf-8", "replace")


#: The keys res_agi sends: a call's dict reuses these strings instead of holding its own copies
#: (about 1.5 KB less per open call, which counts with 10,000 callers held ringing).
_KNOWN_KEYS: Final = {
    k: k
    for k in (
        "agi_network agi_network_script agi_request agi_channel agi_language agi_type "
        "agi_uniqueid agi_version agi_callerid agi_calleridname agi_callingpres "
        "agi_callingani2 agi_callington agi_callingtns agi_dnid agi_rdnis agi_context "
        "agi_extension agi_priority agi_enhanced agi_accountcode agi_threadid "
        + " ".join(f"agi_arg_{i}" for i in range(1, 10))
    ).split()
}


def parse_env(block: bytes) -> dict[str, str]:
    """Parse an environment block (the lines before the empty line).

    res_agi writes each line as ``key: value``; lines of another shape and keys not starting
    ``agi_`` are ignored. Asterisk never repeats a key, so a repeat is a line forged inside a
    caller's text (a caller name holding a line break): for the keys res_agi writes before
    those texts the first line wins, for the ones it writes after them (:func:`last_wins`: the
    context, the extension, the AGI arguments) the last, so a forged line never wins over the
    real one. Values are kept as sent.
    """
    text = decode(block)
    if "\r" in text:
        text = text.replace("\r", "")
    env: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        if sep and key[:4] == "agi_" and (key not in env or last_wins(key)):
            env[_KNOWN_KEYS.get(key, key)] = value
    return env


#: The keys res_agi writes after every text a caller controls (caller ID, name, DNID, RDNIS):
#: a repeat of one of these is forged earlier in the block, so the last line is the real one.
_WRITTEN_LAST: Final = frozenset(
    {"agi_context", "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode"}
    | {"agi_threadid"}
)


def last_wins(key: str) -> bool:
    """Whether the last of several ``key`` lines is Asterisk's (see :func:`parse_env`)."""
    return key in _WRITTEN_LAST or key.startswith("agi_arg_")


#: ``("\nkey: ", last_wins(key))`` by key, for :meth:`AgiEnv.get` (bounded: a caller could
#: ask for any key).
_NEEDLES: Final[dict[str, tuple[str, bool]]] = {}
_MAX_NEEDLES: Final = 128


class AgiEnv(Mapping[str, str]):
    """The environment block as a read-only mapping, read lazily.

    A call needs about six of the ~25 keys, so a lookup is a search in the block's text (the
    same answers as :func:`parse_env`, which says which of a repeated key's lines wins); the
    dict is built only if someone iterates. Cheaper per call, and an open call keeps one
    string, not 50.
    """

    __slots__ = ("_dict", "_text")

    def __init__(self, block: bytes) -> None:
        text = decode(block)
        if "\r" in text:
            text = text.replace("\r", "")
        self._text = "\n" + text + "\n"
        self._dict: dict[str, str] | None = None

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if self._dict is not None:
            return self._dict.get(key, default)
        if not key.startswith("agi_") or "\n" in key:
            return default
        text = self._text
        known = _NEEDLES.get(key)
        if known is None:  # built once per key: every call asks for the same few
            known = (f"\n{key}: ", last_wins(key))
            if len(_NEEDLES) < _MAX_NEEDLES:
                _NEEDLES[key] = known
        needle, last = known
        # The keys written last (the arguments) are found from the end: the right line when
        # a caller's text forged one, and a short search (the block is ~700 characters, and
        # a search from the start steps through most of it a character at a time).
        at = text.rfind(needle) if last else text.find(needle)
        if at < 0:
            return default
        start = at + len(needle)
        # find, not index: the block ends with "\n", and the compiled build calls find directly
        # (index with a start goes through a generic method call, ~1,000 instructions a get)
        return text[start : text.find("\n", start)]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def _full(self) -> dict[str, str]:
        if self._dict is None:
            self._dict = parse_env(self._text.encode())
        return self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())


#: Success replies read before, by line: a server reads the same few again and again
#: (``200 result=0`` after MSet and Busy). A Reply is immutable, so one object serves every
#: call; bounded like :data:`_COMMANDS` (cleared when full), so replies that vary (a digit, an
#: ``endpos``) cannot grow it.
_REPLIES: Final[dict[str, Reply]] = {}
_MAX_CACHED_REPLIES: Final = 256


class ReplyParser:
    """Turns reply lines into :class:`Reply` objects, one line at a time.

    ``feed(line)`` returns a Reply when one is complete, ``None`` while a multi-line 520 block
    is still open. ``HANGUP`` lines come back as replies of kind HANGUP: the caller treats them
    as an event and keeps reading for the real reply.
    """

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: list[str] | None = None

    def feed(self, raw: bytes) -> Reply | None:
        line = decode(raw.rstrip(b"\r\n"))
        if self._usage is not None:
            self._usage.append(line)
            if line.startswith("520 "):
                text, self._usage = "\n".join(self._usage), None
                return Reply(ReplyKind.USAGE, text=text)
            return None
        return self._parse_line(line)

    def _parse_line(self, line: str) -> Reply | None:
        if line.startswith("200"):
            reply = _REPLIES.get(line)
            if reply is not None:
                return reply
            m = _REPLY_200.match(line)
            if m is None:
                return Reply(ReplyKind.GARBAGE, text=line)
            result, data, endpos = m.groups()
            reply = Reply(
                ReplyKind.SUCCESS,
                result=int(result) if result not in ("", "-") else None,
                data=data,
                endpos=int(endpos) if endpos is not None else None,
                text=line,
            )
            if len(_REPLIES) >= _MAX_CACHED_REPLIES:
                _REPLIES.clear()
            _REPLIES[line] = reply
            return reply
        if line == "HANGUP":
            return Reply(ReplyKind.HANGUP, text=line)
        if line.startswith("520-"):
            self._usage = [line]
            return None
        for kind in (ReplyKind.TRYING, ReplyKind.INVALID_COMMAND, ReplyKind.DEAD_CHANNEL):
            if line[:3] == kind.value and line[3:4] in ("", " "):
                return Reply(kind, text=line)
        if line[:3] == "520" and line[3:4] in ("", " "):
            return Reply(ReplyKind.USAGE, text=line)
        return Reply(ReplyKind.GARBAGE, text=line)


_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f]")


def quote(arg: str) -> str:
    """Quote one argument so Asterisk's parser (res_agi.c parse_args) reads it back unchanged.

    Double quotes group, a backslash escapes the next character. Control characters (a line
    feed would end the command early) are replaced by spaces: caller-controlled text can never
    change or add a command.
    """
    arg = _UNSAFE.sub(" ", arg)
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: Command lines built before, by (verb, args): a server sends the same few lines again and
#: again (``EXEC MSet`` with one of a dozen decisions, ``EXEC Busy``). Bounded: cleared when
#: full, so arguments that vary cannot grow it.
_COMMANDS: Final[dict[tuple[str, tuple[str, ...]], bytes]] = {}
_MAX_CACHED_COMMANDS: Final = 512


def command(verb: str, *args: str) -> bytes:
    """Build one command line: ``verb`` is ours (``"EXEC Busy"``) and sent as is; each of
    ``args`` is quoted, so it reaches Asterisk as exactly one argument."""
    key = (verb, args)
    data = _COMMANDS.get(key)
    if data is not None:
        return data
    line = " ".join([verb, *(quote(a) for a in args)]) + "\n"
    data = line.encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
    if len(_COMMANDS) >= _MAX_CACHED_COMMANDS:
        _COMMANDS.clear()
    _COMMANDS[key] = data
    return data
