"""The web tier under load: API latency on a 1,000,000-entry list, and whether a busy API slows
call screening.

    python -m bench.api [--entries 1000000] [--duration 10] [--rate 100] [--workdir DIR]

1. **API latency**: ``callscreen web`` on a database whose extension 2001 holds ``--entries``
   numbers (imported with ``callscreen import``), one client with keep-alive, each request
   kind for ``--duration`` seconds: a page of 50 at a random offset, the first page, a search
   (``q``), adding one number, removing it; then the portal's Blocking page of that extension
   (signed in, whole HTML page: first page, a page after a random entry, a search).
   Requests/s, p50 and p99, measured at the client over loopback (so server time is less).
2. **FastAGI with the API busy**: ``callscreen serve`` (CPU 0) under the benchmark's load
   generator (CPU 1, 50 concurrent calls, the usual mix) on the benchmark's seeded database,
   once with the web tier idle and once while a client drives ``--rate`` API requests a second
   (half list pages, a quarter adds, a quarter removes) against the same database. The web
   process is not pinned, as an admin would run it. Ratio busy/idle, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import e164
from bench import run as bench_run
from bench import seed as seeder

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
EXT = "2001"
PASSWORD = "bench-password-1"


def cli(db: Path, *args: str, stdin: str | None = None) -> str:
    p = subprocess.run(
        [PY, "-m", "callscreen", "--db", str(db), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if p.returncode:
        raise SystemExit(f"callscreen {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout


def admin_token(db: Path) -> str:
    cli(db, "user", "add", "bench", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    out = json.loads(cli(db, "token", "create", "bench", "--name", "bench", "--json"))
    return str(out["token"])


@contextlib.contextmanager
def web(db: Path, workdir: Path) -> Iterator[str]:
    port = bench_run.free_port()
    log_path = workdir / f"web-{port}.log"
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(
            [PY, "-m", "callscreen", "--db", str(db), "web", "--port", str(port)],
            cwd=REPO,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit("web exited:\n" + log_path.read_text(errors="replace")[-2000:])
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=1),
            ):
                break
            if time.monotonic() > deadline:
                raise SystemExit("web did not answer within 30 s")
            time.sleep(0.05)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def summary(name: str, lat: list[float], seconds: float) -> dict[str, Any]:
    return {
        "request": name,
        "n": len(lat),
        "req_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(pct(lat, 50) * 1000, 2),
        "p99_ms": round(pct(lat, 99) * 1000, 2),
    }


async def latency(base: str, token: str, entries: int, duration: float) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/extensions/{EXT}/blocklist"
    rng = random.Random(7)
    out = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def measure(name: str, do: Any) -> None:
            await do(0)  # warm up
            lat: list[float] = []
            start = time.perf_counter()
            i = 0
            while time.perf_counter() - start < duration:
                t0 = time.perf_counter()
                await do(i)
                lat.append(time.perf_counter() - t0)
                i += 1
            out.append(summary(name, lat, time.perf_counter() - start))

        async def page_random(_: int) -> None:
            off = rng.randrange(max(1, entries - 50))
            (await client.get(url, params={"limit": 50, "offset": off})).raise_for_status()

        async def page_after(_: int) -> None:
            after = rng.randrange(1, max(2, entries - 50))  # ids follow the import's order
            (await client.get(url, params={"limit": 50, "after": after})).raise_for_status()

        async def page_first(_: int) -> None:
            (await client.get(url, params={"limit": 50})).raise_for_status()

        async def search(_: int) -> None:
            (await client.get(url, params={"limit": 50, "q": "+1415"})).raise_for_status()

        async def add(i: int) -> None:
            r = await client.post(url, json={"numbers": [f"+1720555{i % 10000:04d}"]})
            r.raise_for_status()

        async def remove(i: int) -> None:
            (await client.delete(f"{url}/%2B1720555{i % 10000:04d}")).raise_for_status()

        await measure("list: a page of 50 after a random entry", page_after)
        await measure("list: a page of 50 at a random offset", page_random)
        await measure("list: the first page", page_first)
        await measure("list: search q=+1415", search)
        await measure("add one number", add)
        await measure("remove one number", remove)
    return out


def api_driver(base: str, token: str, rate: float, stop: threading.Event) -> dict[str, Any]:
    """``rate`` requests a second (paced, not closed-loop) until ``stop``; returns counts."""
    result: dict[str, Any] = {"sent": 0, "failed": 0}

    async def go() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/api/v1/extensions/{EXT}/blocklist"
        rng = random.Random(11)
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            start = time.perf_counter()
            n = 0
            while not stop.is_set():
                due = start + n / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                k = n % 4
                num = f"+1720556{(n // 4) % 10000:04d}"
                try:
                    if k in (0, 2):
                        r = await client.get(
                            url, params={"limit": 50, "offset": rng.randrange(5000)}
                        )
                    elif k == 1:
                        r = await client.post(url, json={"numbers": [num]})
                    else:
                        r = await client.delete(f"{url}/{num.replace('+', '%2B')}")
                    if r.status_code >= 400:
                        result["failed"] += 1
                except httpx.HTTPError:
                    result["failed"] += 1
                n += 1
            result["sent"] = n
            result["seconds"] = time.perf_counter() - start

    asyncio.run(go())
    return result


def fastagi_with_api(workdir: Path, duration: float, rate: float) -> dict[str, Any]:
    m = seeder.seed(workdir / "seed.db", 10_000)
    db = Path(m["db"])
    token = admin_token(db)
    args = ["--concurrency", "50", "--duration", str(duration), "--warmup", "2"]
    res: dict[str, Any] = {}
    with web(db, workdir) as base, bench_run.running("ours", db, workdir) as srv:
        for label in ("idle", "busy", "idle again"):
            stop = threading.Event()
            driven: dict[str, Any] = {}
            driver = None
            if label == "busy":
                driver = threading.Thread(
                    target=lambda d=driven, s=stop: d.update(api_driver(base, token, rate, s))
                )
                driver.start()
            r = bench_run.loadgen(srv, Path(m["manifest"]), *args)
            stop.set()
            if driver is not None:
                driver.join()
            res[label] = {
                "calls_per_s": r["calls_per_s"],
                "p99_ms": r["p99_ms"],
                "errors": r["errors"],
                "mismatches": r["mismatches"],
                **({"api": driven} if driven else {}),
            }
            print(f"  FastAGI, API {label}: {r['calls_per_s']} calls/s, p99 {r['p99_ms']} ms, "
                  f"errors {r['errors']}, mismatches {r['mismatches']}"
                  + (f"; API {driven}" if driven else ""), flush=True)  # fmt: skip
    idle = (res["idle"]["calls_per_s"] + res["idle again"]["calls_per_s"]) / 2
    res["ratio_busy_over_idle"] = round(res["busy"]["calls_per_s"] / idle, 3)
    return res


async def portal(base: str, entries: int, duration: float) -> list[dict[str, Any]]:
    """The portal's Blocking page of the extension with the big list, signed in as an admin:
    the whole HTML page (settings, both lists' first 50 rows and sizes, recent calls)."""
    page = f"{base}/ext/{EXT}"
    rng = random.Random(11)
    out = []
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{base}/login", data={"username": "bench", "password": PASSWORD})
        if r.status_code != 303:
            raise SystemExit(f"portal sign-in failed: {r.status_code}")

        async def measure(name: str, params: Any) -> None:
            lat: list[float] = []
            start = time.perf_counter()
            while time.perf_counter() - start < duration:
                t0 = time.perf_counter()
                r = await client.get(page, params=params())
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200 or "Blocked Numbers" not in r.text:
                    raise SystemExit(f"portal page failed: {r.status_code}")
            out.append(summary(name, lat, time.perf_counter() - start))

        await measure("page: first 50 of each list", dict)
        await measure(
            "page: 50 after a random entry",
            lambda: {"block_after": rng.randrange(1, max(2, entries - 50))},
        )
        await measure("page: search block_q=+1415", lambda: {"block_q": "+1415"})
    return out


def big_list_db(workdir: Path, entries: int) -> Path:
    db = workdir / "big.db"
    csv_path = workdir / "big.csv"
    seen: set[str] = set()
    with csv_path.open("w") as f:
        for num in e164.numbers(3):
            if num not in seen:  # the stream repeats some numbers
                seen.add(num)
                f.write(num + "\n")
                if len(seen) == entries:
                    break
    t0 = time.perf_counter()
    cli(db, "import", "--ext", EXT, str(csv_path))
    print(f"  imported {entries:,} numbers into extension {EXT} in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    return db


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--parts", default="latency,fastagi")
    ap.add_argument("--json", type=Path, help="write the results here too")
    a = ap.parse_args(argv)
    parts = set(a.parts.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = a.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if "latency" in parts:
            print(f"API latency, {a.entries:,} entries on extension {EXT}:", flush=True)
            db = big_list_db(workdir, a.entries)
            token = admin_token(db)
            with web(db, workdir) as base:
                rows = asyncio.run(latency(base, token, a.entries, a.duration))
                rows += asyncio.run(portal(base, a.entries, a.duration))
            for r in rows:
                print(f"  {r['request']:40s} {r['req_per_s']:8.1f} req/s  p50 {r['p50_ms']:7.2f}"
                      f" ms  p99 {r['p99_ms']:7.2f} ms", flush=True)  # fmt: skip
            results["latency"] = rows
        if "fastagi" in parts:
            print(f"FastAGI calls/s with the API idle and at {a.rate:g} requests/s:", flush=True)
            results["fastagi"] = fastagi_with_api(workdir, a.duration, a.rate)
            print(f"  busy / idle: {results['fastagi']['ratio_busy_over_idle']}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
