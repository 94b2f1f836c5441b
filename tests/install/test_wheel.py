"""The wheel carries everything: built from this checkout, installed into a clean virtualenv
outside it, it sets itself up (``init``), serves, screens a blocked call, and serves the
portal's pages and static files. Every non-Python file of the package must be in it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

from .running import Running, call, free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("callscreen-*.whl")
    return built


def test_the_wheel_has_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {
        str(p.relative_to(REPO))
        for p in (REPO / "callscreen").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc",)
    }
    assert source - names == set()
    # The call path is compiled (setup.py's COMPILED), each beside its .py source.
    for module in ("screening", "fastagi/server", "db/lookup"):
        assert any(n.startswith(f"callscreen/{module}.cpython-") for n in names), module
    for must in (
        "callscreen/data/callscreen.conf",
        "callscreen/data/systemd/callscreen.service",
        "callscreen/data/systemd/callscreen-web.service",
        "callscreen/data/systemd/callscreen.sysusers",
        "callscreen/db/migrations/0001_initial.sql",
        "callscreen/web/templates/base.html",
        "callscreen/web/static/portal.css",
    ):
        assert must in names


@pytest.mark.timeout(600)  # pip fetches the dependencies on a fresh machine
def test_install_init_serve_and_a_screened_call(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run(
        [str(env_dir / "bin/pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stderr
    cs = str(env_dir / "bin/callscreen")
    where = subprocess.run(
        [str(env_dir / "bin/python"), "-c", "import callscreen; print(callscreen.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(env_dir)), where  # the installed copy, not the checkout
    # This machine has a C compiler: the wheel's call path is compiled (setup.py), and the
    # screened call below runs through the compiled modules.
    built = subprocess.run(
        [str(env_dir / "bin/python"), "-c", "import callscreen; print(callscreen.compiled())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert built.strip() == "True"

    cfg, port, web_port = tmp_path / "cs.toml", free_port(), free_port()
    init = subprocess.run(
        [
            cs,
            "--db",
            str(tmp_path / "cs.db"),
            "init",
            "--config",
            str(cfg),
            "--password-stdin",
            "--port",
            str(port),
            "--web-port",
            str(web_port),
        ],
        input="a long password\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    dialplan = subprocess.run([cs, "dialplan"], capture_output=True, text=True, check=True)
    assert dialplan.stdout == (REPO / "dialplan/callscreen.conf").read_text()
    for argv in (
        ["block", "add", "--ext", "101", "303-555-1212"],
        ["ext", "set", "101", "--enable", "--treatment", "busy"],
    ):
        subprocess.run([cs, "--config", str(cfg), *argv], check=True, capture_output=True)

    server = Running([cs, "--config", str(cfg), "serve"], cwd=tmp_path)
    web = Running([cs, "--config", str(cfg), "web"], cwd=tmp_path)
    try:
        server.wait_for(rf"listening on 127\.0\.0\.1:{port}")
        server.wait_for(r"call path: compiled \(mypyc\)")
        t = call(port, "+13035551212")
        assert t.variables["CALLSCREEN_RESULT"] == "BLOCKED" and "Busy" in t.apps
        web.wait_for(rf"web listening on http://127\.0\.0\.1:{web_port}")
        base = f"http://127.0.0.1:{web_port}"
        with urllib.request.urlopen(f"{base}/", timeout=10) as page:
            assert page.status == 200 and "<form" in page.read().decode()
        with urllib.request.urlopen(f"{base}/static/portal.css", timeout=10) as css:
            shipped = (REPO / "callscreen/web/static/portal.css").read_bytes()
            assert css.read() == shipped
    finally:
        assert server.stop() == 0, "".join(server.lines)
        web.stop()
    log = subprocess.run(
        [cs, "--config", str(cfg), "log", "--json"], capture_output=True, text=True, check=True
    )
    (row,) = json.loads(log.stdout)
    assert (row["ext"], row["result"], row["reason"]) == ("101", "BLOCKED", "ext-blocklist")
