"""Calls through a real Asterisk, the shipped dialplan routine and `callscreen serve`.

Every test configures its own extensions and numbers with the CLI (the server's database is
shared by the session), places calls with AMI Originate and checks what a user would: the
channel variables the routine acts on, whether the call reached Dial, the hangup cause, the
voicemail spool, the channels and server connections left behind.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from .bed import Ami, Asterisk, Call, Cli, Server

pytestmark = pytest.mark.e2e

BUSY = 17  # hangup cause "User busy" (SIP 486)
NORMAL = 16  # "Normal Clearing"

# VoiceMail plays "The person at extension 1 0 1 is unavailable. Please leave your message
# after the tone. When done, hang up..." and a beep (about 12.5 s) before it records: the
# caller stays on that long and a few seconds more.
VOICEMAIL_CALLER_SECONDS = 16


def is_exec(command: str, app: str) -> bool:
    words = command.split(None, 2)
    return len(words) >= 2 and words[0].upper() == "EXEC" and words[1].lower() == app.lower()


def ran(call: Call, app: str) -> list[str]:
    """The AGI EXEC commands the server ran for app on the call."""
    return [c for c in call.agi_commands if is_exec(c, app)]


def assert_blocked(call: Call, reason: str, treatment: str = "busy") -> None:
    summary = call.summary()
    assert call.result == "BLOCKED", summary
    assert call.reason == reason, summary
    assert call.vars.get("CALLSCREEN_TREATMENT") == treatment, summary
    assert not call.reached_dial, summary
    if treatment == "busy":
        # The shipped routine runs Busy() itself when the server says CALLSCREEN_THEN=busy:
        # the server sends no EXEC Busy (one AGI round trip less, issue #16).
        assert call.vars.get("CALLSCREEN_THEN") == "busy", summary
        assert ("callscreen", "Busy", "300") in call.apps, summary
        assert not ran(call, "Busy"), summary
        assert call.hangup_cause == BUSY, summary


def assert_allowed(call: Call, reason: str) -> None:
    summary = call.summary()
    assert call.result == "ALLOWED", summary
    assert call.reason == reason, summary
    assert "CALLSCREEN_TREATMENT" not in call.vars, summary
    assert call.reached_dial, summary
    assert call.phone_rang(), summary


async def test_blocked_caller_gets_busy_in_every_number_form(
    cli: Cli, ami: Ami, asterisk: Asterisk
) -> None:
    cli("ext", "set", "201", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "201", "303-555-1212")

    forms = ["+13035551212", "13035551212", "3035551212"]
    calls = await asyncio.gather(*(ami.call("201", f'"Spammer" <{n}>') for n in forms))

    for call in calls:
        assert_blocked(call, "ext-blocklist", "busy")
        assert call.caller_states == [], "the caller's leg was never answered"
        # The caller got busy, not an answer: Originate reports reason 5 (busy).
        assert call.originate_response is not None
        assert call.originate_response.get("Reason") == "5", call.originate_response
    assert asterisk.wait_no_channels() == 0


async def test_a_routine_from_before_still_gets_busy_from_the_server(
    cli: Cli, ami: Ami, asterisk: Asterisk
) -> None:
    """A dialplan that still has an older routine (AGI with the extension only) is not told
    to play busy: the server runs Busy itself, as before, with the same result for the caller."""
    cli("ext", "set", "205", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "205", "+13035550205")

    call = await ami.call("205", '"Spammer" <+13035550205>', context="inbound-old-routine")

    summary = call.summary()
    assert (call.result, call.reason) == ("BLOCKED", "ext-blocklist"), summary
    assert ran(call, "Busy"), summary
    assert "CALLSCREEN_THEN" not in call.vars, summary
    assert not any(app == "Busy" for _, app, _ in call.apps), summary
    assert call.hangup_cause == BUSY, summary
    assert not call.reached_dial, summary
    assert asterisk.wait_no_channels() == 0


async def test_allowed_caller_reaches_dial(cli: Cli, ami: Ami) -> None:
    cli("ext", "set", "202", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "202", "+13035550001")

    call = await ami.call("202", '"Friend" <+13035550002>')

    assert_allowed(call, "not-listed")
    assert call.vars.get("AGISTATUS") == "SUCCESS", call.summary()
    assert call.hangup_cause == NORMAL, call.summary()


async def test_voicemail_treatment_leaves_a_message(cli: Cli, ami: Ami, asterisk: Asterisk) -> None:
    cli("ext", "set", "101", "--enable", "--treatment", "voicemail")
    cli("block", "add", "--ext", "101", "+13035550101")
    # 104 has no mailbox of its own: its messages go to 102's box.
    cli("ext", "set", "104", "--enable", "--treatment", "voicemail", "--mailbox", "102@default")
    cli("block", "add", "--ext", "104", "+13035550104")
    inboxes = {box: asterisk.voicemail_dir(box) for box in ("101", "102")}
    before = {box: set(inbox.glob("msg*.txt")) for box, inbox in inboxes.items()}

    def place(ext: str) -> Awaitable[Call]:
        return ami.originate(
            ext, f'"Telemarketer" <+1303555{ext:0>4}>', caller_wait=VOICEMAIL_CALLER_SECONDS
        )

    # The caller of 101 listens to the greeting, says nothing for a few seconds and hangs up.
    # The caller of 104 presses # once recording has started: VoiceMail ends normally, the
    # channel is still up when the server closes, and the routine must hang up, not Dial.
    recording = asterisk.voicemail_dir("102", folder="tmp")
    old_files = set(recording.glob("*"))
    hangs_up, presses_hash = await asyncio.gather(place("101"), place("104"))
    started = lambda: bool(set(recording.glob("*")) - old_files)  # noqa: E731
    await ami.wait_until(started, 20, "the recording to start", presses_hash)
    await asyncio.sleep(1)
    caller_leg = presses_hash.channels[presses_hash.caller_id]
    pressed = await ami.send({"Action": "PlayDTMF", "Channel": caller_leg, "Digit": "#"})
    assert pressed.success, pressed
    await ami.finished(presses_hash, within=5)  # VoiceMail says "goodbye" first
    await ami.finished(hangs_up, within=VOICEMAIL_CALLER_SECONDS + 10)

    for call, box in ((hangs_up, "101"), (presses_hash, "102")):
        assert_blocked(call, "ext-blocklist", "voicemail")
        assert [c for c in ran(call, "VoiceMail") if f"{box}@default" in c], call.summary()
        assert call.vars.get("VMSTATUS") == "SUCCESS", call.summary()
        assert "Up" in call.caller_states, "VoiceMail answers the call"
        assert not ran(call, "Busy"), call.summary()
        new = sorted(set(inboxes[box].glob("msg*.txt")) - before[box])
        assert len(new) == 1, f"expected one new message in {inboxes[box]}, got {new}"
        text = new[0].read_text()
        assert f'callerid="Telemarketer" <+1303555{call.exten:0>4}>' in text, text
    # After a normal end of VoiceMail the routine itself hung up (BLOCKED), Dial never ran.
    assert presses_hash.vars.get("AGISTATUS") == "SUCCESS", presses_hash.summary()
    assert ("callscreen", "Hangup", "") in presses_hash.apps, presses_hash.summary()
    assert asterisk.wait_no_channels() == 0


async def test_voicemail_without_mailbox_falls_back_to_busy(
    cli: Cli, ami: Ami, asterisk: Asterisk
) -> None:
    # 103 has no mailbox in voicemail.conf: VoiceMail fails, the caller must get busy.
    cli("ext", "set", "103", "--enable", "--treatment", "voicemail")
    cli("block", "add", "--ext", "103", "+13035550103")

    call = await ami.call("103", '"Telemarketer" <+13035550103>', caller_wait=5, within=15)

    assert_blocked(call, "ext-blocklist", "voicemail")
    assert ran(call, "Busy"), call.summary()
    # Busy on an answered line is only a tone: the caller must never have been answered.
    assert "Up" not in call.caller_states, f"the call was answered\n{call.summary()}"
    assert call.hangup_cause == BUSY, call.summary()
    assert not asterisk.voicemail_dir("103").exists()
    assert asterisk.wait_no_channels() == 0


async def _wait_released(asterisk: Asterisk, server: Server, within: float) -> float:
    """Seconds until Asterisk has no channel and the server no connection; fails after within."""
    start = time.monotonic()
    while True:
        channels = asterisk.active_channels()
        connections = server.established_connections()
        if channels == 0 and connections == 0:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(
                f"after {within}s: {channels} channels in Asterisk, "
                f"{connections} connections to the server"
            )
        await asyncio.sleep(0.05)


async def test_torture_rings_until_the_caller_gives_up(
    cli: Cli, ami: Ami, asterisk: Asterisk, server: Server
) -> None:
    cli("ext", "set", "204", "--enable", "--treatment", "torture")
    cli("block", "add", "--ext", "204", "+13035550204")

    call = await ami.originate("204", '"Robocall" <+13035550204>', ring_timeout=60)
    await ami.wait_until(lambda: "Ringing" in call.caller_states, 5, "ringing", call)
    await asyncio.sleep(4)

    # Still ringing, never answered, the server still holds the call.
    assert call.up, call.summary()
    assert call.caller_states == ["Ringing"], call.summary()
    assert call.result == "BLOCKED" and call.reason == "ext-blocklist", call.summary()
    assert call.vars.get("CALLSCREEN_TREATMENT") == "torture", call.summary()
    assert ran(call, "Ringing") and ran(call, "Wait"), call.summary()
    assert asterisk.active_channels() == 2
    assert server.established_connections() == 1

    # The caller gives up: the channel and the server's connection are gone within 2 s.
    await ami.hangup(call)
    await ami.finished(call, within=2)
    await _wait_released(asterisk, server, within=2)
    assert not call.reached_dial, call.summary()


async def test_torture_max_ends_the_call(
    ami: Ami, asterisk: Asterisk, extra_server: Callable[..., Server]
) -> None:
    srv = extra_server("--torture-max", "2")
    Cli(srv.db)("ext", "set", "204", "--enable", "--treatment", "torture")
    Cli(srv.db)("block", "add", "--ext", "204", "+13035550204")

    started = time.monotonic()
    call = await ami.call(
        "204",
        '"Robocall" <+13035550204>',
        ring_timeout=60,
        variables=[f"CALLSCREEN_URL=agi://127.0.0.1:{srv.port}/screen"],
        within=10,
    )
    took = time.monotonic() - started

    assert call.caller_states == ["Ringing"], call.summary()
    assert call.vars.get("CALLSCREEN_TREATMENT") == "torture", call.summary()
    assert 2 <= took < 5, f"the call rang {took:.1f}s with --torture-max 2\n{call.summary()}"
    assert not call.reached_dial, call.summary()
    await _wait_released(asterisk, srv, within=2)


ANONYMOUS = {
    "no caller ID": None,
    "anonymous": '"" <anonymous>',
    "Restricted": '"Restricted" <Restricted>',
}


async def test_anonymous_callers_follow_the_extension_setting(cli: Cli, ami: Ami) -> None:
    cli("ext", "set", "205", "--enable", "--anonymous", "block", "--treatment", "busy")
    cli("ext", "set", "206", "--enable", "--anonymous", "allow", "--treatment", "busy")

    blocked = await asyncio.gather(*(ami.call("205", cid) for cid in ANONYMOUS.values()))
    allowed = await asyncio.gather(*(ami.call("206", cid) for cid in ANONYMOUS.values()))

    for call in blocked:
        assert_blocked(call, "anonymous", "busy")
    for call in allowed:
        assert_allowed(call, "not-listed")


async def test_withheld_number_counts_as_anonymous(cli: Cli, ami: Ami) -> None:
    """A number delivered with presentation restricted (CLIR) is an anonymous caller."""
    cli("ext", "set", "215", "--enable", "--anonymous", "block", "--treatment", "busy")
    cli("ext", "set", "216", "--enable", "--anonymous", "allow", "--treatment", "busy")

    blocked, allowed = await asyncio.gather(
        ami.call("215", '"Withheld" <+13035550215>', context="withheld"),
        ami.call("216", '"Withheld" <+13035550215>', context="withheld"),
    )

    assert_blocked(blocked, "anonymous", "busy")
    assert_allowed(allowed, "not-listed")


async def test_lists_switch_account_prefix_and_allowlist(cli: Cli, ami: Ami) -> None:
    # per-extension lists: 207 blocks the number, 208 does not
    cli("ext", "set", "207", "--enable", "--treatment", "busy")
    cli("ext", "set", "208", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "207", "+13035550207")
    # the on/off switch: 209 lists the number but blocking was never turned on
    cli("block", "add", "--ext", "209", "+13035550209")
    # account-wide: blocks on every extension, also one never configured (210)
    cli("account", "set", "--enable")
    cli("block", "add", "--account", "+13035550210")
    # prefix entries
    cli("ext", "set", "211", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "211", "+1900*")
    # the allowlist beats the block list
    cli("ext", "set", "212", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "212", "+1303555*")
    cli("allow", "add", "--ext", "212", "+13035550212")

    (
        own_list,
        other_ext,
        switched_off,
        account,
        prefix,
        outside_prefix,
        allowlisted,
        under_prefix,
    ) = await asyncio.gather(
        ami.call("207", '"A" <+13035550207>'),
        ami.call("208", '"A" <+13035550207>'),
        ami.call("209", '"B" <+13035550209>'),
        ami.call("210", '"C" <+13035550210>'),
        ami.call("211", '"D" <+19005550123>'),
        ami.call("211", '"E" <+13035550211>'),
        ami.call("212", '"F" <+13035550212>'),
        ami.call("212", '"G" <+13035550299>'),
    )

    assert_blocked(own_list, "ext-blocklist")
    assert_allowed(other_ext, "not-listed")
    assert_allowed(switched_off, "blocking-off")
    assert_blocked(account, "account-blocklist")
    assert_blocked(prefix, "ext-blocklist")
    assert_allowed(outside_prefix, "not-listed")
    assert_allowed(allowlisted, "allowlist")
    assert_blocked(under_prefix, "ext-blocklist")


async def test_cli_changes_apply_to_the_next_call(cli: Cli, ami: Ami) -> None:
    caller = '"Neighbour" <+13035550213>'
    cli("ext", "set", "213", "--enable", "--treatment", "busy")
    assert_allowed(await ami.call("213", caller), "not-listed")

    cli("block", "add", "--ext", "213", "(303) 555-0213")
    assert_blocked(await ami.call("213", caller), "ext-blocklist")

    cli("ext", "set", "213", "--disable")
    assert_allowed(await ami.call("213", caller), "blocking-off")

    cli("ext", "set", "213", "--enable")
    cli("block", "remove", "--ext", "213", "+13035550213")
    assert_allowed(await ami.call("213", caller), "not-listed")


async def test_calls_go_through_when_the_server_is_stopped(
    ami: Ami, asterisk: Asterisk, extra_server: Callable[..., Server]
) -> None:
    srv = extra_server()
    url = [f"CALLSCREEN_URL=agi://127.0.0.1:{srv.port}/screen"]
    Cli(srv.db)("ext", "set", "214", "--enable", "--treatment", "busy")
    Cli(srv.db)("block", "add", "--ext", "214", "+13035550214")
    assert_blocked(await ami.call("214", '"X" <+13035550214>', variables=url), "ext-blocklist")

    assert srv.stop() == 0, "SIGTERM stops the server cleanly"

    started = time.monotonic()
    call = await ami.call("214", '"X" <+13035550214>', variables=url)
    assert call.result == "UNSCREENED", call.summary()
    assert call.vars.get("AGISTATUS") == "FAILURE", call.summary()
    assert call.reached_dial, call.summary()
    assert time.monotonic() - started < 3
    assert asterisk.wait_no_channels() == 0


async def test_fifty_concurrent_calls(
    cli: Cli, ami: Ami, asterisk: Asterisk, server: Server
) -> None:
    blocked = [f"+1720555{i:04d}" for i in range(100, 120)]  # 20 on 301's block list
    allowed = [f"+1720555{i:04d}" for i in range(200, 215)]  # 15 not listed
    allowlisted = [f"+1720555{i:04d}" for i in range(990, 995)]  # 5 allowed within a blocked prefix
    cli("ext", "set", "301", "--enable", "--anonymous", "block", "--treatment", "busy")
    cli("block", "add", "--ext", "301", *blocked, "+1720555099*")
    cli("allow", "add", "--ext", "301", *allowlisted)
    cli("ext", "set", "302", "--enable", "--treatment", "torture")
    cli("block", "add", "--ext", "302", "+17205550300")
    cli("ext", "set", "102", "--enable", "--treatment", "voicemail")
    cli("block", "add", "--ext", "102", "+17205550102")
    inbox = asterisk.voicemail_dir("102")
    before = set(inbox.glob("msg*.txt"))

    async def tortured() -> Call:
        call = await ami.originate("302", '"T" <+17205550300>', ring_timeout=60)
        await ami.wait_until(lambda: "Ringing" in call.caller_states, 10, "ringing", call)
        await asyncio.sleep(1)
        assert call.up, call.summary()
        await ami.hangup(call)
        return await ami.finished(call, 5)

    vm_wait = VOICEMAIL_CALLER_SECONDS
    jobs = (
        [ami.call("301", f'"Blocked" <{n}>', within=20) for n in blocked]
        + [ami.call("301", f'"Allowed" <{n}>', within=20) for n in allowed]
        + [ami.call("301", f'"Listed" <{n}>', within=20) for n in allowlisted]
        + [ami.call("301", '"" <anonymous>', within=20) for _ in range(5)]
        + [tortured() for _ in range(3)]
        + [
            ami.call("102", '"VM" <+17205550102>', caller_wait=vm_wait, within=vm_wait + 15)
            for _ in range(2)
        ]
    )
    assert len(jobs) == 50
    results = await asyncio.gather(*jobs)

    it = iter(results)
    for _ in blocked:
        assert_blocked(next(it), "ext-blocklist")
    for _ in allowed:
        assert_allowed(next(it), "not-listed")
    for _ in allowlisted:
        assert_allowed(next(it), "allowlist")
    for _ in range(5):
        assert_blocked(next(it), "anonymous")
    for _ in range(3):
        call = next(it)
        assert call.vars.get("CALLSCREEN_TREATMENT") == "torture", call.summary()
        assert call.caller_states == ["Ringing"] and not call.reached_dial, call.summary()
    for _ in range(2):
        call = next(it)
        assert_blocked(call, "ext-blocklist", "voicemail")
        assert call.vars.get("VMSTATUS") == "SUCCESS", call.summary()
    new = set(inbox.glob("msg*.txt")) - before
    assert len(new) == 2, new
    assert all("<+17205550102>" in p.read_text() for p in new)

    await _wait_released(asterisk, server, within=5)


async def test_a_caller_name_rule_gives_busy_and_another_name_rings(cli: Cli, ami: Ami) -> None:
    """Issue 17: the carrier's "Scam Likely" in the caller name is enough to block; the same
    number with another name rings through, and removing the rule applies to the next call."""
    cli("ext", "set", "261", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "261", "--name", "Scam Likely")

    scam, friend = await asyncio.gather(
        ami.call("261", '"Scam Likely" <+13035550261>'),
        ami.call("261", '"Jane Doe" <+13035550261>'),
    )
    assert_blocked(scam, "name-rule", "busy")
    assert scam.hangup_cause == BUSY
    assert_allowed(friend, "not-listed")

    cli("block", "remove", "--ext", "261", "--name", "scam likely")
    again = await ami.call("261", '"Scam Likely" <+13035550261>')
    assert_allowed(again, "not-listed")
