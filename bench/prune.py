"""Call-log retention under load: does pruning 1,000,000 old rows move FastAGI p99?

    python -m bench.prune [--rows 1000000] [--window 2] [--baseline-windows 8]
                          [--concurrency 50] [--workdir DIR] [--json FILE]

The benchmark's seeded database (10,000 entries) gets ``--rows`` call-log rows 100 to 130
days old (written straight into SQLite, as a year of a busy PBX would leave them), plus a
day of recent rows that must be kept. Then, in one run, on copies of that database:

1. **without**: ``callscreen serve --log-retention 0`` (no pruning) under the benchmark's load
   generator (server on CPU 0, generator on CPU 1, ``--concurrency`` calls, the usual mix), in
   ``--baseline-windows`` back-to-back windows of ``--window`` seconds;
2. **with**: ``callscreen serve --log-retention 90d``: the server starts its prune a second
   after start; the same windows run until ``callscreen_call_log_pruned_rows_total`` (scraped
   from /metrics once a second) reaches ``--rows``. Only windows during which the prune ran
   from start to end count as "with".
3. **after**: the same server, pruning done, the same number of windows as "without".

The figure is the median p99 of the "with" windows over the median p99 of the "without"
windows (target: at most 1.10), with calls/s the same way; every window, the prune's wall
time, rows left, and the server log's ERROR lines (a recorder starved by the prune would say
``call log writes failing``) are printed too. A closed loop at 50 concurrent calls keeps the
server's core busy: any CPU the prune takes shows in p99 (the worst case; a PBX is rarely
at saturation).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import run as bench_run
from bench import seed as seeder

DAY = 86400.0


def add_old_calls(db: Path, rows: int, now: float) -> int:
    """``rows`` calls 100-130 days old and 1,000 from the last day; returns the recent ones."""
    conn = sqlite3.connect(db)
    start = now - 130 * DAY
    step = 30 * DAY / rows
    batch = 50_000

    def gen(lo: int, hi: int, t0: float, dt: float) -> Iterator[tuple[Any, ...]]:
        for i in range(lo, hi):
            yield (
                1,
                t0 + i * dt,
                f"20{i % 20 + 1:02d}",
                f"+1415555{i % 10000:04d}",
                f"+1415555{i % 10000:04d}",
                "ALLOWED" if i % 5 else "BLOCKED",
                "no_match" if i % 5 else "ext_list",
                None if i % 5 else "busy",
                None,
                0.01,
                f"{i}.1",
                "unknown",
            )

    sql = (
        "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, reason, "
        "treatment, entry_id, duration, uniqueid, caller_name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for lo in range(0, rows, batch):
        with conn:
            conn.executemany(sql, gen(lo, min(rows, lo + batch), start, step))
    recent = 1000
    with conn:
        conn.executemany(sql, gen(0, recent, now - DAY, DAY / recent))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return recent


def scrape(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


@contextlib.contextmanager
def watching(port: int, target: int) -> Iterator[dict[str, Any]]:
    """Scrape the pruned-rows counter once a second: when pruning started and ended."""
    state: dict[str, Any] = {"pruned": 0.0, "start": None, "end": None}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                n = scrape(port, "callscreen_call_log_pruned_rows_total")
                now = time.monotonic()
                if n > 0 and state["start"] is None:
                    state["start"] = now
                if n >= target and state["end"] is None:
                    state["end"] = now
                state["pruned"] = n
            stop.wait(1.0)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        yield state
    finally:
        stop.set()
        t.join()


def window(srv: bench_run.Server, manifest: Path, a: argparse.Namespace) -> dict[str, Any]:
    r = bench_run.loadgen(
        srv,
        manifest,
        "--mix",
        bench_run.MIX,
        "--concurrency",
        str(a.concurrency),
        "--duration",
        str(a.window),
        "--warmup",
        "0.5",
    )
    return {
        "calls_per_s": r["calls_per_s"],
        "p99_ms": r["p99_ms"],
        "p50_ms": r.get("p50_ms"),
        "errors": r["errors"],
        "mismatches": r["mismatches"],
    }


def show(label: str, w: dict[str, Any], extra: str = "") -> None:
    print(
        f"  {label:8s} {w['calls_per_s']:8.0f} calls/s  p50 {w['p50_ms']} ms  "
        f"p99 {w['p99_ms']:6.2f} ms  errors {w['errors']}  mismatches {w['mismatches']}{extra}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--baseline-windows", type=int, default=8)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", type=Path, help="write the results here too")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = a.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        m = seeder.seed(workdir / "seed.db", 10_000)
        manifest = Path(m["manifest"])
        base = Path(m["db"])
        t0 = time.perf_counter()
        recent = add_old_calls(base, a.rows, time.time())
        print(f"{a.rows:,} old call-log rows (100-130 days) and {recent:,} recent ones written "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        res: dict[str, Any] = {"rows": a.rows, "window_s": a.window, "windows": {}}
        wins: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("without", "with", "partial", "after")
        }

        db0 = bench_run.copy_db(base, workdir / "run-without.db")
        with bench_run.running("ours", db0, workdir, ("--log-retention", "0")) as srv:
            for _ in range(a.baseline_windows):
                wins["without"].append(window(srv, manifest, a))
                show("without", wins["without"][-1])
            res["without_log"] = dict(srv.problems())

        db1 = bench_run.copy_db(base, workdir / "run-with.db")
        mport = bench_run.free_port()
        extra = ("--log-retention", "90d", "--metrics-port", str(mport))
        with bench_run.running("ours", db1, workdir, extra) as srv, watching(mport, a.rows) as st:
            deadline = time.monotonic() + 1800
            while st["end"] is None and time.monotonic() < deadline:
                began = time.monotonic()
                w = window(srv, manifest, a)
                during = st["start"] is not None and st["start"] <= began and st["end"] is None
                w["pruning"] = during
                wins["with" if during else "partial"].append(w)
                show("with" if during else "(partial)", w, f"  pruned {st['pruned']:,.0f}")
            if st["start"] is None or st["end"] is None:
                raise SystemExit(f"the prune did not finish: {st}")
            res["prune_wall_s"] = round(st["end"] - st["start"], 1)
            print(f"  prune of {a.rows:,} rows took about {res['prune_wall_s']} s "
                  "(scraped once a second)", flush=True)  # fmt: skip
            for _ in range(a.baseline_windows):
                wins["after"].append(window(srv, manifest, a))
                show("after", wins["after"][-1])
            res["metrics"] = {
                n: scrape(mport, n)
                for n in (
                    "callscreen_call_log_pruned_rows_total",
                    "callscreen_call_log_prune_errors_total",
                    "callscreen_call_log_failing",
                    "callscreen_call_log_writer_restarts_total",
                )
            }
        res["with_log"] = dict(srv.problems())
        conn = sqlite3.connect(db1)
        left_old = conn.execute(
            "SELECT count(*) FROM call_log WHERE time < ?", (time.time() - 90 * DAY,)
        ).fetchone()[0]
        kept = conn.execute(
            "SELECT count(*) FROM call_log WHERE time >= ?", (time.time() - 2 * DAY,)
        ).fetchone()[0]
        conn.close()
        res.update(old_rows_left=left_old, recent_rows_kept=kept)
        if not wins["with"]:
            raise SystemExit("no window ran entirely during the prune: use a shorter --window")
        res["windows"] = wins
        med = {k: statistics.median(w["p99_ms"] for w in v) for k, v in wins.items() if v}
        cps = {k: statistics.median(w["calls_per_s"] for w in v) for k, v in wins.items() if v}
        res["median_p99_ms"] = med
        res["median_calls_per_s"] = cps
        res["p99_ratio_with_over_without"] = round(med["with"] / med["without"], 3)
        res["p99_ratio_with_over_after"] = round(med["with"] / med["after"], 3)
        res["calls_ratio_with_over_without"] = round(cps["with"] / cps["without"], 3)
        errors = sum(w["errors"] + w["mismatches"] for v in wins.values() for w in v)
        print(
            f"median p99: without {med['without']:.2f} ms, with the prune {med['with']:.2f} ms, "
            f"after {med.get('after', float('nan')):.2f} ms -> with/without "
            f"{res['p99_ratio_with_over_without']} (target <= 1.10), with/after "
            f"{res['p99_ratio_with_over_after']}; calls/s with/without "
            f"{res['calls_ratio_with_over_without']}; errors+mismatches {errors}; old rows left "
            f"{left_old}, recent kept {kept}/{recent}; server log {res['with_log'] or 'clean'}; "
            f"metrics {res['metrics']}",
            flush=True,
        )
        if a.json:
            a.json.write_text(json.dumps(res, indent=2))
    ok = res["p99_ratio_with_over_without"] <= 1.10 and not errors and left_old == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
