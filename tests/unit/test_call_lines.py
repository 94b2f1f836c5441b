"""The per-call log lines written in batches (callscreen.logfmt.CallLines, issue #16): the same
text and JSON fields the logging handler writes, nothing lost, flushed on close."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from callscreen import inert, logfmt
from callscreen.policy import Reason, Result, Treatment

HOSTILE = "+1303\x1b[2J\u202e5551212\n2026-01-01 INFO forged"
NAME = "Mallory\x1b]0;pwned\x07"
CREATED = 1_764_600_000.123456


def call(ms: float = 1.23456, account: str = "acme") -> tuple[Any, ...]:
    return (
        "101",
        HOSTILE,
        Result.BLOCKED,
        Reason.EXT_BLOCKLIST,
        Treatment.BUSY,
        "+1303*",
        "busy",
        ms,
        NAME,
        account,
    )


@pytest.fixture
def root_handler() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logfmt._handler)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logfmt._handler = saved[2]


def handler(fmt: str) -> logging.StreamHandler[Any]:
    h: logging.StreamHandler[Any] = logging.StreamHandler(io.StringIO())
    h.setFormatter(
        logfmt.JsonFormatter() if fmt == "json" else logfmt.TextFormatter(logfmt.TEXT_FORMAT)
    )
    return h


def through_logging(fmt: str, c: tuple[Any, ...]) -> str:
    """What the logging module writes for the same call (the screener's fallback path)."""
    h = handler(fmt)
    record = logging.LogRecord(
        logfmt.CALLS_LOGGER, logging.INFO, __file__, 1, logfmt.call_message(c), None, None
    )
    record.created = CREATED
    record.msecs = int((CREATED - int(CREATED)) * 1000) + 0.0
    record.call = (*c[:7], round(c[7], 2), c[8], c[9])
    h.handle(record)
    return h.stream.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_batched_line_is_the_line_logging_writes(fmt: str) -> None:
    h = handler(fmt)
    lines = logfmt.CallLines(h)
    lines.add(CREATED, call())  # no event loop: written at once
    got = h.stream.getvalue()
    assert got == through_logging(fmt, call())
    assert got.count("\n") == 1 and "\x1b" not in got and "\u202e" not in got
    if fmt == "text":
        assert inert.text(HOSTILE) in got
        assert got.endswith(
            "INFO callscreen.calls: call to 101@acme from "
            f"{inert.text(HOSTILE)}: BLOCKED ext-blocklist busy [+1303*] -> busy "
            "(1.2 ms)\n"
        )
    else:
        record = json.loads(got)
        assert {k: record[k] for k in logfmt.CALL_FIELDS} == {
            "ext": "101",
            "caller": HOSTILE,
            "result": "BLOCKED",
            "reason": "ext-blocklist",
            "treatment": "busy",
            "entry": "+1303*",
            "outcome": "busy",
            "ms": 1.23,
            "caller_name": NAME,
            "account": "acme",
        }
        assert record["level"] == "info" and record["logger"] == "callscreen.calls"


@pytest.mark.parametrize(
    ("field", "position"),
    [("extension", 0), ("caller", 1), ("entry", 5), ("outcome", 6), ("account", 9)],
)
@pytest.mark.parametrize("text", ["a\x1b[2Jb", "a\u202eb", "a\nb", "a\\b", "Jos\xe9 \ud800"])
def test_every_text_from_outside_is_escaped_in_the_line(
    field: str, position: int, text: str
) -> None:
    """The line is checked field by field, not escaped whole, when all are plain ASCII: a text
    that is not, in any field the line shows, still comes out as inert.text shows it."""
    values = list(call())
    values[1] = "+13035551212"  # only the field under test is hostile
    values[position] = text
    h = handler("text")
    logfmt.CallLines(h).add(CREATED, tuple(values))
    line = h.stream.getvalue()
    assert line.count("\n") == 1 and inert.text(text) in line, field
    assert not inert.has_unsafe(line[:-1])  # no raw control, bidi or surrogate character


def test_the_default_accounts_extension_is_shown_without_an_account() -> None:
    h = handler("text")
    logfmt.CallLines(h).add(CREATED, call(account="default"))
    assert "call to 101 from " in h.stream.getvalue()


def test_lines_wait_for_the_interval_and_close_flushes_them() -> None:
    h = handler("text")

    async def main() -> tuple[str, str, str, logfmt.CallLines]:
        lines = logfmt.CallLines(h, interval=0.05)
        for i in range(500):
            lines.add(CREATED + i, call())
        before = h.stream.getvalue()
        await asyncio.sleep(0.2)
        after_interval = h.stream.getvalue()
        lines.add(CREATED, call())
        lines.close()  # shutdown: what is pending is written now
        at_close = h.stream.getvalue()
        lines.add(CREATED, call())  # after close: at once
        return before, after_interval, at_close, lines

    before, after_interval, at_close, lines = asyncio.run(main())
    assert before == ""  # nothing on the per-call path
    assert after_interval.count("\n") == 500
    assert at_close.count("\n") == 501
    assert h.stream.getvalue().count("\n") == 502
    assert lines.written == 502 and lines.failed == 0 and lines.pending == 0


def test_a_failed_write_is_counted() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("EPIPE")

    h: logging.StreamHandler[Any] = logging.StreamHandler(Broken())
    h.setFormatter(logfmt.TextFormatter(logfmt.TEXT_FORMAT))
    lines = logfmt.CallLines(h)
    lines.add(CREATED, call())
    lines.add(CREATED, call())
    assert lines.failed == 2 and lines.written == 0


def test_call_lines_only_for_the_handler_setup_installed(root_handler: None) -> None:
    logfmt.setup("info", "text")
    assert isinstance(logfmt.call_lines(), logfmt.CallLines)
    logfmt.setup("warning", "text")  # no per-call lines at all
    assert logfmt.call_lines() is None
    logfmt.setup("info", "json")
    got = logfmt.call_lines()
    assert got is not None and got.json
    capture = logging.Handler()
    logging.getLogger().addHandler(capture)  # e.g. pytest's caplog: every record to it
    assert logfmt.call_lines() is None
    logging.getLogger().removeHandler(capture)
    calls = logging.getLogger(logfmt.CALLS_LOGGER)
    calls.addHandler(capture)
    try:
        assert logfmt.call_lines() is None
    finally:
        calls.removeHandler(capture)
