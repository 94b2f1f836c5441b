"""The challenge ("To call this number, press N") against the protocol-faithful fake Asterisk:
the exact commands, the result the dialplan reads, the fallback, hang-ups, remembering."""

from __future__ import annotations

import asyncio
import time

from callscreen.app import Server
from callscreen.db import Store
from callscreen.metrics import exposition
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Rule, Scope, Treatment

from .fake_asterisk import Channel, place_call
from .test_calls import mset

PROMPT = ['STREAM FILE "to-call-this-number" ""', 'STREAM FILE "vm-press" ""']


def one_try(digit: str) -> list[str]:
    return [*PROMPT, f'SAY DIGITS "{digit}" "0123456789*#"', 'WAIT FOR DIGIT "1000"']


async def logged(store: Store, ext: str = "101") -> list[tuple[str, str, str | None]]:
    for _ in range(100):  # the call log is written in batches
        rows = await store.logged_calls(ext, limit=10)
        if rows:
            return [(r.result, r.reason, r.treatment) for r in rows]
        await asyncio.sleep(0.02)
    return []


async def test_right_digit_goes_on_to_dial(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    t = await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["right"]))
    [digit] = t.said
    assert digit in "0123456789"
    assert t.commands == ["ANSWER", *one_try(digit), mset("ALLOWED", "challenge-passed")]
    assert t.closed_by_server and not t.hung_up
    assert await logged(store) == [("ALLOWED", "challenge-passed", None)]


async def test_metrics_count_challenges_by_outcome(server: Server, port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["right"]))
    await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["*", "#"]))
    text = exposition(server)
    assert 'callscreen_challenges_total{outcome="passed"} 1' in text
    assert 'callscreen_challenges_total{outcome="wrong-digit"} 1' in text
    assert (
        'callscreen_calls_total{result="CHALLENGED",reason="not-listed",treatment="challenge"} 2'
        in text
    )


async def test_second_try_after_a_wrong_digit(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    t = await place_call(
        port, ext="101", callerid="+13035551212", channel=Channel(keys=["*", "right"])
    )
    d1, d2 = t.said
    assert d1 == d2
    assert t.commands == [
        "ANSWER",
        *one_try(d1),
        'STREAM FILE "please-try-again" ""',
        *one_try(d2),
        mset("ALLOWED", "challenge-passed"),
    ]


async def test_silence_gets_the_fallback_busy(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    t = await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=[]))
    assert len(t.said) == 2  # asked twice
    assert t.commands[-2:] == [mset("BLOCKED", "challenge-failed", "busy"), 'EXEC Busy "5"']
    assert t.commands.count('WAIT FOR DIGIT "1000"') == 2
    # Answered for the prompt: Busy is only a tone now, no cause 17.
    assert "HANGUPCAUSE" not in t.variables
    assert await logged(store) == [("BLOCKED", "challenge-failed", "busy")]


async def test_wrong_digits_get_voicemail_when_that_is_the_fallback(
    port: int, store: Store
) -> None:
    await store.set_extension(
        "101", enabled=True, unknown=Rule.CHALLENGE, fallback=Treatment.VOICEMAIL
    )
    # Two wrong keys: whatever digit is said, "*" is never it.
    t = await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["*", "*"]))
    assert t.commands[-4:] == [
        mset("BLOCKED", "challenge-failed", "voicemail"),
        'GET FULL VARIABLE "${VM_INFO(101@default,exists)}"',
        'EXEC VoiceMail "101@default,u"',
        "GET VARIABLE VMSTATUS",
    ]


async def test_voicemail_fallback_without_a_mailbox_is_a_bounded_busy_tone(
    port: int, store: Store
) -> None:
    """The channel is answered: Busy() is only a tone there, so it gets a few seconds, not
    until the caller gives up."""
    await store.set_extension(
        "103", enabled=True, unknown=Rule.CHALLENGE, fallback=Treatment.VOICEMAIL
    )
    t = await place_call(port, ext="103", callerid="+13035551212", channel=Channel(keys=["*"]))
    assert t.commands[-3:] == [
        mset("BLOCKED", "challenge-failed", "voicemail"),
        'GET FULL VARIABLE "${VM_INFO(103@default,exists)}"',
        'EXEC Busy "5"',
    ]


