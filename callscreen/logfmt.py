"""Log output: the classic text line, or one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Names of the fields a call line carries (``extra={"call": (...)}`` in the screener).
CALL_FIELDS = ("ext", "caller", "result", "reason", "treatment", "entry", "outcome", "ms")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` plus, on call lines, the call's fields."""

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
        return json.dumps(out, ensure_ascii=False, default=str)


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger on stderr (replacing any earlier setup)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
