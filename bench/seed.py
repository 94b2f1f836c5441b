"""Create a benchmark database through callscreen's own API, and a manifest of expected outcomes.

    .venv/bin/python -m bench.seed --entries 10000 --db /tmp/bench.db [--manifest M.json]

Layout (deterministic for a given --seed and --entries):

* extensions 2001..2020: blocking on, anonymous callers blocked, treatment busy; they hold most
  list entries (exact numbers) and a few premium-rate prefixes (``+1900*``, ...)
* blocked callers: up to 80% numbers on those lists, up to 10% on the account list, the rest
  (at least 5%) numbers under the listed prefixes: ~20,000 distinct callers whatever the size
* 2900: treatment torture, its own block list; 2950: treatment voicemail, its own block list
* the account-wide block list (account blocking on) holds a few numbers too

The manifest lists callers (as a trunk presents them) with the extension they call and what a
correct screening server answers: result, reason and treatment. Allowed callers are numbers on
no list and under no listed prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import e164

REPO = Path(__file__).resolve().parent.parent
BUSY_EXTS = [str(2001 + i) for i in range(20)]
TORTURE_EXT = "2900"
VOICEMAIL_EXT = "2950"
CALLERS_PER_CATEGORY = 20_000  # distinct callers: defeats small caches, as real traffic does


def plan(entries: int, seed: int = 4) -> dict[str, Any]:
    """What goes into the DB and the manifest (pure, deterministic)."""
    rng = random.Random(seed)
    n_prefix = max(1, min(len(e164.PREMIUM_PREFIXES), entries // 2000))
    n_torture = max(1, entries * 5 // 100)
    n_vm = max(1, entries * 5 // 100)
    n_account = max(1, entries * 5 // 100)
    n_busy = max(1, entries - n_prefix - n_torture - n_vm - n_account)
    need = n_busy + n_torture + n_vm + n_account
    exact: list[str] = []
    seen: set[str] = set()
    for num in e164.numbers(seed):
        if num not in seen:
            seen.add(num)
            exact.append(num)
            if len(exact) == need:
                break
    busy_nums = exact[:n_busy]
    torture_nums = exact[n_busy : n_busy + n_torture]
    vm_nums = exact[n_busy + n_torture : n_busy + n_torture + n_vm]
    account_nums = exact[n_busy + n_torture + n_vm :]
    prefixes = e164.PREMIUM_PREFIXES[:n_prefix]

    lists: dict[str, list[str]] = {ext: [] for ext in BUSY_EXTS}
    busy_owner: list[tuple[str, str]] = []
    for i, num in enumerate(busy_nums):
        ext = BUSY_EXTS[i % len(BUSY_EXTS)]
        lists[ext].append(num)
        busy_owner.append((num, ext))
    prefix_owner = []
    for i, (p, digits) in enumerate(prefixes):
        ext = BUSY_EXTS[i % len(BUSY_EXTS)]
        lists[ext].append(p + "*")
        prefix_owner.append((p, digits, ext))
    lists[TORTURE_EXT] = list(torture_nums)
    lists[VOICEMAIL_EXT] = list(vm_nums)

    def present(num: str) -> str:
        forms = e164.national_forms(num)
        return rng.choice(forms) if forms and rng.random() < 0.25 else num

    def sample(items: list[Any], k: int) -> list[Any]:
        if len(items) <= k:
            return list(items)
        step = len(items) / k  # evenly spread over the list (and over the index)
        return [items[int(i * step)] for i in range(k)]

    k = CALLERS_PER_CATEGORY
    calls: dict[str, list[list[Any]]] = {}
    blocked: list[list[Any]] = []
    for num, ext in sample(busy_owner, k * 8 // 10):
        blocked.append([present(num), "0", ext, "BLOCKED", "ext-blocklist", "busy"])
    for num in sample(account_nums, k // 10):
        ext = rng.choice(BUSY_EXTS)
        blocked.append([present(num), "0", ext, "BLOCKED", "account-blocklist", "busy"])
    # Fill up with numbers under the listed prefixes, so the blocked callers are as many and
    # as distinct for a 10-entry list as for a 1,000,000-entry one (only the list size varies).
    per_prefix = max(k // 20, k - len(blocked)) // len(prefix_owner)
    for p, digits, ext in prefix_owner:
        for _ in range(per_prefix):
            num = e164.under_prefix(p, digits, rng)
            blocked.append([present(num), "0", ext, "BLOCKED", "ext-blocklist", "busy"])
    rng.shuffle(blocked)
    calls["blocked"] = blocked
    calls["torture"] = [
        [present(n), "0", TORTURE_EXT, "BLOCKED", "ext-blocklist", "torture"]
        for n in sample(torture_nums, k)
    ]
    calls["voicemail"] = [
        [present(n), "0", VOICEMAIL_EXT, "BLOCKED", "ext-blocklist", "voicemail"]
        for n in sample(vm_nums, k)
    ]
    # As Asterisk presents them: no caller ID at all is "unknown" with presentation 67;
    # Originate/trunks with CallerID <anonymous> give "anonymous" with 0 (seen) or 67.
    anon_forms = [("anonymous", "67"), ("unknown", "67"), ("anonymous", "0")]
    calls["anonymous"] = [
        [*anon_forms[i % 3], BUSY_EXTS[i % len(BUSY_EXTS)], "BLOCKED", "anonymous", "busy"]
        for i in range(3 * len(BUSY_EXTS))
    ]
    allowed = []
    listed_prefixes = tuple(p for p, _ in prefixes)
    all_exts = [*BUSY_EXTS, TORTURE_EXT, VOICEMAIL_EXT]
    for num in e164.numbers(seed + 1000):
        if num in seen or num.startswith(listed_prefixes):
            continue
        seen.add(num)
        allowed.append([present(num), "0", rng.choice(all_exts), "ALLOWED", "not-listed", None])
        if len(allowed) == k:
            break
    calls["allowed"] = allowed
    return {
        "entries": entries,
        "seed": seed,
        "lists": lists,
        "account_list": list(account_nums),
        "calls": calls,
    }


def check_numbers(p: dict[str, Any], n: int = 2000) -> None:
    """Every sampled number must normalize to itself (else the expectations would be wrong)."""
    from callscreen.numbers import normalize

    rng = random.Random(1)
    rows = [
        r for rows in p["calls"].values() for r in rows if r[0][:1].isdigit() or r[0][:1] == "+"
    ]
    for row in rng.sample(rows, min(n, len(rows))):
        got = normalize(row[0], "US")
        if not (got == row[0] or (not row[0].startswith("+") and got.endswith(row[0][-10:]))):
            raise SystemExit(f"seed: {row[0]!r} normalizes to {got!r}")


async def setup_db(db: Path) -> None:
    """Account and extension settings, through callscreen's Store API."""
    from callscreen.db import Store
    from callscreen.policy import Rule, Treatment

    store = await Store.open(db)
    try:
        await store.set_account(enabled=True, anonymous=Rule.ALLOW, treatment=Treatment.BUSY)
        for ext in BUSY_EXTS:
            await store.set_extension(
                ext, enabled=True, anonymous=Rule.BLOCK, treatment=Treatment.BUSY
            )
        await store.set_extension(TORTURE_EXT, enabled=True, treatment=Treatment.TORTURE)
        await store.set_extension(
            VOICEMAIL_EXT,
            enabled=True,
            treatment=Treatment.VOICEMAIL,
            mailbox=f"{VOICEMAIL_EXT}@default",
        )
    finally:
        await store.close()


