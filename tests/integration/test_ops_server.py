"""Operations against the running server: the *32 route, /metrics and /health, JSON logs,
doctor's probe."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callscreen import doctor
from callscreen.app import Config, Server
from callscreen.db import CallRecord, Store
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .fake_asterisk import place_call


async def block_last(port: int, *args: str) -> dict[str, str]:
    t = await place_call(port, script="block-last", args=list(args))
    assert t.closed_by_server and t.apps == ["MSet"]
    return t.variables


def logged_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM call_log").fetchone()[0])


async def test_block_last_right_after_the_call_before_the_log_is_written(
    server: Server, port: int, store: Store
) -> None:
    assert server.recorder is not None
    server.recorder.interval = 60  # the batched call-log write will not happen during the test
    await asyncio.sleep(0.3)
    t = await place_call(port, ext="101", callerid="303-555-1212")
    assert t.apps == ["MSet"]  # allowed: it rang
    v = await block_last(port, "101")
    assert v == {"CALLSCREEN_BLOCK_STATUS": "ADDED", "CALLSCREEN_BLOCKED_NUMBER": "+13035551212"}
    assert logged_rows(server.config.db) == 0  # decided from memory, not from the log
    entries = await store.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    assert [(e.entry.pattern, e.entry.raw) for e in entries] == [("+13035551212", "303-555-1212")]
    assert (await block_last(port, "101"))["CALLSCREEN_BLOCK_STATUS"] == "ALREADY"
    # A *32 is audited like any change: source phone, the extension, the Asterisk host.
    audit = await store.audit_log()
    assert [(a.actor, a.source, a.action, a.target) for a in audit] == [
        ("ext:101", "phone", "block.last", "ext:101")
    ] * 2
    assert audit[0].ip == "127.0.0.1"
    assert audit[1].after == {"added": ["+13035551212"], "already_listed": []}
    # Once blocking is on, the next call from that number is blocked.
    await store.set_extension("101", enabled=True)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"]


async def test_block_last_statuses(server: Server, port: int, store: Store) -> None:
    assert (await block_last(port, "101"))["CALLSCREEN_BLOCK_STATUS"] == "NOCALLER"
    await place_call(port, ext="101", callerid="anonymous", callingpres=67)
    v = await block_last(port, "101")
    assert v == {"CALLSCREEN_BLOCK_STATUS": "ANONYMOUS", "CALLSCREEN_BLOCKED_NUMBER": ""}
    assert (await block_last(port))["CALLSCREEN_BLOCK_STATUS"] == "ERROR"  # no extension
    assert (await block_last(port, "1 0 1"))["CALLSCREEN_BLOCK_STATUS"] == "ERROR"
    # A blocked call never rang: the last caller stays the one before.
    await place_call(port, ext="102", callerid="+17205550000")
    await store.add_entries(Scope.EXTENSION, "102", Kind.BLOCK, [parse_pattern("+1900*")])
    await store.set_extension("102", enabled=True)
    assert (await place_call(port, ext="102", callerid="+19005550100")).apps == ["MSet", "Busy"]
    v = await block_last(port, "102")
    assert v["CALLSCREEN_BLOCKED_NUMBER"] == "+17205550000"
    assert server.screener is not None
    assert server.screener.metrics.block_last == {
        "NOCALLER": 1,
        "ANONYMOUS": 1,
        "ERROR": 2,
        "ADDED": 1,
    }


async def test_block_last_from_the_call_log_after_a_restart(
    server: Server, port: int, store: Store
) -> None:
    """The server's memory is empty after a restart: the call log answers."""
    now = time.time()
    await store.write_calls(
        [
            CallRecord(
                now - 60, "101", "3035551212", "+13035551212", "ALLOWED", "x", None, None, 1
            ),
            CallRecord(now - 30, "101", "x", "+19005550100", "BLOCKED", "x", "busy", None, 1),
        ],
        {},
    )
    v = await block_last(port, "101")
    assert v == {"CALLSCREEN_BLOCK_STATUS": "ADDED", "CALLSCREEN_BLOCKED_NUMBER": "+13035551212"}
    # A newer call in memory wins over the log.
    await place_call(port, ext="101", callerid="+17205551234")
    assert (await block_last(port, "101"))["CALLSCREEN_BLOCKED_NUMBER"] == "+17205551234"


