"""``log prune`` and ``serve --log-retention``'s settings, as an admin checks them: what is
gone, what is kept, what was printed, and the audit row."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from callscreen.db.backends import open_conn
from callscreen.timeutil import parse_retention

from .test_cli import Run
from .test_cli_reports import NOW, call, log_calls

DAY = 86400.0


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path / "cs.db", capsys)


def _age(run: Run) -> Run:
    """Seven calls: five 100-104 days old, two from today."""
    old = [call(DAY * (100 + i), "101", f"+1303555000{i}") for i in range(5)]
    log_calls(run.db, *old, call(60, "101", "+13035551111"), call(30, "102", "+13035552222"))
    return run


@pytest.fixture
def aged(db_url: Path | str, capsys: pytest.CaptureFixture[str]) -> Run:
    """:func:`_age`, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    return _age(Run(db_url, capsys))  # type: ignore[arg-type]


@pytest.fixture
def aged_file(run: Run) -> Run:
    """:func:`_age` on SQLite (doctor reads a file)."""
    return _age(run)


def times(db: Path | str) -> list[float]:
    async def read() -> list[float]:
        conn = await open_conn(db)
        try:
            return [r[0] for r in await conn.fetchall("SELECT time FROM call_log ORDER BY time")]
        finally:
            await conn.close()

    return asyncio.run(read())


def audit_rows(run: Run) -> list[dict[str, object]]:
    rows = run.json("audit")
    assert isinstance(rows, list)
    return [r for r in rows if r["action"] == "log.prune"]


def test_prune_deletes_older_keeps_newer_prints_count_and_audits(aged: Run) -> None:
    out = aged("log", "prune", "--before", "90d")
    assert out.startswith("deleted 5 call-log rows older than ")
    assert "(oldest " in out
    left = times(aged.db)
    assert len(left) == 2 and all(t > NOW - 3600 for t in left)
    (row,) = audit_rows(aged)
    assert row["target"] == "call_log" and row["source"] == "cli"
    after = row["after"]
    assert isinstance(after, dict) and after["rows"] == 5
    # Again: nothing older, nothing changed, no second audit row.
    assert aged("log", "prune", "--before", "90d").startswith("deleted 0 call-log rows")
    assert len(audit_rows(aged)) == 1


def test_a_date_cutoff_keeps_the_rows_after_it(aged: Run) -> None:
    from callscreen.timeutil import iso

    cut = iso(NOW - DAY * 102.5)  # the 103- and 104-day-old calls are older
    assert cut is not None
    data = aged.json("log", "prune", "--before", cut)
    assert data == {
        "before": cut,
        "dry_run": False,
        "rows": 2,
        "oldest": data["oldest"],
        "batch": 5000,
    }
    assert len(times(aged.db)) == 5
    assert min(times(aged.db)) > NOW - DAY * 102.5


def test_dry_run_counts_and_deletes_nothing(aged: Run) -> None:
    out = aged("log", "prune", "--before", "90d", "--dry-run")
    assert out.startswith("would delete 5 call-log rows older than ")
    assert len(times(aged.db)) == 7
    data = aged.json("log", "prune", "--before", "90d", "--dry-run")
    assert isinstance(data, dict) and data["rows"] == 5 and data["dry_run"] is True
    assert audit_rows(aged) == []


