"""``log``, ``stats`` and ``block last`` over a call log written like the server writes it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callscreen.db.store import CallRecord, Store

from .test_cli import Run

NOW = time.time()


@pytest.fixture
def run(db_url: Path | str, capsys: pytest.CaptureFixture[str]) -> Run:
    """The CLI on a new database, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    return Run(db_url, capsys)  # type: ignore[arg-type]


def call(
    ago: float,
    ext: str,
    caller: str,
    result: str = "ALLOWED",
    reason: str = "not-listed",
    treatment: str | None = None,
    entry_id: int | None = None,
) -> CallRecord:
    e164 = caller if caller.startswith("+") else None
    return CallRecord(NOW - ago, ext, caller, e164, result, reason, treatment, entry_id, 0.5, "u")


def log_calls(db: Path, *calls: CallRecord) -> None:
    async def go() -> None:
        async with await Store.open(db) as s:
            hits: dict[int, tuple[int, float]] = {}
            for c in calls:
                if c.entry_id is not None:
                    n, _ = hits.get(c.entry_id, (0, 0.0))
                    hits[c.entry_id] = (n + 1, c.time)
            await s.write_calls(list(calls), hits)

    asyncio.run(go())


@pytest.fixture
def logged(run: Run) -> Run:
    """Entries 1 (+13035551212 on 101) and 2 (+1900* on the account), 1 never matching, and
    six calls over two days."""
    run("block", "add", "--ext", "101", "+13035551212")
    run("block", "add", "--account", "+1900*")
    run("block", "add", "--ext", "102", "+17205550000")
    log_calls(
        run.db,
        call(2 * 86400, "101", "+13035551212", "BLOCKED", "ext-blocklist", "busy", 1),
        call(3600 * 5, "101", "+13035551212", "BLOCKED", "ext-blocklist", "voicemail", 1),
        call(3600 * 4, "102", "+19005550100", "BLOCKED", "account-blocklist", "busy", 2),
        call(3600 * 3, "101", "anonymous", "BLOCKED", "anonymous", "torture"),
        call(3600 * 2, "102", "+17205551111", "ALLOWED", "blocking-off"),
        call(60, "101", "+17205552222", "ALLOWED", "not-listed"),
    )
    return run


def test_log_newest_first_with_filters(logged: Run) -> None:
    rows = logged.json("log")
    assert [r["caller_raw"] for r in rows] == [
        "+17205552222",
        "+17205551111",
        "anonymous",
        "+19005550100",
        "+13035551212",
        "+13035551212",
    ]
    first = rows[-1]
    assert set(first) == {
        "id",
        "time",
        "ext",
        "caller_raw",
        "caller_e164",
        "result",
        "reason",
        "treatment",
        "entry_id",
        "entry",
        "duration",
        "uniqueid",
        "caller_name",
    }
    assert (first["entry"], first["treatment"], first["result"]) == (
        "+13035551212",
        "busy",
        "BLOCKED",
    )
    assert rows[3]["entry"] == "+1900*"
    assert len(logged.json("log", "--result", "blocked")) == 4
    assert [r["ext"] for r in logged.json("log", "--ext", "102")] == ["102", "102"]
    assert len(logged.json("log", "--since", "1d")) == 5
    assert len(logged.json("log", "--since", "90m")) == 1
    assert len(logged.json("log", "--limit", "2", "--result", "allowed", "--ext", "101")) == 1
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW - 86400))
    assert len(logged.json("log", "--since", day)) >= 5
    assert "+17205552222" in logged("log")  # the table


def test_log_and_stats_on_an_empty_database(run: Run) -> None:
    assert run.json("log") == []
    assert "call log" in run("log")
    d = run.json("stats")
    assert (d["calls"], d["blocked"], d["top_blocked_numbers"], d["never_matched"]["count"]) == (
        0,
        0,
        [],
        0,
    )
    assert "calls screened" in run("stats")


