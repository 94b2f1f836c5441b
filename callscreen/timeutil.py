"""Times as an admin types them (``30d``, ``1h``, ``2026-11-01``) and as we print them (UTC)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` -> seconds (positive)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 12h, 30d, 2w)")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return seconds


def parse_retention(text: str) -> float:
    """``90d`` (keep that long) or ``0`` (keep everything) -> seconds; ``serve --log-retention``.
    0 is a word of its own here: for every other duration it would be a mistake."""
    if text.strip() in ("0", "0s", "0d"):
        return 0.0
    return parse_duration(text)


def format_duration(seconds: float) -> str:
    """Seconds as :func:`parse_duration` reads them, in the largest whole unit: ``30d``;
    ``0`` for none."""
    if seconds <= 0:
        return "0"
    for unit, size in sorted(_UNITS.items(), key=lambda u: -u[1]):
        if unit != "w" and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_time(text: str) -> float:
    """A date or date-time: ``2026-11-01``, ``2026-11-01T18:00``, ``2026-11-01 18:00:00Z``,
    ``2026-11-01T18:00+01:00`` -> epoch seconds. Without an offset the time is UTC (as printed)."""
    raw = text.strip()
    value = raw[:-1] + "+00:00" if raw[-1:] in ("Z", "z") else raw
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not a date: {text!r} (e.g. 2026-11-01 or 2026-11-01T18:00, UTC unless an offset)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_since(text: str, now: float | None = None) -> float:
    """``1h`` / ``7d`` (that long ago) or a date (see :func:`parse_time`) -> epoch seconds."""
    if _DURATION.match(text):
        return (time.time() if now is None else now) - parse_duration(text)
    return parse_time(text)


def iso(ts: float | None) -> str | None:
    """``2026-11-01T18:00:00Z`` (whole seconds, UTC), for CSV and JSON."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(ts: float | None) -> str:
    """``2026-11-01 18:00:00Z`` for tables; "" for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
