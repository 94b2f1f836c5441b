"""The challenge against the real Asterisk: "To call this number, press N".

The caller's keys are sent the way a phone sends them: AMI ``PlayDTMF`` on the caller's
channel (the ;1 leg of the Local call), which Asterisk delivers to the leg running the AGI.
The digit to press is read from what the server asked Asterisk to say (the ``SAY DIGITS``
command in AMI's AGIExecStart events), like a person listening.

Each test runs its own server with ``--challenge-wait 2`` (the default 5 s would make a silent
caller's call last about 15 s), and points the call at it with ``CALLSCREEN_URL``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from .bed import Ami, Asterisk, Call, Cli, Server
from .test_e2e_screening import assert_allowed

pytestmark = pytest.mark.e2e

CALLER = '"Person" <+13035550260>'
SAID = re.compile(r'SAY DIGITS "?(\d)')


def said(call: Call) -> list[str]:
    return [m.group(1) for c in call.agi_commands if (m := SAID.match(c))]


def waits(call: Call) -> int:
    return sum(c.startswith("WAIT FOR DIGIT") for c in call.agi_commands)


async def press(ami: Ami, call: Call, key: str) -> None:
    """The caller presses ``key`` on their phone."""
    name = call.channels[call.caller_id]
    reply = await ami.send({"Action": "PlayDTMF", "Channel": name, "Digit": key, "Duration": "200"})
    assert reply.success, f"PlayDTMF: {reply}\n{call.summary()}"


async def answer_challenge(ami: Ami, call: Call, keys: Callable[[str], str], tries: int) -> None:
    """At each of ``tries`` prompts, once the digit was said, press ``keys(digit)``."""
    for n in range(1, tries + 1):
        await ami.wait_until(lambda n=n: waits(call) >= n, 20, f"challenge prompt {n}", call)
        await press(ami, call, keys(said(call)[-1]))


async def logged(cli: Cli, ext: str) -> list[tuple[str, str]]:
    """The call log of ``ext``: (result, reason), once the batched writer wrote it."""
    for _ in range(50):
        rows = cli.json("log", "--ext", ext)
        if rows:
            return [(r["result"], r["reason"]) for r in rows]
        await asyncio.sleep(0.1)
    return []


def wrong(digit: str) -> str:
    return str((int(digit) + 1) % 10)


@pytest.fixture
def challenger(
    extra_server: Callable[..., Server],
) -> tuple[Server, Cli, list[str]]:
    srv = extra_server("--challenge-wait", "2")
    return srv, Cli(srv.db), [f"CALLSCREEN_URL=agi://127.0.0.1:{srv.port}/screen"]


async def test_right_digit_reaches_dial(
    ami: Ami, challenger: tuple[Server, Cli, list[str]]
) -> None:
    _srv, cli, url = challenger
    cli("ext", "set", "260", "--enable", "--unknown", "challenge")
    call = await ami.originate("260", CALLER, variables=url)
    await answer_challenge(ami, call, lambda d: d, tries=1)
    await ami.finished(call, within=20)
    assert_allowed(call, "challenge-passed")
    assert call.agi_commands[0] == "ANSWER", call.summary()
    assert await logged(cli, "260") == [("ALLOWED", "challenge-passed")]


async def test_wrong_digit_twice_gets_the_fallback(
    ami: Ami, challenger: tuple[Server, Cli, list[str]]
) -> None:
    _srv, cli, url = challenger
    cli("ext", "set", "261", "--enable", "--unknown", "challenge", "--challenge-fallback", "busy")
    call = await ami.originate("261", CALLER, variables=url)
    await answer_challenge(ami, call, wrong, tries=2)
    await ami.finished(call, within=25)
    summary = call.summary()
    assert call.result == "BLOCKED" and call.reason == "challenge-failed", summary
    assert call.vars.get("CALLSCREEN_TREATMENT") == "busy", summary
    assert any(c.startswith("EXEC Busy") for c in call.agi_commands), summary
    assert not call.reached_dial and not call.phone_rang(), summary
    assert len(said(call)) == 2, summary


async def test_silence_gets_the_fallback(
    ami: Ami, asterisk: Asterisk, challenger: tuple[Server, Cli, list[str]]
) -> None:
    srv, cli, url = challenger
    cli("ext", "set", "262", "--enable", "--anonymous", "challenge")
    cli("ext", "set", "262", "--challenge-fallback", "hangup")
    call = await ami.call("262", None, variables=url, within=30)
    summary = call.summary()
    assert call.result == "BLOCKED" and call.reason == "challenge-failed", summary
    assert call.vars.get("CALLSCREEN_TREATMENT") == "hangup", summary
    assert waits(call) == 2 and not call.reached_dial, summary
    assert asterisk.wait_no_channels() == 0
    assert srv.established_connections() == 0


async def test_hangup_mid_prompt_leaves_no_channel(
    ami: Ami, asterisk: Asterisk, challenger: tuple[Server, Cli, list[str]]
) -> None:
    srv, cli, url = challenger
    cli("ext", "set", "263", "--enable", "--unknown", "challenge")
    call = await ami.originate("263", CALLER, variables=url)
    await ami.wait_until(
        lambda: any(c.startswith("STREAM FILE") for c in call.agi_commands), 10, "prompt", call
    )
    await ami.hangup(call)
    await ami.finished(call, within=5)
    assert asterisk.wait_no_channels() == 0
    assert srv.established_connections() == 0
    assert not call.reached_dial, call.summary()
    assert await logged(cli, "263") == [("BLOCKED", "challenge-failed")]


async def test_remember_lets_the_second_call_through_unchallenged(
    ami: Ami, challenger: tuple[Server, Cli, list[str]]
) -> None:
    _srv, cli, url = challenger
    cli("ext", "set", "264", "--enable", "--unknown", "challenge", "--remember", "30d")
    first = await ami.originate("264", CALLER, variables=url)
    await answer_challenge(ami, first, lambda d: d, tries=1)
    await ami.finished(first, within=20)
    assert_allowed(first, "challenge-passed")

    [entry] = cli.json("allow", "list", "--ext", "264")
    assert entry["value"] == "+13035550260" and entry["expires"], entry
    second = await ami.call("264", CALLER, variables=url)
    assert_allowed(second, "allowlist")
    assert "ANSWER" not in second.agi_commands, second.summary()