def test_stats_counts_and_shape(logged: Run) -> None:
    d = logged.json("stats")
    assert set(d) == {
        "ext",
        "since",
        "calls",
        "allowed",
        "blocked",
        "allowed_by_reason",
        "blocked_by_reason",
        "blocked_by_treatment",
        "top_blocked_numbers",
        "entries_matched",
        "top_entries",
        "never_matched",
    }
    assert (d["calls"], d["allowed"], d["blocked"]) == (6, 2, 4)
    assert d["blocked_by_reason"] == {"ext-blocklist": 2, "account-blocklist": 1, "anonymous": 1}
    assert d["blocked_by_treatment"] == {"busy": 2, "torture": 1, "voicemail": 1}
    assert d["allowed_by_reason"] == {"blocking-off": 1, "not-listed": 1}
    assert [(n["number"], n["calls"]) for n in d["top_blocked_numbers"]] == [
        ("+13035551212", 2),
        (None, 1),
        ("+19005550100", 1),
    ]
    assert [(e["pattern"], e["calls"], e["hits_all_time"]) for e in d["top_entries"]] == [
        ("+13035551212", 2, 2),
        ("+1900*", 1, 1),
    ]
    assert d["top_entries"][1]["scope"] == "account"
    assert d["never_matched"]["count"] == 1
    assert d["never_matched"]["oldest"][0]["pattern"] == "+17205550000"
    d = logged.json("stats", "--ext", "101", "--since", "1d")
    assert (d["ext"], d["calls"], d["blocked"]) == ("101", 3, 2)
    assert d["since"].endswith("Z")
    assert d["never_matched"]["count"] == 0  # 102's entry is not 101's
    table = logged("stats", "--top", "1")
    assert "+13035551212" in table and "never matched" in table


@pytest.mark.parametrize(
    "args",
    [
        ["log", "--since", "yesterday"],
        ["log", "--result", "maybe"],
        ["log", "--ext", "1 01"],
        ["log", "--limit", "0"],
        ["stats", "--since", "0d"],
        ["stats", "--ext", "a,b"],
        ["stats", "--top", "0"],
        ["block", "last"],
        ["block", "last", "--ext", "x y"],
        ["block", "last", "--ext", "101", "--for", "1d", "--until", "2099-01-01"],
        ["block", "add", "--ext", "101", "3035551212", "--for", "soon"],
        ["block", "add", "--ext", "101", "3035551212", "--until", "2001-01-01"],
        ["block", "list", "--ext", "101", "--limit", "0"],
        ["block", "list", "--ext", "101", "--offset", "-1"],
    ],
)
def test_bad_input_is_one_line_exit_2(run: Run, args: list[str]) -> None:
    run(*args, code=2)
    assert run.json("block", "list", "--ext", "101") == []


def test_block_last(run: Run) -> None:
    err = run("block", "last", "--ext", "101", code=1)
    assert "no call to extension 101 got through yet" in err
    log_calls(
        run.db,
        call(30, "101", "+13035551212"),
        call(20, "101", "+19005550100", "BLOCKED", "ext-blocklist", "busy", 7),  # not rung
        call(10, "102", "+17205550000"),
    )
    d = run.json("block", "last", "--ext", "101")
    assert d == {
        "ext": "101",
        "number": "+13035551212",
        "raw": "+13035551212",
        "call_time": d["call_time"],
        "added": True,
        "blocking_on": False,
    }
    assert [i["note"] for i in run.json("block", "list", "--ext", "101")] == [
        "blocked with block last"
    ]
    assert run.json("block", "last", "--ext", "101")["added"] is False
    run("ext", "set", "101", "--enable")
    out = run("block", "last", "--ext", "101", "--for", "7d")
    assert out.startswith("already listed: +13035551212")
    log_calls(run.db, call(5, "101", "anonymous"))
    err = run("block", "last", "--ext", "101", code=1)
    assert "had no number ('anonymous'): nothing to block" in err
    assert run.json("check", "--ext", "101", "3035551212")["result"] == "BLOCKED"


