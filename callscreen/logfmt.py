"""Log output: the classic text line, or one JSON object per line for log shippers.

Log lines carry text from outside (caller ID, request lines, file names): both formats pass
every line through :mod:`callscreen.inert` here, once, so no caller can split or forge a line
or drive the terminal of whoever tails the log, whatever the code that logged it did.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        call = getattr(record, "call", None)
        if isinstance(call, tuple):
            out.update(zip(CALL_FIELDS, call, strict=False))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return inert.json_safe(json.dumps(out, ensure_ascii=False, default=str))


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger on stderr (replacing any earlier setup)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
