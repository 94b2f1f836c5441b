"""The Docker sample configuration (docker/asterisk/etc) in the real Asterisk.

No Docker engine is needed: the sample's dialplan, modules and voicemail config boot in the
test bed's Asterisk (only its directories, AMI and log files are the bed's), with
CALLSCREEN_URL in the environment like compose sets it. The commands docker/README.md gives
users (the CLI setup and the test calls) are run exactly as written.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from .bed import REPO, Ami, Asterisk, Cli, Server

pytestmark = pytest.mark.e2e

SAMPLE = REPO / "docker" / "asterisk" / "etc"
README = REPO / "docker" / "README.md"


def readme_commands(prefix: str) -> list[str]:
    """The rest of each README line that starts with prefix (inside code blocks)."""
    out = []
    for line in README.read_text().splitlines():
        line = line.strip()
        if line.startswith(prefix):
            out.append(line.removeprefix(prefix).split("  #")[0].strip())
    return out


@pytest.fixture
async def sample(
    e2e_ready: Path, e2e_logs: Path, extra_server: Callable[..., Server]
) -> AsyncIterator[tuple[Asterisk, Server, Ami]]:
    srv = extra_server()
    ast = Asterisk(
        e2e_ready,
        srv.port,
        e2e_logs,
        sample=SAMPLE,
        env={"CALLSCREEN_URL": f"agi://127.0.0.1:{srv.port}/screen"},
    )
    ast.start()
    ami = Ami(ast)
    try:
        await ami.connect()
        yield ast, srv, ami
    finally:
        await ami.close()
        ast.stop()


async def test_readme_test_calls_are_screened(sample: tuple[Asterisk, Server, Ami]) -> None:
    ast, srv, ami = sample
    cli = Cli(srv.db)
    setup = readme_commands("docker compose exec callscreen callscreen ")
    assert len(setup) >= 2, setup
    for command in setup:
        cli(*shlex.split(command))

    originates = [
        re.fullmatch(r'asterisk -rx "(.*)"', c)
        for c in readme_commands("docker compose exec asterisk ")
    ]
    calls = []
    for m in originates:
        assert m is not None, "a README test call is not an `asterisk -rx` command"
        channel = re.fullmatch(r"channel originate (Local/\S+) application Wait \d+", m.group(1))
        assert channel is not None, m.group(1)
        call = ami.expect_call(channel.group(1) + "-", "101")
        res = ast.cli(m.group(1))
        assert "rror" not in res.stdout + res.stderr, res
        calls.append(await ami.finished(call, within=25))

    blocked, allowed, anonymous = calls
    assert blocked.result == "BLOCKED" and blocked.reason == "ext-blocklist", blocked.summary()
    assert blocked.hangup_cause == 17 and not blocked.reached_dial, blocked.summary()

    assert allowed.result == "ALLOWED", allowed.summary()
    assert allowed.reached_dial and allowed.phone_rang("phones"), allowed.summary()

    assert anonymous.result == "BLOCKED" and anonymous.reason == "anonymous", anonymous.summary()
    assert anonymous.hangup_cause == 17 and not anonymous.reached_dial, anonymous.summary()

    assert ast.wait_no_channels() == 0


async def test_sample_without_callscreen_url_uses_the_default(
    e2e_ready: Path, e2e_logs: Path
) -> None:
    """Compose sets CALLSCREEN_URL; without it ${ENV(CALLSCREEN_URL)} is empty and the routine
    uses its default, agi://127.0.0.1:4573/screen."""
    ast = Asterisk(e2e_ready, 0, e2e_logs, sample=SAMPLE, env={"CALLSCREEN_URL": ""})
    ast.start()
    ami = Ami(ast)
    try:
        await ami.connect()
        call = await ami.call("102-3035551212", None, context="testcall", within=25)
        # What answers there (nothing, or a server someone runs on this machine) is not this
        # test's business: only that the routine asked the default address.
        # (the account argument is empty: no CALLSCREEN_ACCOUNT, so the server's "default";
        # "busy": the routine runs Busy() itself when the server says CALLSCREEN_THEN=busy)
        agi = ("callscreen", "AGI", "agi://127.0.0.1:4573/screen,102,,busy")
        assert agi in call.apps, call.summary()
    finally:
        await ami.close()
        ast.stop()