def test_log_follow_prints_new_calls(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    log_calls(db, call(10, "101", "+13035550001"), call(5, "101", "+13035550002"))
    cli = [sys.executable, "-m", "callscreen", "--db", str(db)]
    proc = subprocess.Popen(
        [*cli, "log", "--follow", "--json", "--interval", "0.1", "--limit", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [c["caller_raw"] for c in first] == ["+13035550001", "+13035550002"]  # oldest 1st
        log_calls(db, call(100, "102", "+13035550003"), call(0, "101", "+13035550004"))
        new = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [c["caller_raw"] for c in new] == ["+13035550003", "+13035550004"]  # write order
    finally:
        proc.send_signal(2)  # Ctrl-C
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""


# -- hostile callers: shown as sent, inert -------------------------------------------------------
HOSTILE = "\x1b[2J\x1b]0;pwned\x07[bold]X[/bold]\u202eevil\x9b"


def _no_raw_control(out: str) -> None:
    assert all(c == "\n" or (c >= " " and not "\x7f" <= c <= "\x9f") for c in out), out
    assert "\u202e" not in out


def test_log_shows_a_hostile_caller_as_text(run: Run) -> None:
    hostile = CallRecord(NOW, "101", HOSTILE, None, "ALLOWED", "not-listed", None, None, 0.5)
    named = CallRecord(
        NOW - 1,
        "101",
        "+13035551212",
        "+13035551212",
        "ALLOWED",
        "not-listed",
        None,
        None,
        0.5,
        caller_name="[red]Bank[/red] \x1b]0;title\x07",
    )
    log_calls(run.db, hostile, named)
    out = run("log")
    _no_raw_control(out)
    assert "\\x1b[2J\\x1b]0;pwned\\x07[bold]X[/bold]\\u202eevil\\x9b" in out
    assert "[red]Bank[/red] \\x1b]0;title\\x07" in out  # markup shown, not applied
    rows = run.json("log")
    assert isinstance(rows, list)
    assert rows[0]["caller_raw"] == HOSTILE and rows[0]["caller_name"] is None
    assert rows[1]["caller_name"] == "[red]Bank[/red] \x1b]0;title\x07"
    raw_json = run("log", "--json")
    assert raw_json.isascii() and "\x1b" not in raw_json


def test_call_log_bounds_the_caller_number_and_name(run: Run) -> None:
    big = CallRecord(
        NOW,
        "101",
        "9" * 2048,
        None,
        "ALLOWED",
        "not-listed",
        None,
        None,
        0.5,
        caller_name="N" * 300,
    )
    log_calls(run.db, big)
    (row,) = run.json("log")  # type: ignore[misc]
    assert row["caller_raw"] == "9" * 242 + "…[+1806 chars]"
    assert row["caller_name"] == "N" * 244 + "…[+56 chars]"
    assert len(row["caller_raw"]) == len(row["caller_name"]) == 256


def test_block_list_check_and_block_last_show_typed_text_inertly(run: Run) -> None:
    note = "[bold]n[/bold]\x1b[31m\u202e"
    run("block", "add", "--ext", "101", "+13035551212", "--note", note)
    out = run("block", "list", "--ext", "101")
    _no_raw_control(out)
    assert "[bold]n[/bold]\\x1b[31m\\u202e" in out
    (entry,) = run.json("block", "list", "--ext", "101")  # type: ignore[misc]
    assert entry["note"] == note
    run("ext", "set", "101", "--enable")
    out = run("check", "--ext", "101", "--callingpres", "32", HOSTILE)
    _no_raw_control(out)
    assert "\\x1b[2J" in out and "[bold]X[/bold]" in out
    checked = run.json("check", "--ext", "101", "--callingpres", "32", HOSTILE)
    assert checked["caller"]["raw"] == HOSTILE  # type: ignore[index]
    log_calls(
        run.db,
        CallRecord(NOW, "102", f"+1 720 555 0000{HOSTILE}", None, "ALLOWED", "x", None, None, 0.1),
    )
    err = run("block", "last", "--ext", "102", code=1)
    _no_raw_control(err)
    assert "\\x1b[2J" in err


def test_stats_show_hostile_entries_inertly(run: Run) -> None:
    run("block", "add", "--ext", "101", "+13035551212", "--note", "\x1b[2J")
    log_calls(
        run.db,
        CallRecord(NOW, "101", HOSTILE, None, "BLOCKED", "anonymous", "busy", None, 0.5),
        CallRecord(
            NOW, "101", "+13035551212", "+13035551212", "BLOCKED", "ext-blocklist", "busy", 1, 0.5
        ),
    )
    out = run("stats")
    _no_raw_control(out)
    assert run.json("stats")["blocked"] == 2  # type: ignore[index]