async def test_hangup_fallback_hangs_up(port: int, store: Store) -> None:
    await store.set_account(fallback=Treatment.HANGUP)
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    t = await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["#"]))
    assert t.commands[-2:] == [mset("BLOCKED", "challenge-failed", "hangup"), "HANGUP"]
    assert t.hung_up and t.closed_by_server


async def test_caller_hanging_up_mid_prompt_is_let_go_at_once(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    channel = Channel(patience=0.3, prompt_seconds=0.2)
    started = time.monotonic()
    t = await place_call(port, ext="101", callerid="+13035551212", channel=channel)
    assert time.monotonic() - started < 1.0
    # The second prompt is cut short (HANGUP, then -1): nothing more is asked of the channel
    # but the result (EXEC still runs on a dead channel), and no fallback runs.
    assert t.commands == ["ANSWER", *PROMPT, mset("BLOCKED", "challenge-failed", "busy")]
    assert t.closed_by_server
    assert await logged(store) == [("BLOCKED", "challenge-failed", "busy")]


async def test_missing_sounds_let_the_call_through(port: int, store: Store) -> None:
    """A caller who cannot hear the digit cannot pass: the server fails open instead."""
    await store.set_extension("101", enabled=True, anonymous=Rule.CHALLENGE)
    t = await place_call(
        port, ext="101", callerid="anonymous", channel=Channel(keys=["right"], sounds=False)
    )
    assert t.commands == ["ANSWER", PROMPT[0], "CHANNEL STATUS", mset("ALLOWED", "error")]
    assert t.closed_by_server and not t.hung_up


async def test_anonymous_challenge_only_for_callers_without_caller_id(
    port: int, store: Store
) -> None:
    await store.set_extension("101", enabled=True, anonymous=Rule.CHALLENGE)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "not-listed")]
    t = await place_call(port, ext="101", callerid="", channel=Channel(keys=["right"]))
    assert t.commands[0] == "ANSWER"
    assert t.commands[-1] == mset("ALLOWED", "challenge-passed")


async def test_block_list_and_allowlist_come_before_the_unknown_challenge(
    port: int, store: Store
) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+13035550000")])
    await store.add_entries(Scope.EXTENSION, "101", Kind.ALLOW, [parse_pattern("+13035551111")])
    t = await place_call(port, ext="101", callerid="+13035550000")
    assert t.commands == [mset("BLOCKED", "ext-blocklist", "busy"), "EXEC Busy"]
    t = await place_call(port, ext="101", callerid="+13035551111")
    assert t.commands == [mset("ALLOWED", "allowlist")]


async def test_remember_puts_a_passed_caller_on_the_allowlist(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE, remember=30 * 86400)
    t = await place_call(port, ext="101", callerid="303-555-1212", channel=Channel(keys=["right"]))
    assert t.commands[-1] == mset("ALLOWED", "challenge-passed")
    for _ in range(100):  # written after the call was handed back
        listed = await store.list_entries(Scope.EXTENSION, "101", Kind.ALLOW)
        if listed:
            break
        await asyncio.sleep(0.02)
    [row] = listed
    assert row.entry.value == "+13035551212" and row.entry.note == "passed the challenge"
    assert row.expires_at is not None
    assert abs(row.expires_at - (time.time() + 30 * 86400)) < 5
    # The second call rings through unchallenged.
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "allowlist")]
    audit = await store.audit_log(limit=5)
    assert [(a.actor, a.source, a.action) for a in audit][:1] == [
        ("ext:101", "phone", "allow.remember")
    ]


async def test_without_remember_the_next_call_is_challenged_again(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, unknown=Rule.CHALLENGE)
    await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["right"]))
    t = await place_call(port, ext="101", callerid="+13035551212", channel=Channel(keys=["right"]))
    assert t.commands[0] == "ANSWER"
    assert await store.list_entries(Scope.EXTENSION, "101", Kind.ALLOW) == []
