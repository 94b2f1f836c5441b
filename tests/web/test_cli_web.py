"""``callscreen web`` as an admin runs it: a child process, its stderr, flags > env > [web] table
> default, the TLS advice when bound beyond loopback, and a clean exit on SIGTERM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from .web_process import CLI, WebProcess


def test_web_serves_the_api_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    p = WebProcess(tmp_path / "c.db", "web", "--port", "0")
    try:
        assert p.host == "127.0.0.1"
        r = httpx.get(f"http://127.0.0.1:{p.port}/api/v1/openapi.json")
        assert r.status_code == 200
        assert "server" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"
        assert httpx.get(f"http://127.0.0.1:{p.port}/api/v1/me").status_code == 401
    finally:
        code = p.stop()
    assert code == 0, "".join(p.lines)
    log = "".join(p.lines)
    assert "TLS" not in log  # loopback: no advice
    assert "GET /api/v1" not in log  # no access log of uvicorn's own


def test_binding_beyond_loopback_prints_how_to_put_it_behind_tls(tmp_path: Path) -> None:
    p = WebProcess(tmp_path / "c.db", "web", "--host", "0.0.0.0", "--port", "0")
    try:
        assert p.host == "0.0.0.0"
    finally:
        p.stop()
    log = "".join(p.lines)
    assert "reverse proxy that terminates TLS" in log
    assert "--behind-https" in log


def test_the_web_table_of_the_config_file_and_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "callscreen.toml"
    cfg.write_text('[web]\nhost = "127.0.0.1"\nport = 0\nbehind_https = true\n')
    p = WebProcess(tmp_path / "c.db", "--config", str(cfg), "web")
    try:
        r = httpx.get(f"http://127.0.0.1:{p.port}/api/v1/openapi.json")
        assert r.headers["strict-transport-security"].startswith("max-age=")  # from the file
    finally:
        p.stop()
    # The environment beats the file; the flag beats the environment.
    p = WebProcess(
        tmp_path / "c.db",
        "--config", str(cfg), "web", "--port", "0",
        env={"CALLSCREEN_WEB_HOST": "127.0.0.2", "CALLSCREEN_WEB_PORT": "1"},
    )  # fmt: skip
    try:
        assert p.host == "127.0.0.2"
    finally:
        p.stop()


def test_an_unknown_key_in_the_web_table_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "callscreen.toml"
    cfg.write_text("[web]\nbehind_http = true\n")
    r = subprocess.run(
        [*CLI, "--config", str(cfg), "web"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert "unknown key 'web.behind_http'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_an_error_not_a_hang(tmp_path: Path) -> None:
    p = WebProcess(tmp_path / "c.db", "web", "--port", "0")
    try:
        r = subprocess.run(
            [*CLI, "--db", str(tmp_path / "c.db"), "web", "--port", str(p.port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        p.stop()
    assert r.returncode != 0
    assert "address already in use" in r.stderr.lower() or "errno 98" in r.stderr.lower()


def test_the_call_path_imports_nothing_of_the_web_tier() -> None:
    code = (
        "import sys, callscreen.app, callscreen.screening, callscreen.fastagi;"
        "bad = [m for m in sys.modules if m.startswith(('callscreen.web', 'callscreen.ops',"
        " 'starlette', 'uvicorn', 'argon2'))];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
