"""*32 against the real Asterisk: a call gets through, the user dials *32 from their phone,
hears the confirmation, and the next call from that number gets the treatment.

The extension *32 acts for comes from the phone's endpoint (``CALLSCREEN_EXT``, set with
``set_var`` in pjsip.conf), never from the caller ID the phone sends: a phone claiming another
extension's number changes only its own extension's list.
"""

from __future__ import annotations

import pytest

from .bed import Ami, Call, Cli
from .test_e2e_screening import assert_allowed, assert_blocked

pytestmark = pytest.mark.e2e


def blocked_numbers(cli: Cli, ext: str) -> list[str]:
    return [e["value"] for e in cli.json("block", "list", "--ext", ext, "--json")]


async def dial_star32(ami: Ami, own_ext: str, claimed_callerid: str) -> Call:
    """*32 from the phone of ``own_ext`` that sends ``claimed_callerid`` as its caller ID."""
    return await ami.call(
        "*32", claimed_callerid, context="phones", variables=[f"CALLSCREEN_EXT={own_ext}"]
    )


def heard(call: Call) -> list[str]:
    """What the user heard: the sound steps the routine ran (``Playback`` and ``SayDigits``)."""
    return [f"{app}({data})" for ctx, app, data in call.apps if app in ("Playback", "SayDigits")]


async def test_star32_blocks_the_last_caller_and_the_next_call_is_treated(
    cli: Cli, ami: Ami
) -> None:
    cli("ext", "set", "250", "--enable", "--treatment", "busy")
    cli("ext", "set", "251", "--enable", "--treatment", "busy")
    caller = '"Robo" <+13035550250>'
    assert_allowed(await ami.call("250", caller), "not-listed")

    # The phone of 250 dials *32 but claims to be 251: the endpoint's extension decides.
    star = await dial_star32(ami, "250", '"Fake" <251>')
    assert star.vars.get("CALLSCREEN_BLOCK_STATUS") == "ADDED", star.summary()
    assert star.vars.get("CALLSCREEN_BLOCKED_NUMBER") == "+13035550250"
    assert heard(star) == [
        "Playback(beep)",
        "SayDigits(13035550250)",
        "Playback(num-was-successfully&added)",
    ], star.summary()
    assert star.vars.get("PLAYBACKSTATUS") == "SUCCESS", star.summary()
    assert blocked_numbers(cli, "250") == ["+13035550250"]
    assert blocked_numbers(cli, "251") == []

    assert_blocked(await ami.call("250", caller), "ext-blocklist")
    # Again: the number is already on the list; the user hears the same confirmation.
    again = await dial_star32(ami, "250", '"Fake" <251>')
    assert again.vars.get("CALLSCREEN_BLOCK_STATUS") == "ALREADY", again.summary()
    assert blocked_numbers(cli, "250") == ["+13035550250"]


async def test_star32_after_an_anonymous_caller_blocks_nothing_and_says_so(
    cli: Cli, ami: Ami
) -> None:
    cli("ext", "set", "252", "--enable", "--treatment", "busy")
    assert_allowed(await ami.call("252", None), "not-listed")
    star = await dial_star32(ami, "252", "252")
    assert star.vars.get("CALLSCREEN_BLOCK_STATUS") == "ANONYMOUS", star.summary()
    assert heard(star) == ["Playback(unidentified-no-callback&beeperr)"], star.summary()
    assert blocked_numbers(cli, "252") == []


async def test_star32_without_the_endpoints_extension_blocks_nothing(cli: Cli, ami: Ami) -> None:
    """A phone whose endpoint sets no CALLSCREEN_EXT: an error tone, no list changes, even
    when its caller ID names an extension that just had a caller."""
    cli("ext", "set", "253", "--enable", "--treatment", "busy")
    assert_allowed(await ami.call("253", '"R" <+13035550253>'), "not-listed")
    star = await ami.call("*32", '"Fake" <253>', context="phones")
    assert star.vars.get("CALLSCREEN_BLOCK_STATUS") == "ERROR", star.summary()
    assert "Playback(beeperr)" in heard(star), star.summary()
    assert blocked_numbers(cli, "253") == []
