"""Instructions per call on the call path, counted by valgrind: a number the machine's speed
does not move.

    .venv/bin/python -m bench.callcost                    # the working tree, compiled
    .venv/bin/python -m bench.callcost --before 060d058   # that revision too, side by side
    .venv/bin/python -m bench.callcost --interpreted      # the working tree as it imports

This VM's speed moves by a third within minutes (the throughput benchmark's ceiling measured
31-53 µs a call on one day), so a change worth 5% cannot be seen in calls/s. Counted
instructions can: the same build counts the same to 0.1%.

What is counted: a call through the real :class:`~callscreen.fastagi.server._Connection`,
:class:`~callscreen.screening.Screener`, :class:`~callscreen.db.lookup.Lookup` (SQLite, a
seeded database of 10,000 entries), the per-call log line (formatted, written to /dev/null)
and the call-log writer (its rows committed), in one process with no sockets: the environment
block and Asterisk's reply are fed to the protocol object, the load generator's environment
for the manifest's callers. Every user-space instruction of every thread is counted; the
kernel's share (accept, read, write, close: what the throughput benchmark's ceiling measures)
is not. Start-up cancels out: a run of N calls minus a run of N/5, divided by 4N/5.

Needs valgrind (``apt-get install valgrind``); ``--inner`` is the harness valgrind runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

#: The call kinds measured: manifest category -> what the load generator's routine answers.
KINDS = ("allowed", "blocked")


def inner(src: Path, db: Path, manifest: Path, kind: str, calls: int, built: int) -> None:
    """The harness: ``calls`` calls of ``kind`` through the server's objects, in process."""
    sys.path.insert(0, str(src))
    import uvloop

    from bench.loadgen import ENV, NAMES, ROUTINE_ARGS
    from callscreen import logfmt
    from callscreen.app import GC_YOUNG
    from callscreen.db.lookup import Lookup
    from callscreen.db.recorder import Recorder
    from callscreen.db.store import Store
    from callscreen.fastagi.server import FastAGIServer, _Connection
    from callscreen.screening import Screener

    rows = json.loads(manifest.read_text())["calls"][kind]
    random.seed(3)

    def env(i: int) -> bytes:
        caller, pres, ext = rows[i % len(rows)][:3]
        return ENV % (
            b"127.0.0.1",
            4573,
            i,
            1733,
            i,
            caller.encode(),
            random.choice(NAMES),
            pres.encode(),
            ext.encode(),
            ext.encode(),
            i,
            ext.encode(),
            ROUTINE_ARGS,
        )

    # As many built in every run (the harness's own work cancels out), ``calls`` of them run.
    envs = [env(i) for i in range(built)][:calls]
    reply = b"200 result=0\n"

    class Transport:
        __slots__ = ("closed", "out")

        def __init__(self) -> None:
            self.out: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.out.append(data)

        def close(self) -> None:
            self.closed = True

        abort = close

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return ("127.0.0.1", 5555)

    devnull = open(os.devnull, "w")  # noqa: SIM115  (the log lines are written, unread)

    async def main() -> None:
        import gc

        logfmt.setup("info")
        assert logfmt._handler is not None
        logfmt._handler.stream = devnull
        store = await Store.open(db)
        lookup = Lookup(db)
        recorder = Recorder(store, batch=10**9, max_queued=10**9)  # one write, at the end
        screener = Screener(lookup, recorder)
        screener.call_lines = logfmt.call_lines()
        server = FastAGIServer(screener)
        server.loop_time = asyncio.get_running_loop().time
        gc.collect()  # as the server sets it up (app.Server.start)
        gc.freeze()
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        for env in envs:
            conn = _Connection(server)
            transport = Transport()
            conn.connection_made(transport)  # type: ignore[arg-type]
            conn.data_received(env)
            conn.data_received(reply)
            conn.connection_lost(None)
            assert transport.closed and transport.out, transport.out
        screener.call_lines.flush()
        await recorder.flush()
        assert recorder.written == calls, (recorder.written, calls)
        await store.close()
        lookup.close()

    uvloop.run(main())


def count(src: Path, db: Path, manifest: Path, kind: str, calls: int, built: int) -> int:
    """Instructions of one ``--inner`` run, as callgrind counts them."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "calls.db"
        shutil.copy(db, work)  # every run starts from the same file
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            PY,
            "-m",
            "bench.callcost",
            "--inner",
            str(src),
            str(work),
            str(manifest),
            kind,
            str(calls),
            str(built),
        ]
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise SystemExit(f"callcost: the harness failed:\n{p.stderr[-2000:]}")
        m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
        if m is None:
            raise SystemExit("callcost: no instruction total in callgrind's output")
        return int(m.group(1))


def per_call(src: Path, db: Path, manifest: Path, kind: str, calls: int) -> float:
    small = calls // 5
    big = count(src, db, manifest, kind, calls, calls)
    return (big - count(src, db, manifest, kind, small, calls)) / (calls - small)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", metavar="REV", help="also measure this git revision")
    ap.add_argument("--interpreted", action="store_true", help="do not compile (mypyc)")
    ap.add_argument("--calls", type=int, default=2500, help="calls a run (default 2500)")
    ap.add_argument("--inner", nargs=6, metavar=("SRC", "DB", "MANIFEST", "KIND", "N", "BUILT"))
    a = ap.parse_args(argv)
    if a.inner:
        src, db, manifest, kind, n, built = a.inner
        inner(Path(src), Path(db), Path(manifest), kind, int(n), int(built))
        return 0
    if shutil.which("valgrind") is None:
        print("callcost: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    from bench.run import compile_ours, snapshot_ours
    from bench.seed import seed

    with tempfile.TemporaryDirectory(prefix="callscreen-callcost-") as tmp:
        work = Path(tmp)
        builds: list[tuple[str, Path]] = []
        for rev in ([a.before] if a.before else []) + ["worktree"]:
            src, desc = snapshot_ours(work / rev.replace("/", "_"), rev)
            if not a.interpreted:
                src, _ = compile_ours(src)
            builds.append((desc, src))
        db = work / "seed.db"
        manifest = Path(seed(db, 10_000, src=builds[-1][1])["manifest"])
        results: dict[str, dict[str, float]] = {}
        for desc, src in builds:
            results[desc] = {k: per_call(src, db, manifest, k, a.calls) for k in KINDS}
    mode = "interpreted" if a.interpreted else "compiled (mypyc)"
    print(f"instructions per call, user space, in process ({mode}; {a.calls} calls a run)")
    print(f"{'build':40s} " + " ".join(f"{k:>10s}" for k in KINDS))
    for desc, row in results.items():
        print(f"{desc[:40]:40s} " + " ".join(f"{row[k]:10,.0f}" for k in KINDS))
    if len(results) == 2:
        (_, old), (_, new) = results.items()
        print("now/before: " + ", ".join(f"{k} {new[k] / old[k]:.3f}" for k in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
