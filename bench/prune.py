"""Call-log retention under load: does pruning 1,000,000 old rows move FastAGI p99?

    python -m bench.prune [--rows 1000000] [--window 2] [--after-pairs 4]
                          [--concurrency 50] [--workdir DIR] [--json FILE]

The benchmark's seeded database (10,000 entries) gets ``--rows`` call-log rows 100 to 130
days old (written straight into SQLite, as months of a busy PBX would leave them), plus 1,000
rows from the last day that must be kept. Two servers run on copies of it, both pinned to
CPU 0 (the load generator on CPU 1, ``--concurrency`` calls, the usual mix):

* **without**: ``callscreen serve --log-retention 0`` (no pruning);
* **with**: ``callscreen serve --log-retention 90d``, which starts its prune a second after
  start.

They take turns, window by window (``--window`` seconds of load each): while one is under
load the other is frozen (SIGSTOP; SIGCONT for its turn), so the idle one takes no CPU and
drift or other load on the machine hits both alike. A window of the pruning server counts as
**with** when ``callscreen_call_log_pruned_rows_total`` (scraped from /metrics just before and
after it) shows the prune running before it began and not done when it ended. After the
prune, ``--after-pairs`` more pairs run (**after**: the same server, prune done).

The figure: the median p99 of the "with" windows over the median p99 of the "without"
windows (target at most 1.10), calls/s likewise. Also printed: every window, the prune's
time under load, old rows left, the seeded recent rows kept, and the servers' ERROR lines
(a call-log writer starved by the prune would log ``call log writes failing``). A closed loop
at 50 concurrent calls keeps CPU 0 busy: every bit of CPU the prune takes shows in p99 (the
worst case; a PBX rarely runs at saturation).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
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


def pruned(port: int) -> float:
    return scrape(port, "callscreen_call_log_pruned_rows_total")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--after-pairs", type=int, default=4)
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
        seeded_until = time.time()
        print(f"{a.rows:,} old call-log rows (100-130 days) and {recent:,} recent ones written "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
        res: dict[str, Any] = {"rows": a.rows, "window_s": a.window}
        wins: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("without", "with", "partial", "after", "without_paired")
        }
        db0 = bench_run.copy_db(base, workdir / "run-without.db")
        db1 = bench_run.copy_db(base, workdir / "run-with.db")
        mport = bench_run.free_port()
        extra = ("--log-retention", "90d", "--metrics-port", str(mport))
        prune_windows = 0.0
        with (
            bench_run.running("ours", db0, workdir, ("--log-retention", "0")) as off,
            bench_run.running("ours", db1, workdir, extra) as on,
        ):
            try:
                after = 0
                deadline = time.monotonic() + 3600
                while after < a.after_pairs and time.monotonic() < deadline:
                    on.proc.send_signal(signal.SIGSTOP)
                    w = window(off, manifest, a)
                    wins["without"].append(w)
                    show("without", w)
                    on.proc.send_signal(signal.SIGCONT)
                    n0 = pruned(mport)
                    w = window(on, manifest, a)
                    n1 = pruned(mport)
                    if n0 >= a.rows:
                        kind = "after"
                        after += 1
                    elif n0 > 0 and n1 < a.rows:
                        kind = "with"
                        prune_windows += 1
                    else:
                        kind = "partial"
                    wins[kind].append(w)
                    if kind == "with":
                        wins["without_paired"].append(wins["without"][-1])
                    show(kind if kind != "partial" else "(partial)", w, f"  pruned {n1:,.0f}")
            finally:  # never leave it frozen: SIGTERM would wait
                on.proc.send_signal(signal.SIGCONT)
            if pruned(mport) < a.rows:
                raise SystemExit("the prune did not finish within an hour")
            res["metrics"] = {
                n: scrape(mport, n)
                for n in (
                    "callscreen_call_log_pruned_rows_total",
                    "callscreen_call_log_prune_errors_total",
                    "callscreen_call_log_failing",
                    "callscreen_call_log_writer_restarts_total",
                )
            }
        res["server_log_problems"] = {"without": dict(off.problems()), "with": dict(on.problems())}
        conn = sqlite3.connect(db1)
        left_old = conn.execute(
            "SELECT count(*) FROM call_log WHERE time < ?", (time.time() - 90 * DAY,)
        ).fetchone()[0]
        kept = conn.execute(
            "SELECT count(*) FROM call_log WHERE time >= ? AND time <= ?",
            (seeded_until - 2 * DAY, seeded_until),
        ).fetchone()[0]
        conn.close()
        res.update(old_rows_left=left_old, recent_rows_kept=kept, windows=wins)
        res["prune_under_load_s"] = round(prune_windows * a.window, 1)
        if not wins["with"]:
            raise SystemExit("no window ran entirely during the prune: use a shorter --window")
        med = {k: statistics.median(w["p99_ms"] for w in v) for k, v in wins.items() if v}
        cps = {k: statistics.median(w["calls_per_s"] for w in v) for k, v in wins.items() if v}
        res["median_p99_ms"] = med
        res["median_calls_per_s"] = cps
        res["p99_ratio_with_over_without"] = round(med["with"] / med["without"], 3)
        res["calls_ratio_with_over_without"] = round(cps["with"] / cps["without"], 3)
        res["p99_ratio_with_over_paired_without"] = round(med["with"] / med["without_paired"], 3)
        errors = sum(w["errors"] + w["mismatches"] for v in wins.values() for w in v)
        print(
            f"median p99: without {med['without']:.2f} ms, with the prune {med['with']:.2f} ms "
            f"({len(wins['with'])} windows), after {med.get('after', float('nan')):.2f} ms -> "
            f"with/without {res['p99_ratio_with_over_without']} (target <= 1.10), with/its pairs "
            f"{res['p99_ratio_with_over_paired_without']}; calls/s "
            f"{cps['without']:.0f} / {cps['with']:.0f} = {res['calls_ratio_with_over_without']}; "
            f"errors+mismatches {errors}; old rows left {left_old}, recent kept {kept}/{recent}; "
            f"server logs {res['server_log_problems']}; metrics {res['metrics']}",
            flush=True,
        )
        if a.json:
            a.json.write_text(json.dumps(res, indent=2))
    ok = res["p99_ratio_with_over_without"] <= 1.10 and not errors and left_old == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
