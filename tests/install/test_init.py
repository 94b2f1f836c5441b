"""``callscreen init``: fresh, repeated (changes nothing), scripted, and bad input (one line,
exit 2, nothing written)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from callscreen import install

CLI = [sys.executable, "-m", "callscreen"]
PASSWORD = "correct horse\n"


def init(tmp: Path, *args: str, stdin: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--db", str(tmp / "cs.db"), "init", "--config", str(tmp / "cs.toml"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(tmp: Path) -> dict[str, object]:
    """Every file's bytes and mtime, except the database, whose rows are compared instead
    (SQLite's -wal/-shm come and go with each open)."""
    out: dict[str, object] = {}
    for p in sorted(tmp.rglob("*")):
        if p.is_file() and not p.name.startswith("cs.db"):
            out[str(p)] = (p.read_bytes(), p.stat().st_mtime_ns)
    import sqlite3

    conn = sqlite3.connect(tmp / "cs.db")
    out["db"] = list(conn.iterdump())
    conn.close()
    return out


def test_fresh_then_again_changes_nothing(tmp_path: Path) -> None:
    asterisk = tmp_path / "asterisk"
    asterisk.mkdir()
    out = init(tmp_path, "--password-stdin", "--install-dialplan", str(asterisk))
    assert out.returncode == 0, out.stderr
    assert (asterisk / "callscreen.conf").read_text() == install.shipped("callscreen.conf")
    assert (
        "#include callscreen.conf" in out.stdout and "Gosub(callscreen,s,1(${EXTEN}))" in out.stdout
    )
    cfg = (tmp_path / "cs.toml").read_text()
    assert f'db = "{tmp_path / "cs.db"}"' in cfg
    users = subprocess.run(
        [*CLI, "--config", str(tmp_path / "cs.toml"), "user", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [(u["username"], u["role"]) for u in json.loads(users.stdout)] == [("admin", "admin")]

    before = snapshot(tmp_path)
    again = init(tmp_path, "--password-stdin", "--install-dialplan", str(asterisk), stdin="")
    assert again.returncode == 0, again.stderr
    assert snapshot(tmp_path) == before
    assert "created" not in again.stdout and "updated" not in again.stdout
    assert "unchanged" in again.stdout and "kept" in again.stdout


def test_scripted_flags_and_busy_default_port(tmp_path: Path) -> None:
    with socket.socket() as busy:  # 4573 taken (or already taken by something else)
        with contextlib.suppress(OSError):
            busy.bind(("127.0.0.1", 4573))
        web = free_port()
        out = init(tmp_path, "--password-stdin", "--admin", "root@pbx", "--web-port", str(web))
    assert out.returncode == 0, out.stderr
    from callscreen import config

    cfg = config.load(tmp_path / "cs.toml")
    assert cfg["serve"]["port"] != 4573 and cfg["web"]["port"] == web
    assert f"CALLSCREEN_URL=agi://127.0.0.1:{cfg['serve']['port']}/screen" in out.stdout
    # The config file now says the ports: a flag that disagrees is refused.
    bad = init(tmp_path, "--web-port", str(web + 1))
    assert bad.returncode == 2 and f"already sets web-port {web}" in bad.stderr


def test_changed_dialplan_is_kept_before_it_is_replaced(tmp_path: Path) -> None:
    asterisk = tmp_path / "asterisk"
    asterisk.mkdir()
    mine = asterisk / "callscreen.conf"
    mine.write_text("; my own edits\n")
    out = init(tmp_path, "--password-stdin", "--install-dialplan", str(asterisk))
    assert out.returncode == 0, out.stderr
    kept = [p for p in asterisk.iterdir() if p.name.endswith(".bak")]
    assert len(kept) == 1 and kept[0].read_text() == "; my own edits\n"
    assert mine.read_text() == install.shipped("callscreen.conf")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--password-stdin", "--admin", "no spaces"], PASSWORD, "not a username"),
        (["--password-stdin"], "short\n", "too short"),
        ([], PASSWORD, "--password-stdin"),  # no terminal, no --password-stdin
        (
            ["--password-stdin", "--install-dialplan", "/nonexistent/asterisk"],
            PASSWORD,
            "no directory",
        ),
        (["--password-stdin", "--port", "4573", "--web-port", "4573"], PASSWORD, "differ"),
        (["--password-stdin", "--port", "0"], PASSWORD, "--port"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    out = init(tmp_path, *args, stdin=stdin)
    assert out.returncode == 2, out
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert out.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_port_in_use_and_broken_config_write_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        used = s.getsockname()[1]
        out = init(tmp_path, "--password-stdin", "--port", str(used))
    assert out.returncode == 2 and "in use" in out.stderr and out.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "cs.toml").write_text("[serve]\nport = 'x'\n")
    out = init(tmp_path, "--password-stdin")
    assert out.returncode == 2 and "serve.port" in out.stderr and out.stderr.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["cs.toml"]


def test_systemd_installs_units_and_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with the system root moved into tmp_path (no host change)."""
    from callscreen.cli import main

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    monkeypatch.setattr(install, "SYSTEM_ROOT", root)
    program = Path(sys.executable).parent / "callscreen"
    monkeypatch.setattr(install, "executable", lambda: program)
    monkeypatch.setattr(install, "check_executable", lambda p: None)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD))
    argv = [
        "--db",
        str(tmp_path / "cs.db"),
        "init",
        "--config",
        str(tmp_path / "cs.toml"),
        "--password-stdin",
        "--systemd",
    ]
    main(argv)  # returns on success (exits on an error)
    unit = (root / "etc/systemd/system/callscreen.service").read_text()
    assert install.exec_start(unit) == [
        str(program),
        "--config",
        str(tmp_path / "cs.toml"),
        "serve",
    ]
    assert "callscreen:x:" in (root / "etc/passwd").read_text()
    assert (root / "etc/systemd/system/callscreen-web.service").exists()


def test_systemd_refuses_an_installation_the_sandbox_hides() -> None:
    for path in (
        "/home/alice/.local/bin/callscreen",
        "/root/.local/bin/callscreen",
        "/tmp/venv/bin/callscreen",
    ):
        with pytest.raises(ValueError, match="sandbox hides"):
            install.check_executable(Path(path), Path("/usr/bin/python3"))
    install.check_executable(Path("/opt/callscreen/bin/callscreen"), Path("/usr/bin/python3"))
    # A venv in /opt whose Python is pyenv's, in /root: the service could not run it either.
    with pytest.raises(ValueError, match="its Python is under /root/"):
        install.check_executable(
            Path("/opt/callscreen/bin/callscreen"), Path("/root/.pyenv/versions/3.11/bin/python3")
        )


def test_interactive_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal init asks for the admin's name and the password (twice, not echoed)."""
    import fcntl
    import os
    import pty
    import termios
    import time

    master, slave = pty.openpty()

    def controlling_tty() -> None:  # getpass reads /dev/tty: make the pty ours
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*CLI, "--db", str(tmp_path / "cs.db"), "init", "--config", str(tmp_path / "cs.toml")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_tty,
    )
    os.close(slave)
    seen = b""

    def expect(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while text not in seen:
            assert time.monotonic() < deadline, seen
            seen += os.read(master, 4096)

    expect(b"first admin username [admin]:")
    os.write(master, b"boss\n")
    expect(b"password for boss:")
    os.write(master, b"a long password\n")
    expect(b"Repeat for confirmation:")
    os.write(master, b"a long password\n")
    assert proc.wait(60) == 0
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 4096):
            seen += chunk
    os.close(master)
    assert b"a long password" not in seen  # never echoed
    assert b"created  admin boss" in seen
