"""What an admin reads in ``callscreen serve``'s log, per call (issue #16): one line per call by
default (written in batches), none with ``--log-level warning``, every line written by the time
the process exits, and the database call log complete either way."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from .fake_asterisk import place_call
from .serve_process import CLI, ServeProcess

CALLER = "+13035551212"


def _setup(db: Path) -> None:
    cli = [*CLI, "--db", str(db)]
    subprocess.run([*cli, "block", "add", "--ext", "102", CALLER], check=True, capture_output=True)
    subprocess.run(
        [*cli, "ext", "set", "102", "--enable", "--treatment", "busy"],
        check=True,
        capture_output=True,
    )


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM call_log").fetchone()[0])


async def _calls(port: int, n: int) -> None:
    # Half allowed (101 has no list), half blocked with Busy (102).
    await asyncio.gather(
        *(place_call(port, ext="102" if i % 2 else "101", callerid=CALLER) for i in range(n))
    )


def test_default_one_line_per_call_all_written_at_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "cs.db"
    _setup(db)
    srv = ServeProcess(db)
    asyncio.run(_calls(srv.port, 300))
    out = srv.stop()  # at once: lines still in the batch are written at shutdown
    lines = [line for line in out.splitlines() if " INFO callscreen.calls: call to " in line]
    assert len(lines) == 300, out[-2000:]
    allowed = [
        line for line in lines if re.search(r"call to 101 from \+13035551212: ALLOWED ", line)
    ]
    blocked = [
        line
        for line in lines
        if "call to 102 from +13035551212: BLOCKED ext-blocklist busy [+13035551212] -> busy"
        in line
    ]
    assert len(allowed) == 150 and len(blocked) == 150
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO callscreen\.calls: ", lines[0])
    assert srv.proc.returncode == 0
    assert _rows(db) == 300


def test_json_lines_carry_the_call_fields(tmp_path: Path) -> None:
    db = tmp_path / "cs.db"
    _setup(db)
    srv = ServeProcess(db, "--log-format", "json")
    asyncio.run(_calls(srv.port, 20))
    out = srv.stop()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    calls = [r for r in records if r["logger"] == "callscreen.calls"]
    assert len(calls) == 20
    blocked = [r for r in calls if r["ext"] == "102"]
    assert len(blocked) == 10
    assert blocked[0]["result"] == "BLOCKED" and blocked[0]["treatment"] == "busy"
    assert blocked[0]["outcome"] == "busy" and blocked[0]["caller"] == CALLER
    assert isinstance(blocked[0]["ms"], float) and blocked[0]["caller_name"] == "Test Caller"


def test_log_level_warning_has_no_call_lines_but_the_call_log_is_complete(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cs.db"
    _setup(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*CLI, "--db", str(db), "serve", "--port", str(port), "--log-level", "warning"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # nothing at info: wait for the port to answer
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "did not start"
                time.sleep(0.05)
        asyncio.run(_calls(port, 50))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, out = proc.communicate(timeout=15)
    assert "call to " not in out
    assert proc.returncode == 0
    assert _rows(db) == 50
