"""Hostile caller IDs through a real Asterisk (PJSIP): what the admin sees is the caller as
sent, inert.

Each case is a raw SIP INVITE whose From header carries what an attacker would put there
(escape sequences and rich markup in the user part, HTML and bidi overrides in the display
name, a 2 KB name). Asterisk decodes the user part (%1B becomes ESC) and hands both to the
server as agi_callerid / agi_calleridname. The expected values below are what Asterisk 22
really delivers (observed, not assumed): e.g. it cuts the user part at the decoded ';' and the
display name at 79 characters, and keeps the backslash of an escaped quote.

The bed's sip-inbound context runs the shipped routine and then Hangup(17): every INVITE ends
in 486 Busy Here, which the test ACKs, and no channel is left behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callscreen import inert

from . import sip
from .bed import Asterisk, Cli, Server

pytestmark = pytest.mark.e2e

EXT = "301"
BUSY_HERE = 486


@dataclass(frozen=True)
class Case:
    name: str
    from_header: str
    raw: str  # agi_callerid as Asterisk delivers it
    caller_name: str | None  # agi_calleridname, None: check only that it is bounded
    blocked: bool = False  # on the extension's block list (the server answers Busy itself)


CASES = [
    Case(
        "escapes in the user part",
        '"Mallory" <sip:%1B%5B2J%1B%5D0%3Bpwned@127.0.0.1>',
        "\x1b[2J\x1b]0",  # ESC [2J (clear screen) ESC ]0 (set title); cut at ';'
        "Mallory",
    ),
    Case(
        "rich markup in the user part and the name",
        '"[bold]Y[/bold]" <sip:%5Bbold%5DX%5B%2Fbold%5D@127.0.0.1>',
        "[bold]X[/bold]",
        "[bold]Y[/bold]",
    ),
    Case(
        "a script tag in the name",
        '"<script>alert(1)</script>" <sip:+13035550101@127.0.0.1>',
        "+13035550101",
        "<script>alert(1)</script>",
        blocked=True,
    ),
    Case(
        "an attribute breakout in the name",
        '"\\"><img src=x onerror=alert(1)>" <sip:+13035550102@127.0.0.1>',
        "+13035550102",
        '\\"><img src=x onerror=alert(1)>',  # Asterisk keeps the quoted-pair's backslash
    ),
    Case(
        "bidi overrides",
        '"\u202eevil\u202c" <sip:%E2%80%AE1212@127.0.0.1>',
        "\u202e1212",
        "\u202eevil\u202c",
    ),
    Case(
        "a C1 control (CSI)",
        '"\u009b2J c1" <sip:%C2%9B2J@127.0.0.1>',
        "\x9b2J",
        "\x9b2J c1",
    ),
    Case(
        "a tab in the name", '"tab\there" <sip:+13035550103@127.0.0.1>', "+13035550103", "tab\there"
    ),
    Case(
        "a 2 KB user part of escapes",
        '"long" <sip:' + "%1B" * 700 + "@127.0.0.1>",
        "\x1b" * 79,  # Asterisk 22 cuts the number at 79 characters too
        "long",
    ),
    Case("a 2 KB name", '"' + "A" * 2048 + '" <sip:+13035550104@127.0.0.1>', "+13035550104", None),
]

BLOCKED_NUMBER = "+13035550101"
BLOCK_NOTE = "[bold]spam[/bold] \x1b[2J"  # typed text: shown as typed, inert

#: Characters that must never reach a terminal or a log file raw.
RAW_FORBIDDEN = ("\x1b", "\x9b", "\u202e", "\u202c", "\t")


@dataclass
class Run:
    cli: Cli
    server_log: str
    finals: list[int]
    channels_left: int


def _run(root: Path, logs: Path, db: Path, log_format: str) -> Run:
    """A server (log format as given) and an Asterisk of its own; every case placed once."""
    server = Server(db, logs, None, "--log-format", log_format)
    server.start()
    try:
        cli = Cli(db)
        cli("ext", "set", EXT, "--enable", "--treatment", "busy")
        cli("block", "add", "--ext", EXT, BLOCKED_NUMBER, "--note", BLOCK_NOTE)
        asterisk = Asterisk(root, server.port, logs)
        asterisk.start()
        try:
            finals = [sip.invite(asterisk.sip_port, EXT, c.from_header).final for c in CASES]
            deadline = time.monotonic() + 10
            while len(cli.json("log", "--ext", EXT)) < len(CASES):  # written in batches
                assert time.monotonic() < deadline, cli("log")
                time.sleep(0.1)
            left = asterisk.wait_no_channels()
        finally:
            asterisk.stop()
    finally:
        server.stop()
    return Run(cli, server.log.read_text(encoding="utf-8"), finals, left)


@pytest.fixture(scope="module")
def text_run(e2e_ready: Path, e2e_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(e2e_ready, e2e_logs, tmp_path_factory.mktemp("hostile") / "t.db", "text")


@pytest.fixture(scope="module")
def json_run(e2e_ready: Path, e2e_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(e2e_ready, e2e_logs, tmp_path_factory.mktemp("hostile") / "j.db", "json")


def _inert(output: str) -> None:
    for c in RAW_FORBIDDEN:
        assert c not in output, f"raw {c!r} in output:\n{output}"
    assert all(ch == "\n" or ch >= " " for ch in output), output


def _logged(run: Run) -> Iterator[tuple[Case, dict[str, object]]]:
    rows = list(reversed(run.cli.json("log", "--ext", EXT)))  # oldest first: the case order
    assert len(rows) == len(CASES)
    return zip(CASES, rows, strict=True)


def test_every_invite_ends_busy_and_leaves_no_channel(text_run: Run, json_run: Run) -> None:
    for run in (text_run, json_run):
        assert run.finals == [BUSY_HERE] * len(CASES)
        assert run.channels_left == 0


def test_log_json_holds_the_caller_exactly_as_sent(text_run: Run) -> None:
    raw_json = text_run.cli.run("log", "--ext", EXT, "--json").stdout
    assert raw_json.isascii(), "C1 and bidi characters are \\u escapes in --json"
    for case, row in _logged(text_run):
        assert row["caller_raw"] == case.raw, case.name
        if case.caller_name is not None:
            assert row["caller_name"] == case.caller_name, case.name
        assert row["result"] == ("BLOCKED" if case.blocked else "ALLOWED"), case.name
    rows = {case.name: row for case, row in _logged(text_run)}
    name = rows["a 2 KB name"]["caller_name"]
    # Asterisk cuts a name at 79 characters; the store would cut at 256 (marked).
    assert isinstance(name, str) and name.startswith("A" * 64) and len(name) <= inert.MAX_STORED


def test_log_table_shows_the_caller_inertly(text_run: Run) -> None:
    out = text_run.cli("log", "--ext", EXT)
    _inert(out)
    for case in CASES:
        for value in (case.raw, case.caller_name):
            if value is not None and len(inert.text(value)) <= 60:  # longer ones fold
                assert inert.text(value) in out, case.name
    assert "\\x1b[2J\\x1b]0" in out  # the escape sequence shown, not run
    assert "[bold]X[/bold]" in out and "[bold]Y[/bold]" in out  # markup shown, not applied
    assert "\\u202e1212" in out


def test_stats_and_check_show_the_caller_inertly(text_run: Run) -> None:
    cli = text_run.cli
    stats = cli("stats", "--ext", EXT)
    _inert(stats)
    assert BLOCKED_NUMBER in stats  # the entry that matched
    data = cli.json("stats", "--ext", EXT)
    assert (data["calls"], data["blocked"]) == (len(CASES), 1)
    listed = cli("block", "list", "--ext", EXT)
    _inert(listed)
    assert inert.text(BLOCK_NOTE) in listed and "[bold]spam[/bold]" in listed
    # check: a caller ID with the presentation restricted is anonymous whatever its text
    res = cli.run("check", "--ext", EXT, "--callingpres", "32", CASES[0].raw)
    _inert(res.stdout)
    assert "\\x1b[2J\\x1b]0 (anonymous)" in res.stdout
    got = json.loads(
        cli.run("check", "--ext", EXT, "--callingpres", "32", CASES[0].raw, "--json").stdout
    )
    assert got["caller"]["raw"] == CASES[0].raw


def test_server_text_log_escapes_every_caller(text_run: Run) -> None:
    log = text_run.server_log
    _inert(log)
    lines = [line for line in log.splitlines() if f"call to {EXT} from " in line]
    assert len(lines) == len(CASES), log  # one line per call: nothing split a line
    for case in CASES:  # (a blocked call's line comes when its treatment ends: any order)
        result = "BLOCKED" if case.blocked else "ALLOWED"
        assert any(f"from {inert.text(case.raw)}: {result}" in line for line in lines), case.name


def test_server_json_log_round_trips_every_caller(json_run: Run) -> None:
    log = json_run.server_log
    _inert(log)
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    calls = {r["caller"]: r for r in records if r.get("ext") == EXT}
    assert len(calls) == len(CASES)
    for case in CASES:
        record = calls[case.raw]
        if case.caller_name is not None:
            assert record["caller_name"] == case.caller_name, case.name
        assert record["result"] == ("BLOCKED" if case.blocked else "ALLOWED"), case.name