def test_small_batches_delete_everything_with_one_audit_row(aged: Run) -> None:
    data = aged.json("log", "prune", "--before", "90d", "--batch", "2")
    assert isinstance(data, dict) and data["rows"] == 5 and data["batch"] == 2
    assert len(times(aged.db)) == 2
    assert len(audit_rows(aged)) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--before", "2999-01-01"], "is in the future"),
        (["--before", "-5d"], "not a date"),
        (["--before", "last tuesday"], "not a date"),
        (["--before", "90d", "--batch", "0"], "--batch"),
        (["--before", "90d", "--batch", "100001"], "--batch"),
        ([], "--before"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_deletes_nothing(
    aged: Run, args: list[str], words: str
) -> None:
    err = aged("log", "prune", *args, code=2)
    assert words in err
    assert len(times(aged.db)) == 7
    assert audit_rows(aged) == []


def test_log_options_belong_to_log_not_to_prune(aged: Run) -> None:
    aged("log", "--ext", "101", "prune", "--before", "90d", code=2)
    assert len(times(aged.db)) == 7
    assert "+13035551111" in aged("log", "--ext", "101")  # log itself still works


def test_parse_retention() -> None:
    assert parse_retention("0") == 0
    assert parse_retention("90d") == 90 * DAY
    assert parse_retention("2w") == 14 * DAY
    for bad in ("-1d", "90", "junk", ""):
        with pytest.raises(ValueError):
            parse_retention(bad)


@pytest.mark.parametrize("value", ["-1d", "ninety days", "90"])
def test_serve_refuses_a_bad_retention(run: Run, value: str) -> None:
    err = run("serve", "--log-retention", value, code=2)
    assert "--log-retention" in err and "0 to keep everything" in err


def _setting(out: str, name: str) -> dict[str, object]:
    settings = json.loads(out)["settings"]
    assert isinstance(settings, dict)
    value = settings[name]
    assert isinstance(value, dict)
    return value


def test_retention_from_default_env_and_config_file(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run("serve", "--check-config", "--json")
    assert _setting(out, "log_retention") == {"value": "90d", "source": "default"}
    cfg = tmp_path / "cs.toml"
    cfg.write_text('[serve]\nlog_retention = "30d"\n')
    out = run("--config", str(cfg), "serve", "--check-config", "--json")
    assert _setting(out, "log_retention") == {"value": "30d", "source": "config file"}
    cfg.write_text("[serve]\nlog_retention = 0\n")
    out = run("--config", str(cfg), "serve", "--check-config", "--json")
    assert _setting(out, "log_retention") == {"value": "0", "source": "config file"}
    monkeypatch.setenv("CALLSCREEN_LOG_RETENTION", "52w")
    out = run("--config", str(cfg), "serve", "--check-config", "--json")
    assert _setting(out, "log_retention") == {"value": "52w", "source": "env"}
    cfg.write_text('[serve]\nlog_retention = "forever"\n')
    monkeypatch.delenv("CALLSCREEN_LOG_RETENTION")
    run("--config", str(cfg), "serve", "--check-config", code=2)


def test_prune_batches_against_a_writer_holding_no_lock_for_long(db_url: Path | str) -> None:
    """The store's prune deletes at most ``limit`` rows a transaction, oldest first."""
    from callscreen.db.store import Store

    db = db_url
    log_calls(db, *[call(DAY * 200 - i, "101", "+13035550000") for i in range(10)])
    log_calls(db, call(10, "101", "+13035550001"))

    async def go() -> list[int]:
        async with await Store.open(db) as s:
            return [await s.prune_calls(NOW - DAY, 4) for _ in range(4)]

    assert asyncio.run(go()) == [4, 4, 2, 0]
    assert len(times(db)) == 1


def test_doctor_shows_the_call_log_size_and_oldest_row(aged_file: Run) -> None:
    aged = aged_file
    from .test_cli_ops import free_port

    d = aged.json("doctor", "--port", str(free_port()))
    assert isinstance(d, dict)
    (check,) = [c for c in d["checks"] if c["name"] == "call log"]
    assert check["ok"] is True and check["detail"].startswith("7 calls, the oldest from ")
    aged("log", "prune", "--before", "90d")
    d = aged.json("doctor", "--port", str(free_port()))
    assert isinstance(d, dict)
    (check,) = [c for c in d["checks"] if c["name"] == "call log"]
    assert check["detail"].startswith("2 calls, the oldest from ")


def test_doctor_fails_config_on_a_retention_serve_would_refuse(
    aged_file: Run, tmp_path: Path
) -> None:
    aged = aged_file
    from .test_cli_ops import free_port

    cfg = tmp_path / "cs.toml"
    cfg.write_text('[serve]\nlog_retention = "forever"\n')
    from callscreen.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--db", str(aged.db), "--config", str(cfg), "doctor", "--port", str(free_port())])
    assert exc.value.code == 1
    out = aged.capsys.readouterr().out
    assert "FAIL  config:" in out and "log_retention: not a duration" in out
