"""callscreen.inert and the outputs built on it: log formats, CSV cells, the stored bound."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callscreen import inert, logfmt

#: What must never be written raw to a terminal or a log: C0 but LF, DEL, C1, bidi controls,
#: line/paragraph separators, surrogates.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
HOSTILE = "\x1b[2J\x1b]0;pwned\x07[bold]X[/bold]\u202eevil\u202c\r\nforged\x9b\\x1b\t\x00\x7f"


# -- text ------------------------------------------------------------------------------------
def test_text_shows_controls_and_bidi_as_escapes() -> None:
    assert inert.text("\x1b[2J") == "\\x1b[2J"
    assert inert.text("a\r\nb\tc\x00\x7f\x9b") == "a\\x0d\\x0ab\\x09c\\x00\\x7f\\x9b"
    assert inert.text("\u202eevil\u202c\u2066\u2069") == "\\u202eevil\\u202c\\u2066\\u2069"
    assert inert.text("\u2028\u2029\u200e\u200f\u061c") == "\\u2028\\u2029\\u200e\\u200f\\u061c"
    assert inert.text("\ud800") == "\\ud800"


def test_text_escapes_exactly_the_ascii_controls_del_and_backslash() -> None:
    """Plain ASCII takes a shortcut (no regex scan): it must escape the same characters."""
    for c in map(chr, range(128)):
        unsafe = ord(c) < 0x20 or c in "\x7f\\"
        assert (inert.text(f"+1303{c}555") != f"+1303{c}555") is unsafe, repr(c)


def test_text_doubles_backslashes_so_a_typed_escape_is_not_a_sent_one() -> None:
    typed, sent = "\\x1b", "\x1b"
    assert inert.text(typed) == "\\\\x1b"
    assert inert.text(sent) == "\\x1b"
    assert inert.text(typed) != inert.text(sent)


def test_text_leaves_plain_text_alone_and_returns_the_same_object() -> None:
    for value in ("+13035551212", "Jürgen Müller", "[bold]X[/bold]", "<script>", "日本語 ☎", ""):
        assert inert.text(value) is value


@given(st.text())
def test_text_is_inert_and_reversible(value: str) -> None:
    shown = inert.text(value)
    assert UNSAFE.search(shown) is None and "\n" not in shown
    assert inert.unescape(shown) == value


def test_text_fast_path_is_fast() -> None:
    """The per-call log line runs it: plain text costs one scan (well under 2 us here)."""
    import timeit

    n = 20_000
    per_call = min(timeit.repeat(lambda: inert.text("+13035551212"), number=n, repeat=3)) / n
    assert per_call < 2e-6, per_call


# -- json_safe -------------------------------------------------------------------------------
@given(st.text())
def test_json_safe_keeps_the_exact_value_without_raw_controls(value: str) -> None:
    doc = inert.json_safe(json.dumps({"caller": value}, ensure_ascii=False))
    assert UNSAFE.search(doc) is None and "\n" not in doc
    assert json.loads(doc) == {"caller": value}


# -- bound -----------------------------------------------------------------------------------
def test_bound_keeps_short_values_and_marks_the_cut() -> None:
    assert inert.bound("x" * 256) == "x" * 256
    cut = inert.bound("x" * 2048)
    assert len(cut) == 256
    assert cut.endswith("…[+1806 chars]") and cut.startswith("x" * 242)
    assert len(inert.bound("x" * 257)) == 256


@given(st.text(max_size=3000), st.integers(min_value=20, max_value=400))
def test_bound_never_exceeds_the_limit_and_counts_what_it_cut(value: str, limit: int) -> None:
    out = inert.bound(value, limit)
    assert len(out) <= limit
    if len(value) <= limit:
        assert out == value
    else:
        m = re.search(r"…\[\+(\d+) chars\]$", out)
        assert m is not None
        kept = out[: m.start()]
        assert value.startswith(kept) and len(kept) + int(m.group(1)) == len(value)


# -- CSV cells -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 303 555 1212", "'+1 303 555 1212"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),  # a note that starts with a quote before a formula start
        ("''", "'''"),
        ("'hello", "'hello"),  # nothing a spreadsheet or import would misread
        ("spam", "spam"),
        ("", ""),
    ],
)
def test_csv_cell_neutralises_formula_starts(value: str, cell: str) -> None:
    assert inert.csv_cell(value) == cell
    assert inert.csv_value(cell) == value


@given(st.text())
def test_csv_cell_round_trips_and_never_starts_a_formula(value: str) -> None:
    cell = inert.csv_cell(value)
    assert inert.csv_value(cell) == value
    assert cell[:1] not in inert.FORMULA_START


# -- log formats -----------------------------------------------------------------------------
def _record(caller: str, name: str | None = None) -> logging.LogRecord:
    record = logging.LogRecord(
        "callscreen.calls",
        logging.INFO,
        __file__,
        1,
        "call to %s from %s: %s",
        ("101", caller, "ALLOWED"),
        None,
    )
    record.call = ("101", caller, "ALLOWED", "not-listed", None, None, None, 0.1, name)
    return record


def test_text_log_line_cannot_be_split_or_drive_a_terminal() -> None:
    line = logfmt.TextFormatter(logfmt.TEXT_FORMAT).format(_record(HOSTILE))
    assert "\n" not in line and UNSAFE.search(line) is None
    shown = line.split(" from ", 1)[1].rsplit(": ALLOWED", 1)[0]
    assert inert.unescape(shown) == HOSTILE
    assert "[bold]X[/bold]" in line and "\\x1b[2J" in line and "\\u202e" in line


def test_text_log_escapes_exception_lines_too() -> None:
    try:
        raise ValueError("bad caller \x1b[2J\u202e")
    except ValueError:
        record = _record("x")
        record.exc_info = sys.exc_info()
    out = logfmt.TextFormatter(logfmt.TEXT_FORMAT).format(record)
    assert UNSAFE.search(out) is None
    assert "bad caller \\x1b[2J\\u202e" in out


def test_json_log_holds_the_exact_caller_and_no_raw_control() -> None:
    out = logfmt.JsonFormatter().format(_record(HOSTILE, HOSTILE[::-1]))
    assert "\n" not in out and UNSAFE.search(out) is None
    data = json.loads(out)
    assert data["caller"] == HOSTILE and data["caller_name"] == HOSTILE[::-1]
    assert data["message"] == f"call to 101 from {HOSTILE}: ALLOWED"


@given(st.text(), st.text())
def test_log_lines_are_inert_for_any_caller(caller: str, name: str) -> None:
    text_line = logfmt.TextFormatter(logfmt.TEXT_FORMAT).format(_record(caller, name))
    assert "\n" not in text_line and UNSAFE.search(text_line) is None
    json_line = logfmt.JsonFormatter().format(_record(caller, name))
    assert "\n" not in json_line and UNSAFE.search(json_line) is None
    data = json.loads(json_line)
    assert (data["caller"], data["caller_name"]) == (caller, name)


def test_setup_installs_the_inert_formatters() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        for fmt, kind in (("text", logfmt.TextFormatter), ("json", logfmt.JsonFormatter)):
            logfmt.setup("info", fmt)
            assert isinstance(root.handlers[0].formatter, kind)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_server_log_line_of_a_hostile_call(capsys: pytest.CaptureFixture[str]) -> None:
    """The screener's own call line, through the text handler on stderr."""
    from callscreen.numbers import caller_from
    from callscreen.policy import FAIL_OPEN
    from callscreen.screening import Screener

    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logfmt.TextFormatter(logfmt.TEXT_FORMAT))
    log = logging.getLogger("callscreen.calls")
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        Screener._log(0.0, "101", caller_from(HOSTILE), "Mallory\x1b", "acme\x1b", FAIL_OPEN, "")
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    assert isinstance(handler.stream, io.StringIO)
    out = handler.stream.getvalue()
    assert out.count("\n") == 1 and UNSAFE.search(out) is None
    assert inert.text(HOSTILE) in out
