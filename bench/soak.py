"""Soak: a long run of mixed calls against ``callscreen serve``; resources must stay flat.

    .venv/bin/python -m bench.soak [--calls 1000000] [--concurrency 50] [--interval 10]

Every ``--interval`` seconds it samples the server: open file descriptors, RSS, threads, and
from its /metrics endpoint open connections, held calls and asyncio tasks. At the end it stops
the server with SIGTERM and counts call-log rows against the calls made (0 may be lost), then
runs ``PRAGMA integrity_check``. Exit status 1 on any error, mismatch, lost row or growth.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import seed as seeder
from bench.run import PY, REPO, _nofile, copy_db, first_call, free_port, ours_cmd, pinned

MIX = "allowed=70,blocked=20,anonymous=5,torture=5"


def sample(pid: int, metrics_port: int) -> dict[str, Any]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    gauges = dict(re.findall(r"^(callscreen_\w+) (\d+)$", text.decode(), re.M))
    return {
        "fds": fds,
        "rss_mb": round(rss_kb / 1024, 1),
        "threads": threads,
        "connections": int(gauges.get("callscreen_open_connections", -1)),
        "held": int(gauges.get("callscreen_held_calls", -1)),
        "tasks": int(gauges.get("callscreen_tasks", -1)),
        "log_queue": int(gauges.get("callscreen_call_log_queue", -1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--json", type=Path, help="write samples and totals here")
    a = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="callscreen-soak-"))
    m = seeder.seed(workdir / "seed.db", a.entries)
    db = copy_db(workdir / "seed.db", workdir / "soak.db")
    port, metrics_port = free_port(), free_port()
    cmd = [*ours_cmd(db, port), "--metrics-port", str(metrics_port)]
    with open(workdir / "server.log", "ab") as logf:
        server = subprocess.Popen(
            pinned(0, cmd),
            cwd=REPO,
            stdout=logf,
            stderr=logf,
            preexec_fn=_nofile,
            start_new_session=True,
        )
    while not first_call(port):
        if server.poll() is not None:
            print((workdir / "server.log").read_text()[-2000:], file=sys.stderr)
            return 1
        time.sleep(0.05)
    gen = subprocess.Popen(
        pinned(
            1,
            [
                PY,
                "-m",
                "bench.loadgen",
                "--port",
                str(port),
                "--manifest",
                str(m["manifest"]),
                "--calls",
                str(a.calls),
                "--concurrency",
                str(a.concurrency),
                "--mix",
                MIX,
                "--hold",
                "1",
                "--json",
            ],
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out_lines: list[str] = []
    reader = threading.Thread(target=lambda: out_lines.extend(gen.stdout or []), daemon=True)
    reader.start()
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    print(
        f"{'t s':>6} {'fds':>5} {'rss MB':>7} {'threads':>7} {'conns':>6} {'held':>5} "
        f"{'tasks':>6} {'log q':>6}",
        flush=True,
    )
    while True:
        s = {"t": round(time.monotonic() - t0), **sample(server.pid, metrics_port)}
        samples.append(s)
        print(
            f"{s['t']:>6} {s['fds']:>5} {s['rss_mb']:>7} {s['threads']:>7} "
            f"{s['connections']:>6} {s['held']:>5} {s['tasks']:>6} {s['log_queue']:>6}",
            flush=True,
        )
        try:
            gen.wait(a.interval)
            break
        except subprocess.TimeoutExpired:
            continue
    reader.join(10)
    result = json.loads(out_lines[-1])
    time.sleep(2)  # held callers hang up (--hold 1)
    after = {"t": round(time.monotonic() - t0), **sample(server.pid, metrics_port)}
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM call_log").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    calls_made = result["calls"] + 1  # + the start-up probe call
    steady = samples[1:] or samples
    growth = {
        k: max(x[k] for x in steady) - min(x[k] for x in steady)
        for k in ("fds", "rss_mb", "threads")
    }
    totals = {
        "calls": result["calls"],
        "calls_per_s": result["calls_per_s"],
        "errors": result["errors"],
        "mismatches": result["mismatches"],
        "call_log_rows": rows,
        "rows_lost": calls_made - rows,
        "integrity": integrity,
        "after_idle": after,
        "growth_over_run": growth,
        "server_exit": server.returncode,
    }
    print(json.dumps(totals, indent=2))
    if a.json:
        a.json.write_text(json.dumps({"samples": samples, "totals": totals}, indent=2))
    ok = (
        result["errors"] == 0
        and result["mismatches"] == 0
        and rows == calls_made
        and integrity == "ok"
        and server.returncode == 0
        and after["connections"] == 0
        and growth["fds"] <= 2 * a.concurrency
        and growth["rss_mb"] <= 20
    )
    print("soak:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
