"""The systemd units shipped in the package: systemd accepts them (``systemd-analyze
verify``), they hold the sandbox and stop settings we promise, and the unit's exact
ExecStart command line runs the server, which screens a call and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callscreen import install
from callscreen.app import Config

from .running import Running, call, free_port, write_config

PROGRAM = Path(sys.executable).parent / "callscreen"


def systemd_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found (Debian's systemd package; `make test` installs it)"
        if os.environ.get("CALLSCREEN_E2E_REQUIRED") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.mark.parametrize("name", install.UNITS)
def test_systemd_analyze_verify_accepts_the_units(name: str, tmp_path: Path) -> None:
    unit = tmp_path / name
    unit.write_text(install.render_unit(name, PROGRAM, tmp_path / "cs.toml"))
    out = subprocess.run(
        [systemd_tool("systemd-analyze"), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and only warns: any line naming our file is a finding.
    ours = [line for line in out.stderr.splitlines() if name in line]
    assert out.returncode == 0 and not ours, out.stderr


def settings(name: str) -> dict[str, str]:
    out = {}
    for line in install.shipped(f"systemd/{name}").splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.mark.parametrize("name", install.UNITS)
def test_units_run_sandboxed_as_their_own_user(name: str) -> None:
    s = settings(name)
    assert s["User"] == "callscreen" and s["StateDirectory"] == "callscreen"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "CapabilityBoundingSet": "",
    }.items():
        assert s[key] == value, key
    assert str(install.SYSTEM_DB.parent) == "/var/lib/" + s["StateDirectory"]
    if name == "callscreen.service":
        # SIGTERM drains calls, then writes the call log: systemd must wait for both.
        c = Config(db=Path("x"))
        assert int(s["TimeoutStopSec"]) >= 2 * (c.drain_timeout + c.flush_timeout)
        assert "SuccessExitStatus" not in s  # exit 3 (rows lost) stays a failure


def test_sysusers_creates_the_service_user(tmp_path: Path) -> None:
    conf = tmp_path / "callscreen.conf"
    conf.write_text(install.shipped("systemd/callscreen.sysusers"))
    (tmp_path / "root/etc").mkdir(parents=True)
    subprocess.run(
        [systemd_tool("systemd-sysusers"), f"--root={tmp_path / 'root'}", str(conf)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    entry = (tmp_path / "root/etc/passwd").read_text().split("\n")[0].split(":")
    assert entry[0] == "callscreen" and entry[5] == "/var/lib/callscreen"
    assert entry[6].endswith("nologin")


def test_the_units_exact_command_line_serves_a_call(tmp_path: Path) -> None:
    cfg, port = tmp_path / "cs.toml", free_port()
    write_config(cfg, tmp_path / "cs.db", port, free_port())
    argv = install.exec_start(install.render_unit("callscreen.service", PROGRAM, cfg))
    assert argv == [str(PROGRAM), "--config", str(cfg), "serve"]
    server = Running(argv, cwd=tmp_path)
    try:
        server.wait_for(rf"listening on 127\.0\.0\.1:{port}")
        t = call(port, "+13035551212")
        assert t.variables["CALLSCREEN_RESULT"] == "ALLOWED" and t.closed_by_server
    finally:
        status = server.stop()
    assert status == 0, "".join(server.lines)
    assert "call log flushed: 1 rows written" in "".join(server.lines)
