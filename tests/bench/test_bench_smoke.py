"""The benchmark must not rot: a few seconds of it, correctness only (no speed assertion).

Every call of every kind (allowed, blocked, anonymous, torture, voicemail, odd caller names)
goes through the real server and the load generator checks each outcome.
"""

from __future__ import annotations

from pathlib import Path

import bench.run


def test_benchmark_smoke_run_has_no_error_or_mismatch(tmp_path: Path) -> None:
    res = bench.run.smoke(tmp_path)
    ours = res["ours"]
    assert res["ok"], ours.get("examples")
    assert ours["errors"] == 0 and ours["mismatches"] == 0
    assert ours["calls"] >= 2000
