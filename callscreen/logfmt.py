"""Log output: the classic text line, or one JSON object per line for log shippers.

Log lines carry text from outside (caller ID, request lines, file names): both formats pass
every line through :mod:`callscreen.inert` here, once, so no caller can split or forge a line
or drive the terminal of whoever tails the log, whatever the code that logged it did.

The per-call line (``callscreen.calls``, INFO) is the one line written at call rate. Through
the logging module it cost about a quarter of the server's CPU (a record, a formatter pass and
a write system call per call, issue #16), so :class:`CallLines` writes it instead: a call
appends its fields to a list, and every ``interval`` seconds the batch is formatted exactly as
the handler's formatter would (same text, same JSON fields) and written in one write, under the
handler's lock. Nothing is dropped: the batch is unbounded within an interval, and
:meth:`CallLines.close` (server shutdown) writes what is left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from . import inert

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Names of the fields a call line carries (``extra={"call": (...)}`` in the screener).
CALL_FIELDS = (
    "ext",
    "caller",
    "result",
    "reason",
    "treatment",
    "entry",
    "outcome",
    "ms",
    "caller_name",
    "account",  # the account (tenant) the call was for, as the dialplan named it
)


#: The logger of the per-call lines.
CALLS_LOGGER: Final = "callscreen.calls"


#: Seconds between two writes of the per-call lines. A batch is formatted on the event loop:
#: at 10,000 calls/s a 0.2 s batch paused every call behind it for ~3 ms, a 0.05 s one for
#: under 1 ms (20 writes a second). The p99 it buys is within this machine's noise.
LINES_INTERVAL: Final = 0.05

#: The per-call message; one ``%`` format (a single C call: the f-string with its nested parts
#: was the costliest line of the batched writer, issue #16).
_CALL_MESSAGE: Final = "call to %s%s from %s: %s %s%s%s%s (%.1f ms)"


#: A whole per-call line as :data:`TEXT_FORMAT` writes it: asctime (the second's stamp,
#: milliseconds), then the message, in one ``%`` format (issue #16: three formats and two
#: strings between them cost a fifth of the line).
_CALL_LINE: Final = "%s,%03d INFO " + CALLS_LOGGER + ": " + _CALL_MESSAGE


def _plain(value: Any) -> bool:
    """None, or ASCII text that :func:`callscreen.inert.text` leaves as it is."""
    return value is None or (
        isinstance(value, str) and value.isascii() and value.isprintable() and "\\" not in value
    )


def call_message(call: Sequence[Any]) -> str:
    """The per-call line's message, from the call's fields (in :data:`CALL_FIELDS` order)."""
    return _CALL_MESSAGE % _message_values(call)


def _message_values(call: Sequence[Any]) -> tuple[Any, ...]:
    ext, caller, result, reason, treatment, entry, outcome, ms = call[:8]
    # Another account's extension reads "101@acme"; the default account's stays "101".
    account = call[9] if len(call) > 9 and call[9] != "default" else None
    return (
        ext or "?",
        "@" + account if account else "",
        caller,
        result,
        reason,
        " " + treatment if treatment else "",
        " [" + entry + "]" if entry else "",
        " -> " + outcome if outcome else "",
        ms,
    )


class TextFormatter(logging.Formatter):
    """The text line with control, bidi and separator characters shown as escapes
    (:func:`callscreen.inert.text`): one record, one line. A traceback keeps its line breaks;
    each of its lines is escaped the same way."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return inert.text(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return "\n".join(inert.text(line) for line in super().formatException(ei).splitlines())


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` plus, on call lines, the call's fields.

    Values are exact (the caller as sent); no raw control, bidi or separator character is
    written: they are ``\\uXXXX`` escapes, which parse back to the same value."""

    def format(self, record: logging.LogRecord) -> str:
        call = getattr(record, "call", None)
        return json_line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            call if isinstance(call, tuple) else None,
            self.formatException(record.exc_info) if record.exc_info else None,
        )


def json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    call: tuple[Any, ...] | None = None,
    exception: str | None = None,
) -> str:
    """One JSON log line (without its newline): what :class:`JsonFormatter` writes."""
    out: dict[str, object] = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }
    if call is not None:
        out.update(zip(CALL_FIELDS, call, strict=False))
    if exception is not None:
        out["exception"] = exception
    return inert.json_safe(json.dumps(out, ensure_ascii=False, default=str))


class CallLines:
    """The per-call INFO lines, formatted and written in batches off the per-call path.

    Built by :func:`call_lines` for the handler :func:`setup` installed; the screener calls
    :meth:`add` with the call's fields (:data:`CALL_FIELDS`; ``ms`` unrounded) and the time
    the call ended. The lines are exactly those the handler would write for the same records.
    """

    def __init__(
        self, handler: logging.StreamHandler[Any], interval: float = LINES_INTERVAL
    ) -> None:
        self.handler = handler
        self.json = isinstance(handler.formatter, JsonFormatter)
        self.interval = interval
        self.written = 0  # lines written
        self.failed = 0  # lines whose write raised (stderr gone): counted, and said on close
        self._pending: list[tuple[float, tuple[Any, ...]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._second = -1  # the second _stamp is for
        self._stamp = ""

    def add(self, created: float, call: tuple[Any, ...]) -> None:
        self._pending.append((created, call))
        if self._timer is None:
            if self._closed:
                self.flush()
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a tool, a test): write it now
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _line(self, created: float, call: tuple[Any, ...]) -> str:
        if self.json:
            fields = (*call[:7], round(call[7], 2), *call[8:])
            return json_line(created, "info", CALLS_LOGGER, call_message(call), fields)
        # The asctime of logging.Formatter's default: local time, a comma, milliseconds.
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        stamp = (self._stamp, int((created - second) * 1000))
        line = _CALL_LINE % (stamp + _message_values(call))
        # Only the texts from outside can make the line unsafe (the rest is ours: the stamp,
        # the result, reason and treatment, the milliseconds); when they are plain ASCII, so
        # is the line, and escaping it would find nothing: checked on those short texts
        # instead of the whole line.
        account = call[9] if len(call) > 9 else None
        if (
            _plain(call[0])  # the extension
            and _plain(call[1])  # the caller
            and _plain(call[5])  # the deciding entry
            and _plain(call[6])  # the outcome
            and _plain(account)
        ):
            return line
        return inert.text(line)

    def flush(self) -> None:
        """Format and write every pending line in one write (the handler's stream and lock)."""
        self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        text = "".join([self._line(created, call) + "\n" for created, call in batch])
        handler = self.handler
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except (OSError, ValueError):  # the log's reader is gone: nothing left to tell
            self.failed += len(batch)
        else:
            self.written += len(batch)
        finally:
            handler.release()

    def close(self) -> None:
        """Write what is left; later lines are written at once (shutdown)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


#: The handler :func:`setup` installed on the root logger (the call lines go to it).
_handler: logging.StreamHandler[Any] | None = None


def call_lines(interval: float = LINES_INTERVAL) -> CallLines | None:
    """A batched writer for the per-call lines, or None when they should go through logging:
    the per-call logger is not enabled for INFO, or logging is not (only) what :func:`setup`
    configured (a test's capture handler, a filter): then those handlers get every record."""
    handler = _handler
    root = logging.getLogger()
    calls = logging.getLogger(CALLS_LOGGER)
    if handler is None or root.handlers != [handler] or not calls.isEnabledFor(logging.INFO):
        return None
    logger: logging.Logger | None = calls
    while logger is not None and logger is not root:  # nothing between the logger and root
        if logger.handlers or logger.filters or not logger.propagate:
            return None
        logger = logger.parent
    if handler.filters or root.filters or handler.level > logging.INFO:
        return None
    return CallLines(handler, interval)


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger on stderr (replacing any earlier setup)."""
    global _handler
    handler = _handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
