"""PostgreSQL vs SQLite, and two servers on one PostgreSQL vs one (issue #12), side by side.

    .venv/bin/python -m bench.pg                      # about 2 minutes
    .venv/bin/python -m bench.pg --duration 5 --repeat 3 --concurrency 50

The same seeded database (``bench.seed``: entries, settings, the caller manifest) is copied into
a throwaway PostgreSQL 15 cluster with ``callscreen db copy``; then, interleaved run by run,
``callscreen serve`` on the SQLite file and on PostgreSQL takes the same load generator, which
checks every call's outcome against the manifest (a wrong decision is a mismatch). The cluster
runs with PostgreSQL's durable defaults (fsync on, synchronous commit).

Reported per row: calls/s, p50/p99, the server's CPU per call, PostgreSQL's own CPU per call
(its processes, from /proc), and database transactions per call (``pg_stat_database``: one
statement outside a transaction is one; the call log's batched writes add a fraction). The
server is pinned to CPU 0 and the load generator to CPU 1 (``bench.run``); PostgreSQL's
processes are not pinned: on a 2-core machine they share both cores with the others, so the
two-server rows say what sharing costs here, not what two machines would give.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import run as br

TARGETS = {"postgresql/sqlite calls/s": ">= 0.5", "postgresql/sqlite p99": "<= 2"}


def postgres_cpu_s(postmaster: int) -> float:
    """CPU seconds (user + system) of one cluster: its postmaster, the postmaster's live
    children, and those that ended (reaped children: a server's connections end with it).
    Other PostgreSQL clusters on the machine (a test run's) are not counted."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            parts = stat.read_text().rsplit(")", 1)[1].split()
            if pid == postmaster:
                total += sum(int(x) for x in parts[11:15])  # utime stime cutime cstime
            elif int(parts[1]) == postmaster:
                total += int(parts[11]) + int(parts[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / _CLK_TCK


_CLK_TCK = 100.0
with contextlib.suppress(ValueError, OSError, AttributeError):
    import os

    _CLK_TCK = float(os.sysconf("SC_CLK_TCK"))


def transactions(url: str) -> int:
    """Committed + rolled-back transactions of the database ``url`` names, so far."""

    async def go() -> int:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
            return int(row[0])
        finally:
            await conn.close()

    return asyncio.run(go())


def measured(
    name: str,
    servers: list[br.Server],
    manifest: Path,
    load: list[str],
    url: str | None,
) -> dict[str, Any]:
    """Run the load generator against ``servers`` at once (the concurrency split between them)
    and sum the results."""
    results: list[dict[str, Any]] = [{} for _ in servers]

    def one(i: int, srv: br.Server, extra: list[str]) -> None:
        results[i] = br.loadgen(srv, manifest, *extra)

    conc = int(load[load.index("--concurrency") + 1])
    threads = []
    for i, srv in enumerate(servers):
        extra = list(load)
        extra[extra.index("--concurrency") + 1] = str(max(1, conc // len(servers)))
        threads.append(threading.Thread(target=one, args=(i, srv, extra)))
    if br.QUIET_WAIT:
        br.wait_quiet(0.2)
    br.QUIET_WAIT, quiet = False, br.QUIET_WAIT  # waited once for all of them
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        br.QUIET_WAIT = quiet
    time.sleep(
        1.5
    )  # the call log's last batch (0.25 s); PostgreSQL's statistics (flushed each 1 s)
    calls = sum(r.get("calls", 0) for r in results) or 1  # all of them, warm-up included
    window = sum(r.get("window_calls", 0) for r in results) or 1
    out: dict[str, Any] = {
        "setup": name,
        "servers": len(servers),
        "calls_per_s": round(sum(r["calls_per_s"] for r in results), 1),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "server_cpu_per_call_us": round(
            sum(r.get("server_cpu_per_call_us", 0) * r["window_calls"] for r in results) / window,
            1,
        ),
        "errors": sum(r["errors"] for r in results),
        "mismatches": sum(r["mismatches"] for r in results),
        "calls": calls,
    }
    return out


def bench(a: argparse.Namespace) -> dict[str, Any]:
    from tests.pg import Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("bench.pg: no PostgreSQL here (apt-get install postgresql)")
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="callscreen-bench-pg-"))
    workdir.mkdir(parents=True, exist_ok=True)
    before_src = None
    if a.before:
        # The same load on the SQLite path as of an earlier revision (the "no regression"
        # row): seeded by that revision (its schema), which this one migrates on open.
        before_src, desc = br.snapshot_ours(workdir, a.before)
        br.OURS_SRC = before_src
        br.log(f"before: {desc}")
    br.log(f"seeding {a.entries:,} entries ...")
    seed = br.seeded(workdir, a.entries, {})
    br.OURS_SRC = None
    manifest = Path(seed["manifest"])
    current_db = br.copy_db(Path(seed["db"]), workdir / "seed-current.db")
    subprocess.run(  # opening it migrates it to this revision's schema
        [br.PY, "-m", "callscreen", "--db", str(current_db), "account", "list"],
        check=True,
        cwd=br.REPO,
        capture_output=True,
    )
    cluster = Cluster(bindir, durable=True)
    cluster.start()
    rows: list[dict[str, Any]] = []
    try:
        url = cluster.empty_database()
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        t0 = time.perf_counter()
        subprocess.run(
            [br.PY, "-m", "callscreen", "db", "copy", str(current_db), url],
            check=True,
            cwd=br.REPO,
            capture_output=True,
        )
        br.log(f"copied the seed into PostgreSQL in {time.perf_counter() - t0:.1f} s")
        load = br.load_args(a, a.concurrency)
        for rep in range(a.repeat):
            setups = list(a.setups)
            if before_src is not None and "sqlite before" not in setups:
                setups.insert(0, "sqlite before")
            for setup in setups:
                br.log(f"{setup} (run {rep + 1}/{a.repeat}) ...")
                # PostgreSQL's side is counted from before the servers start to after they
                # stopped: a backend's statistics and CPU are all in once it has ended.
                pg = setup.startswith("postgresql")
                t0, cpu0 = (transactions(url), postgres_cpu_s(postmaster)) if pg else (0, 0.0)
                with contextlib.ExitStack() as stack:
                    if setup.startswith("sqlite"):
                        before = setup == "sqlite before"
                        src = Path(seed["db"]) if before else current_db
                        db = br.copy_db(src, workdir / "run-sqlite.db")
                        br.OURS_SRC = before_src if before else None
                        try:
                            servers = [stack.enter_context(br.running("ours", db, workdir))]
                        finally:
                            br.OURS_SRC = None
                        r = measured(setup, servers, manifest, load, None)
                    else:
                        n = 2 if setup.endswith("x2") else 1
                        servers = [
                            stack.enter_context(br.running("ours", url, workdir))  # type: ignore[arg-type]
                            for _ in range(n)
                        ]
                        r = measured(setup, servers, manifest, load, url)
                if setup.startswith("postgresql"):
                    calls = r["calls"]
                    cpu = postgres_cpu_s(postmaster) - cpu0
                    r["pg_cpu_per_call_us"] = round(cpu / calls * 1e6, 1)
                    r["db_transactions_per_call"] = round((transactions(url) - t0) / calls, 3)
                r["run"] = rep + 1
                br.log(f"  {json.dumps(r)}")
                rows.append(r)
    finally:
        cluster.stop()
    return {"rows": rows, "entries": a.entries, "concurrency": a.concurrency, "mix": a.mix}


def median(rows: list[dict[str, Any]], key: str) -> float:
    vals = sorted(r[key] for r in rows)
    return float(vals[len(vals) // 2]) if vals else 0.0


def report(res: dict[str, Any]) -> str:
    rows = res["rows"]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["setup"], []).append(r)
    table = [
        [
            "setup",
            "calls/s",
            "p50 ms",
            "p99 ms",
            "srv CPU/call us",
            "PG CPU/call us",
            "DB xacts/call",
            "errors",
            "mismatch",
            "runs: calls/s",
        ]
    ]
    for setup, rs in by.items():
        table.append(
            [
                setup,
                f"{median(rs, 'calls_per_s'):.0f}",
                f"{median(rs, 'p50_ms'):.2f}",
                f"{median(rs, 'p99_ms'):.2f}",
                f"{median(rs, 'server_cpu_per_call_us'):.0f}",
                f"{median(rs, 'pg_cpu_per_call_us'):.0f}" if "pg_cpu_per_call_us" in rs[0] else "-",
                f"{median(rs, 'db_transactions_per_call'):.2f}"
                if "db_transactions_per_call" in rs[0]
                else "-",
                str(sum(r["errors"] for r in rs)),
                str(sum(r["mismatches"] for r in rs)),
                "-".join(f"{r['calls_per_s']:.0f}" for r in rs),
            ]
        )
    out = [
        f"{res['entries']:,} entries, mix {res['mix']}, {res['concurrency']} concurrent calls "
        "(split between the servers)",
        br.fmt_table(table),
    ]
    # Ratios run by run (side by side), then their range.
    ratios: dict[str, list[float]] = {"calls/s": [], "p99": []}
    for rep in sorted({r["run"] for r in rows}):
        s = next(r for r in rows if r["run"] == rep and r["setup"] == "sqlite")
        p = next((r for r in rows if r["run"] == rep and r["setup"] == "postgresql"), None)
        if p is not None:
            ratios["calls/s"].append(p["calls_per_s"] / s["calls_per_s"])
            ratios["p99"].append(p["p99_ms"] / s["p99_ms"])
    cps, p99 = ratios["calls/s"] or [0.0], ratios["p99"] or [0.0]
    befores = [
        (
            next(r for r in rows if r["run"] == rep and r["setup"] == "sqlite"),
            next((r for r in rows if r["run"] == rep and r["setup"] == "sqlite before"), None),
        )
        for rep in sorted({r["run"] for r in rows})
    ]
    now_vs_before = [n["calls_per_s"] / b["calls_per_s"] for n, b in befores if b]
    if now_vs_before:
        out.append(
            f"sqlite now/before calls/s: {min(now_vs_before):.2f}-{max(now_vs_before):.2f} "
            "(no regression: about 1, within the noise)"
        )
    out.append(
        f"postgresql/sqlite calls/s: {min(cps):.2f}-{max(cps):.2f} (target >= 0.5: "
        f"{'met' if min(cps) >= 0.5 else 'NOT met'}); p99: {min(p99):.2f}-{max(p99):.2f} "
        f"(target <= 2: {'met' if max(p99) <= 2 else 'NOT met'})"
    )
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pg", description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--mix", default=br.MIX)
    p.add_argument("--workdir", default=None)
    p.add_argument(
        "--before",
        metavar="REV",
        default=None,
        help="also run the SQLite path as of git revision REV, side by side (no regression)",
    )
    p.add_argument(
        "--setups",
        type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
        default=["sqlite", "postgresql", "postgresql x2"],
        help="which setups, in this order within each run (with --before: 'sqlite before' too)",
    )
    p.add_argument("--json", action="store_true", help="also print the raw rows as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    res = bench(a)
    print(report(res))
    if a.json:
        print(json.dumps(res))
    return 1 if any(r["errors"] or r["mismatches"] for r in res["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
