"""The CLI on a postgresql:// URL: chosen by --db, the config file or the environment; what
works on a SQLite file only refuses with one line; a password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from callscreen.db.url import is_postgres

from .test_cli import Run


@pytest.fixture
def run(pg_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(pg_url, capsys)  # type: ignore[arg-type]


def test_every_way_of_naming_the_database_reaches_postgresql(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(run.db)
    assert is_postgres(url)
    run("block", "add", "--ext", "101", "3035551212")
    cfg = tmp_path / "cs.toml"
    cfg.write_text(f'db = "{url}"\n')
    from callscreen.cli import main

    for argv, env in (
        (["--config", str(cfg)], None),
        ([], url),
    ):
        if env is not None:
            monkeypatch.setenv("CALLSCREEN_DB", env)
        main([*argv, "block", "list", "--ext", "101", "--json"])  # returns: exit 0
        assert "+13035551212" in run.capsys.readouterr().out
    assert not list(tmp_path.glob("postgres*"))  # no file named like the URL


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["db", "backup", "x.db"], "use pg_dump"),
        (["db", "restore", "x.db"], "use pg_restore"),
        (["doctor"], "needs a SQLite database file"),
    ],
)
def test_what_needs_a_sqlite_file_refuses_with_one_line(
    run: Run, args: list[str], words: str
) -> None:
    err = run(*args, code=2)
    assert words in err


def test_an_unreachable_server_is_one_line_exit_1_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = Run("postgresql://cs:s3cret@127.0.0.1:1/callscreen", capsys)  # type: ignore[arg-type]
    err = run("ext", "list", code=1)
    assert "cannot open database postgresql://cs:***@127.0.0.1:1/callscreen" in err
    assert "s3cret" not in err


def test_log_and_stats_read_postgresql(run: Run) -> None:
    assert run.json("log") == []
    assert run.json("stats")["calls"] == 0  # type: ignore[index]
