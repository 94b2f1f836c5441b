"""Faults against the real Asterisk: the server killed mid-call, and the connection cap.

Fail open is Asterisk's side of the bargain: these tests check that the shipped routine really
lets calls through when the server is gone or refuses, and that a kill frees the channel.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .bed import Ami, Asterisk, Cli, Server, callscreen_argv, free_port

pytestmark = pytest.mark.e2e


def _url(srv: Server) -> list[str]:
    return [f"CALLSCREEN_URL=agi://127.0.0.1:{srv.port}/screen"]


async def test_server_killed_mid_call_releases_the_channel_and_later_calls_go_through(
    ami: Ami, asterisk: Asterisk, extra_server: Callable[..., Server]
) -> None:
    srv = extra_server()
    cli = Cli(srv.db)
    cli("ext", "set", "221", "--enable", "--treatment", "torture")
    cli("block", "add", "--ext", "221", "+13035550221")
    call = await ami.originate("221", '"R" <+13035550221>', ring_timeout=60, variables=_url(srv))
    await ami.wait_until(lambda: "Ringing" in call.caller_states, 5, "ringing", call)
    assert srv.established_connections() == 1

    assert srv.proc is not None
    srv.proc.kill()  # SIGKILL: no shutdown, the kernel closes the socket
    srv.proc.wait()
    srv.proc = None

    # Asterisk notices the closed socket when the current Wait (10 s at most) returns; the
    # routine then hangs up the blocked caller: never Dial, no channel left.
    killed = time.monotonic()
    await ami.finished(call, within=13)
    assert time.monotonic() - killed < 12
    assert call.result == "BLOCKED" and not call.reached_dial, call.summary()
    assert asterisk.wait_no_channels() == 0

    # While the server is down, calls go through the shipped routine to Dial.
    later = await ami.call("221", '"R" <+13035550221>', variables=_url(srv))
    assert later.result == "UNSCREENED" and later.reached_dial, later.summary()
    assert asterisk.wait_no_channels() == 0


async def test_connection_beyond_the_cap_fails_open(
    ami: Ami, asterisk: Asterisk, extra_server: Callable[..., Server]
) -> None:
    srv = extra_server("--max-connections", "1")
    cli = Cli(srv.db)
    cli("ext", "set", "222", "--enable", "--treatment", "torture")
    cli("block", "add", "--ext", "222", "+13035550222")
    cli("ext", "set", "223", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "223", "+13035550223")

    held = await ami.originate("222", '"R" <+13035550222>', ring_timeout=60, variables=_url(srv))
    await ami.wait_until(lambda: "Ringing" in held.caller_states, 5, "ringing", held)

    # The cap is reached: the server closes the new connection before reading anything, and
    # the call is let through (it would have been blocked).
    refused = await ami.call("223", '"B" <+13035550223>', variables=_url(srv))
    assert refused.result == "UNSCREENED" and refused.reached_dial, refused.summary()

    await ami.hangup(held)
    await ami.finished(held, within=3)
    # With the held call gone, the same caller is screened again.
    again = await ami.call("223", '"B" <+13035550223>', variables=_url(srv))
    assert again.result == "BLOCKED" and not again.reached_dial, again.summary()
    assert asterisk.wait_no_channels() == 0


#: What the shipped routine needs to screen a call, and the bed to place one: the dialplan
#: (pbx_config), the AGI client (res_agi, which needs res_speech), Gosub/Return (app_stack),
#: Dial and its bridge, CALLERID(). No app_verbose (Log, Verbose), no playback, no voicemail.
MINIMAL_MODULES = (
    "pbx_config.so",
    "res_speech.so",
    "res_agi.so",
    "app_stack.so",
    "app_dial.so",
    "bridge_simple.so",
    "func_callerid.so",
)


def doctor_modules(tmp_path: Path, ast: Asterisk) -> dict[str, bool]:
    """``callscreen doctor --ami`` against ``ast``: {module: loaded} as it reports them."""
    run = subprocess.run(
        [*callscreen_argv(), "--db", str(tmp_path / "doctor.db"), "doctor", "--json",
         "--ami", f"127.0.0.1:{ast.ami_port}", "--ami-user", ast.ami_user],
        env={**os.environ, "CALLSCREEN_AMI_SECRET": ast.ami_secret},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    checks = json.loads(run.stdout)["checks"]
    prefix = "asterisk module "
    return {c["name"][len(prefix) :]: c["ok"] for c in checks if c["name"].startswith(prefix)}


def test_doctor_finds_every_module_on_the_bed_asterisk(asterisk: Asterisk, tmp_path: Path) -> None:
    modules = doctor_modules(tmp_path, asterisk)
    assert modules and all(modules.values()), modules


def test_doctor_says_when_it_cannot_log_in(asterisk: Asterisk, tmp_path: Path) -> None:
    run = subprocess.run(
        [*callscreen_argv(), "--db", str(tmp_path / "doctor.db"), "doctor",
         "--ami", f"127.0.0.1:{asterisk.ami_port}", "--ami-user", asterisk.ami_user],
        env={**os.environ, "CALLSCREEN_AMI_SECRET": "wrong-secret"},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert run.returncode == 1
    assert "AMI login refused" in run.stdout


async def test_fail_open_needs_only_the_dialplan_core_and_app_stack(
    e2e_ready: Path, e2e_logs: Path, tmp_path: Path
) -> None:
    """The server down on an Asterisk that loads only what screening needs: the routine's
    path from "no answer" to Return uses nothing else (a Log() there once hung calls up on a
    PBX without app_verbose), so the call still reaches Dial."""
    nobody = free_port()  # no server listens here
    ast = Asterisk(e2e_ready, nobody, e2e_logs, modules=MINIMAL_MODULES)
    ast.start()
    ami = Ami(ast)
    try:
        loaded = ast.cli("module show like app_verbose", check=False).stdout
        assert "0 modules loaded" in loaded, loaded
        await ami.connect()
        call = await ami.call("224", '"Down" <+13035550224>')
        assert call.result == "UNSCREENED" and call.reached_dial, call.summary()
        assert ast.wait_no_channels() == 0
        # doctor --ami asks this Asterisk: what screening needs is there, voicemail is not.
        modules = doctor_modules(tmp_path, ast)
        assert all(modules[m] for m in ("pbx_config", "res_agi", "app_stack", "app_dial"))
        assert not modules["app_voicemail"] and not modules["app_playback"]
    finally:
        await ami.close()
        ast.stop()
