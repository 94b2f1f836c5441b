"""The benchmark must not rot: a few seconds of it, correctness only (no speed assertion).

Every call of every kind (allowed, blocked, anonymous, torture, voicemail, odd caller names)
goes through the real server and the load generator checks each outcome.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import bench.pg
import bench.run
import bench.seed
from tests.pg import require_bindir


def test_benchmark_smoke_run_has_no_error_or_mismatch(tmp_path: Path) -> None:
    res = bench.run.smoke(tmp_path)
    ours = res["ours"]
    assert res["ok"], ours.get("examples")
    assert ours["errors"] == 0 and ours["mismatches"] == 0
    assert ours["calls"] >= 2000


def test_a_routine_from_before_gets_busy_from_the_server_in_the_benchmark(tmp_path: Path) -> None:
    """The generator's --old-routine checks that every busy call got EXEC Busy (and no
    CALLSCREEN_THEN): the path a dialplan with an older routine takes."""
    res = bench.run.smoke(tmp_path, old_routine=True)
    assert res["ok"], res["ours"].get("examples")


def test_the_sqlite_floor_answers_every_call_and_logs_each_one(tmp_path: Path) -> None:
    res = bench.run.smoke(tmp_path, ("floor",))
    floor = res["floor"]
    assert res["ok"] and floor["errors"] == 0 and floor["calls"] >= 2000, floor.get("examples")
    counts = []
    for db in ("smoke.db", "smoke-floor.db"):  # the seeded database, and the floor's copy
        with sqlite3.connect(tmp_path / db) as conn:
            counts.append(conn.execute("SELECT count(*) FROM call_log").fetchone()[0])
    assert counts[1] - counts[0] == floor["calls"] + 1  # and the runner's start-up probe call


def test_the_scripted_ceiling_has_our_conversation_with_every_call(tmp_path: Path) -> None:
    """The block-heavy mix's efficiency is judged against it: it must do ours' work (every call
    kind checked by the generator like ours: variables, Busy left to the routine, voicemail,
    torture until the caller hangs up), only with every answer known in advance."""
    res = bench.run.smoke(tmp_path, ("scripted",))
    scripted = res["scripted"]
    assert res["ok"] and scripted["check"], scripted.get("examples")
    assert scripted["errors"] == 0 and scripted["mismatches"] == 0 and scripted["calls"] >= 2000
    assert all(scripted["by_category"].get(c) for c in ("blocked", "voicemail", "torture"))


def test_the_postgresql_benchmark_runs_and_checks_every_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench.pg`` once stopped at start-up for two sessions unnoticed (it had no test): a
    second of each setup, every call checked by the generator, the ratio line printed."""
    require_bindir()
    code = bench.pg.main(
        ["--entries", "1000", "--repeat", "1", "--duration", "1", "--warmup", "0.5",
         "--setups", "sqlite,postgresql", "--workdir", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "postgresql/sqlite calls/s:" in out and "DB xacts/call" in out


@pytest.mark.parametrize("kind", ["allowed", "blocked"])
def test_the_instruction_count_harness_runs_every_call_to_its_call_log_row(
    tmp_path: Path, kind: str
) -> None:
    """``bench.callcost`` runs this harness under valgrind (not here: valgrind is not a test
    dependency). Its calls must be real ones: each answered, logged and given its call-log
    row."""
    db = tmp_path / "seed.db"
    manifest = bench.seed.seed(db, 200)["manifest"]
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM call_log").fetchone()[0]
    cmd = [sys.executable, "-m", "bench.callcost", "--inner", str(bench.run.REPO), str(db)]
    subprocess.run([*cmd, manifest, kind, "40", "50"], cwd=bench.run.REPO, check=True)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT result FROM call_log").fetchall()[before:]
    assert len(rows) == 40
    assert {r[0] for r in rows} == ({"ALLOWED"} if kind == "allowed" else {"BLOCKED"})
