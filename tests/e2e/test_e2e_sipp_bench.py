"""The call-setup benchmark (bench/sipp.py, `make bench-sipp`) must not rot: a few calls each
way through the real Asterisk, correctness only (no speed assertion), well under a minute.

It measures callscreen as installed: the call path compiled by mypyc (setup.py), so this is
also the shipped build's calls through the real Asterisk and the shipped routine."""

from __future__ import annotations

import argparse
from pathlib import Path

import bench.sipp


def test_sipp_call_setup_bench_runs(e2e_ready: Path, tmp_path: Path) -> None:
    a = argparse.Namespace(
        rate=20.0,
        calls=10,
        rounds=1,
        entries=1000,
        workdir=tmp_path / "sipp",
        keep=True,
        json=None,
        pure=False,
    )
    res = bench.sipp.run(a)
    text = bench.sipp.report(res)
    assert res["ok"], text
    for way in bench.sipp.WAYS:
        got = res["ways"][way]
        assert got["calls"] == 10 and got["answered"] >= 9, text  # 1 packet may be missed
        assert 0 < got["p50_ms"] < 1000, text
    # every screened call (and the warm-up's) left its line in callscreen's default log
    assert res["server_call_lines_allowed"] == res["screened_calls_placed"] == 20
    assert "screened - floor: p50" in text
    assert res["build"] == "compiled (mypyc)", text  # run() also checked serve's own log line