async def import_api(db: Path, p: dict[str, Any]) -> str:
    """The list entries through the Store API (when the CLI has no ``import``)."""
    from callscreen.db import Store
    from callscreen.numbers import parse_pattern
    from callscreen.policy import Kind, Scope

    store = await Store.open(db)
    try:
        bulk = getattr(store, "import_entries", None)
        add = bulk if bulk is not None else store.add_entries
        for ext, values in p["lists"].items():
            await add(Scope.EXTENSION, ext, Kind.BLOCK, [parse_pattern(v, "US") for v in values])
        patterns = [parse_pattern(v, "US") for v in p["account_list"]]
        await add(Scope.ACCOUNT, None, Kind.BLOCK, patterns)
    finally:
        await store.close()
    return "Store.import_entries" if bulk is not None else "Store.add_entries"


def import_cli(db: Path, p: dict[str, Any], src: Path) -> str | None:
    """The list entries the way an admin loads a million numbers: ``callscreen import --all``
    of a CSV file. Returns None when this callscreen has no ``import`` command."""
    cmd = [sys.executable, "-m", "callscreen", "--db", str(db), "--region", "US"]
    probe = subprocess.run([*cmd, "import", "--help"], cwd=src, capture_output=True, check=False)
    if probe.returncode != 0 or b"--all" not in probe.stdout:
        return None
    csv_path = Path(str(db) + ".import.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scope", "ext", "kind", "number"])
        for ext, values in p["lists"].items():
            w.writerows(("ext", ext, "block", v) for v in values)
        w.writerows(("account", "", "block", v) for v in p["account_list"])
    try:
        r = subprocess.run(
            [*cmd, "import", "--all", "--json", str(csv_path)],
            cwd=src,
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise SystemExit(f"seed: callscreen import failed:\n{r.stdout}\n{r.stderr}")
    finally:
        csv_path.unlink(missing_ok=True)
    return "callscreen import --all (CLI, CSV)"


def seed(
    db: Path,
    entries: int,
    manifest: Path | None = None,
    seed_: int = 4,
    src: Path | None = None,
) -> dict[str, Any]:
    """Create ``db`` (replacing it) and write the manifest; returns the manifest dict.

    ``src``: the directory whose ``callscreen`` package the CLI import runs (default: the
    checkout). The import time is that of the package's bulk path: ``callscreen import --all``
    of a CSV file (process start included), or the Store API if there is no such command.
    """
    db = Path(db)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    p = plan(entries, seed_)
    check_numbers(p)
    gen_s = time.perf_counter() - t0
    asyncio.run(setup_db(db))
    t1 = time.perf_counter()
    via = import_cli(db, p, src or REPO)
    if via is None:
        via = asyncio.run(import_api(db, p))
    import_s = time.perf_counter() - t1
    # Fold the WAL into the main file so the size is the DB's and copies are self-contained.
    conn = sqlite3.connect(db)
    n_rows = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    expected = sum(len(v) for v in p["lists"].values()) + len(p["account_list"])
    if n_rows != expected:
        raise SystemExit(f"seed: {n_rows} entries in the DB, expected {expected}")
    out = {
        "db": str(db),
        "entries": entries,
        "seed": seed_,
        "generate_s": round(gen_s, 3),
        "import_s": round(import_s, 3),
        "import_via": via,
        "db_bytes": os.path.getsize(db),
        "calls": p["calls"],
    }
    manifest = manifest or Path(str(db) + ".manifest.json")
    Path(manifest).write_text(json.dumps(out))
    out["manifest"] = str(manifest)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--manifest", type=Path)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args(argv)
    m = seed(a.db, a.entries, a.manifest, a.seed)
    summary = {k: v for k, v in m.items() if k != "calls"}
    summary["callers"] = {k: len(v) for k, v in m["calls"].items()}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