# -- metrics and health -------------------------------------------------------------------------
@pytest.fixture
async def metered(tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(
        Config(db=tmp_path / "m.db", port=0, metrics_port=0, torture_wait=1, reply_timeout=1.0)
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def http(port: int, request: bytes) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


async def test_metrics_and_health(metered: Server) -> None:
    agi = metered.addresses[0][1]
    mport = metered.metrics_addresses[0][1]
    assert metered.store is not None
    await metered.store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+1900*")])
    await metered.store.set_extension("101", enabled=True)
    await place_call(agi, ext="101", callerid="+19005550100")
    await place_call(agi, ext="101", callerid="+13035551212")
    await place_call(agi, ext="101", callerid="+13035551212")
    status, body = await http(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == "HTTP/1.0 200 OK"
    assert (
        'callscreen_calls_total{result="BLOCKED",reason="ext-blocklist",treatment="busy"} 1' in body
    )
    assert 'callscreen_calls_total{result="ALLOWED",reason="not-listed",treatment=""} 2' in body
    assert 'callscreen_decision_seconds_bucket{le="+Inf"} 3' in body
    assert "callscreen_decision_seconds_count 3" in body
    for name in (
        "callscreen_open_connections 0",
        "callscreen_held_calls 0",
        'callscreen_db_errors_total{op="decide"} 0',
        "callscreen_call_log_queue",
        'callscreen_connections_total{outcome="accepted"} 3',
    ):
        assert name in body, name
    # Every series has HELP and TYPE, every sample line parses.
    for line in body.splitlines():
        assert line.startswith("# ") or re.match(r"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", line), line
    assert await http(mport, b"GET /health HTTP/1.0\r\n\r\n") == ("HTTP/1.0 200 OK", "ok\n")
    assert (await http(mport, b"GET /nope HTTP/1.0\r\n\r\n"))[0] == "HTTP/1.0 404 Not Found"
    assert (await http(mport, b"POST /metrics HTTP/1.0\r\n\r\n"))[0].startswith("HTTP/1.0 405")
    assert (await http(mport, b"garbage\r\n\r\n"))[0].startswith("HTTP/1.0 405")
    # The database breaks: /health says so (and calls still fail open).
    with sqlite3.connect(metered.config.db) as conn:
        conn.execute("ALTER TABLE entries RENAME TO entries_broken")
    status, body = await http(mport, b"GET /health HTTP/1.0\r\n\r\n")
    assert status == "HTTP/1.0 503 Service Unavailable" and body.startswith("database:")
    await place_call(agi, ext="101", callerid="+13035551212")
    _, body = await http(mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert 'callscreen_db_errors_total{op="decide"} 1' in body


async def test_held_call_shows_in_metrics(metered: Server) -> None:
    from callscreen.policy import Treatment

    from .fake_asterisk import Channel

    agi, mport = metered.addresses[0][1], metered.metrics_addresses[0][1]
    assert metered.store is not None
    await metered.store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+1900*")])
    await metered.store.set_extension("101", enabled=True, treatment=Treatment.TORTURE)
    call = asyncio.create_task(
        place_call(agi, ext="101", callerid="+19005550100", channel=Channel(patience=2.0))
    )
    await asyncio.sleep(0.8)
    _, body = await http(mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert "callscreen_held_calls 1" in body and "callscreen_open_connections 1" in body
    await call


# -- doctor against a running server ------------------------------------------------------------
async def test_doctor_probe_and_port_check(server: Server, port: int) -> None:
    check = await asyncio.to_thread(doctor.probe, "127.0.0.1", port)
    assert check.ok and "CALLSCREEN_RESULT=ALLOWED" in check.detail
    check = await asyncio.to_thread(doctor.check_port, "127.0.0.1", port)
    assert check.ok and "running callscreen" in check.detail


# -- the process: JSON logs ---------------------------------------------------------------------
def test_json_log_lines_and_metrics_flag(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    cmd = [sys.executable, "-m", "callscreen", "--db", str(db), "serve", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--log-format", "json", "--metrics-port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        lines = []
        port = None
        while port is None:
            line = proc.stderr.readline()
            assert line, "serve exited: " + "".join(lines)
            lines.append(line)
            if m := re.search(r"listening on 127.0.0.1:(\d+)", line):
                port = int(m.group(1))
        asyncio.run(place_call(port, ext="101", callerid="+13035551212"))
        while '"ext"' not in lines[-1]:
            lines.append(proc.stderr.readline())
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=15)
    records = [json.loads(line) for line in [*lines, *rest.splitlines()] if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    call = next(r for r in records if r.get("ext") == "101")
    assert call["result"] == "ALLOWED" and call["reason"] == "blocking-off"
    assert call["caller"] == "+13035551212" and call["treatment"] is None
    assert call["level"] == "info" and call["message"].startswith("call to 101 from")
    assert any("metrics on http://127.0.0.1:" in r["message"] for r in records)
    assert proc.returncode == 0
