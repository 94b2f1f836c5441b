"""``callscreen db backup`` and ``db restore``: exact copies, and no restore under a server."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.integration.serve_process import ServeProcess

from .test_upgrade import dump, make_v1

CLI = [sys.executable, "-m", "callscreen"]


def cs(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--db", str(db), *args], capture_output=True, text=True, timeout=60
    )


def numbers(db: Path) -> list[str]:
    out = cs(db, "block", "list", "--ext", "101", "--json")
    assert out.returncode == 0, out.stderr
    return sorted(e["pattern"] for e in json.loads(out.stdout))


def test_backup_then_restore_gives_the_same_database(tmp_path: Path) -> None:
    db, copy = tmp_path / "cs.db", tmp_path / "copy.db"
    assert cs(db, "block", "add", "--ext", "101", "3035551212", "+1900*").returncode == 0
    out = cs(db, "db", "backup", str(copy))
    assert out.returncode == 0 and "schema v" in out.stdout, out.stderr
    assert dump(copy) == dump(db)
    assert copy.stat().st_mode & 0o777 == 0o600  # password hashes inside
    saved = dump(db)

    assert cs(db, "block", "add", "--ext", "101", "3035550000").returncode == 0
    assert cs(db, "block", "remove", "--ext", "101", "+1900*").returncode == 0
    out = cs(db, "db", "restore", str(copy))
    assert out.returncode == 0, out.stderr
    assert dump(db) == saved
    assert numbers(db) == ["+13035551212", "+1900*"]
    # What it replaced is kept (a restore can be undone).
    kept = tmp_path / "cs.db.before-restore.bak"
    assert "+13035550000" in "\n".join(dump(kept))


def test_restore_refused_while_a_server_runs(tmp_path: Path) -> None:
    db, copy = tmp_path / "cs.db", tmp_path / "copy.db"
    assert cs(db, "block", "add", "--ext", "101", "3035551212").returncode == 0
    assert cs(db, "db", "backup", str(copy)).returncode == 0
    assert cs(db, "block", "add", "--ext", "101", "3035550000").returncode == 0
    server = ServeProcess(db)
    try:
        out = cs(db, "db", "restore", str(copy))
        assert out.returncode == 1
        assert out.stderr.count("\n") == 1 and "server" in out.stderr and "running" in out.stderr
        assert numbers(db) == ["+13035550000", "+13035551212"]  # untouched
        # A backup is fine while it runs.
        assert cs(db, "db", "backup", str(tmp_path / "live.db")).returncode == 0
    finally:
        server.proc.send_signal(signal.SIGKILL)  # even a killed server leaves no stale lock
        server.proc.wait(10)
    out = cs(db, "db", "restore", str(copy))
    assert out.returncode == 0, out.stderr
    assert numbers(db) == ["+13035551212"]


def test_restore_of_an_old_backup_is_migrated_on_next_open(tmp_path: Path) -> None:
    old, db = tmp_path / "old.db", tmp_path / "cs.db"
    make_v1(old)
    assert cs(db, "ext", "list").returncode == 0
    out = cs(db, "db", "restore", str(old))
    assert out.returncode == 0 and "schema v1" in out.stdout, out.stderr
    assert cs(db, "ext", "list", "--json").returncode == 0  # migrates, after a copy
    assert dump(tmp_path / "cs.db.v1.bak") == dump(old)


def test_bad_backups_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    db = tmp_path / "cs.db"
    assert cs(db, "block", "add", "--ext", "101", "3035551212").returncode == 0
    before = dump(db)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 1000)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)  # SQLite, but not ours
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    for src in (junk, other, tmp_path / "missing.db"):
        out = cs(db, "db", "restore", str(src))
        assert out.returncode == 1 and out.stderr.count("\n") == 1, (src, out.stderr)
    assert dump(db) == before
    out = cs(tmp_path / "none.db", "db", "backup", str(tmp_path / "x.db"))
    assert out.returncode == 1 and not (tmp_path / "x.db").exists()


def test_db_commands_with_a_config_file_that_names_the_database(tmp_path: Path) -> None:
    """The config's ``db`` key and the ``db`` command share a name in click's default_map."""
    db, cfg = tmp_path / "cs.db", tmp_path / "cs.toml"
    cfg.write_text(f'db = "{db}"\n')
    base = [*CLI, "--config", str(cfg)]
    run = subprocess.run
    assert run([*base, "block", "add", "--ext", "101", "3035551212"], check=False).returncode == 0
    out = run([*base, "db", "backup", str(tmp_path / "b.db")], capture_output=True, text=True)
    assert out.returncode == 0 and str(db) in out.stdout, out.stderr
    out = run([*base, "serve", "--check-config", "--json"], capture_output=True, text=True)
    setting = json.loads(out.stdout)["settings"]["db"]
    assert setting == {"value": str(db), "source": "config file"}
