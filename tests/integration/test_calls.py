"""The real server on a real port, against the protocol-faithful fake Asterisk.

Each test asserts the exact command lines the server sent and that it closed the connection.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3

from callscreen.app import Server
from callscreen.db import Store
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Rule, Scope, Treatment

from .fake_asterisk import Channel, env_block, place_call


def mset(result: str, reason: str, treatment: str | None = None, then: str | None = None) -> str:
    data = f"CALLSCREEN_RESULT={result},CALLSCREEN_REASON={reason}"
    if treatment:
        data += f",CALLSCREEN_TREATMENT={treatment}"
    if then:
        data += f",CALLSCREEN_THEN={then}"
    return f'EXEC MSet "{data}"'


#: The shipped routine's AGI arguments: extension, account (none: default), "busy" (it runs
#: Busy() itself when told CALLSCREEN_THEN=busy).
def routine(ext: str) -> list[str]:
    return [ext, "", "busy"]


async def block(store: Store, ext: str, *numbers: str, treatment: Treatment | None = None) -> None:
    await store.add_entries(Scope.EXTENSION, ext, Kind.BLOCK, [parse_pattern(n) for n in numbers])
    await store.set_extension(ext, enabled=True, treatment=treatment)


async def test_unlisted_caller_is_allowed_and_closed_at_once(port: int, store: Store) -> None:
    await block(store, "101", "+13035550000")
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "not-listed")]
    assert t.closed_by_server and not t.hung_up


async def test_extension_never_configured_is_allowed_blocking_off(port: int) -> None:
    t = await place_call(port, ext="555", callerid="3035551212")
    assert t.commands == [mset("ALLOWED", "blocking-off")]
    assert t.closed_by_server


async def test_blocked_busy_sends_busy_then_closes_after_hangup(port: int, store: Store) -> None:
    await block(store, "101", "303-555-1212", treatment=Treatment.BUSY)
    for form in ("+13035551212", "13035551212", "3035551212"):
        t = await place_call(port, ext="101", callerid=form)
        assert t.commands == [mset("BLOCKED", "ext-blocklist", "busy"), "EXEC Busy"], form
        assert t.closed_by_server and t.hung_up


async def test_a_routine_that_plays_busy_gets_the_result_and_the_close_only(
    server: Server, port: int, store: Store
) -> None:
    """The shipped routine says (third argument "busy") that it runs Busy() itself: a Busy
    decision is then one command and the close, like an allowed call, and the routine plays
    busy after the AGI (issue #16). Logged and counted as before; other outcomes unchanged."""
    await block(store, "101", "303-555-1212", treatment=Treatment.BUSY)
    await block(store, "102", "+13035550002", treatment=Treatment.VOICEMAIL)
    await store.set_extension("104", enabled=True, anonymous=Rule.BLOCK)

    busy = await place_call(port, args=routine("101"), callerid="3035551212")
    anonymous = await place_call(port, args=routine("104"), callerid="")
    allowed = await place_call(port, args=routine("101"), callerid="+13035550000")
    voicemail = await place_call(port, args=routine("102"), callerid="+13035550002")

    assert busy.commands == [mset("BLOCKED", "ext-blocklist", "busy", then="busy")]
    assert busy.closed_by_server and not busy.hung_up
    assert anonymous.commands == [mset("BLOCKED", "anonymous", "busy", then="busy")]
    assert allowed.commands == [mset("ALLOWED", "not-listed")]
    assert voicemail.apps[:2] == ["MSet", "VoiceMail"]  # the server still runs the others
    assert "CALLSCREEN_THEN" not in voicemail.variables
    assert server.recorder is not None
    await server.recorder.flush()
    calls = await store.recent_calls(ext="101")
    assert [(c.result, c.treatment, c.caller_e164) for c in calls] == [
        ("ALLOWED", None, "+13035550000"),
        ("BLOCKED", "busy", "+13035551212"),
    ]
    [entry] = await store.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    assert entry.hits == 1


async def test_voicemail_then_vmstatus_check(port: int, store: Store) -> None:
    await block(store, "101", "+13035551212", treatment=Treatment.VOICEMAIL)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [
        mset("BLOCKED", "ext-blocklist", "voicemail"),
        'GET FULL VARIABLE "${VM_INFO(101@default,exists)}"',
        'EXEC VoiceMail "101@default,u"',
        "GET VARIABLE VMSTATUS",
    ]
    assert t.variables["VMSTATUS"] == "SUCCESS" and t.closed_by_server


async def test_voicemail_missing_mailbox_falls_back_to_busy(port: int, store: Store) -> None:
    await block(store, "103", "+13035551212", treatment=Treatment.VOICEMAIL)
    t = await place_call(port, ext="103", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"]  # never VoiceMail: it would answer the call first
    assert t.commands[1] == 'GET FULL VARIABLE "${VM_INFO(103@default,exists)}"'
    assert t.variables["HANGUPCAUSE"] == "17" and t.closed_by_server


async def test_voicemail_uses_the_configured_mailbox(port: int, store: Store) -> None:
    await block(store, "104", "+13035551212", treatment=Treatment.VOICEMAIL)
    await store.set_extension("104", mailbox="102@default")
    t = await place_call(port, ext="104", callerid="+13035551212")
    assert t.commands[2] == 'EXEC VoiceMail "102@default,u"'


async def test_torture_rings_until_the_caller_gives_up(port: int, store: Store) -> None:
    await block(store, "101", "+1900*", treatment=Treatment.TORTURE)
    t = await place_call(
        port, ext="101", callerid="+19005550100", channel=Channel(patience=2.5), max_seconds=10
    )
    assert t.commands[:3] == [
        mset("BLOCKED", "ext-blocklist", "torture"),
        "EXEC Ringing",
        'EXEC Wait "1"',
    ]
    assert set(t.commands[2:]) == {'EXEC Wait "1"'}
    assert len(t.commands) - 2 == 3  # 1 s + 1 s + the third Wait, cut short by the hangup
    assert t.hung_up and t.closed_by_server
    assert 2.4 < t.duration < 3.5  # closed right after the hangup, not after another Wait


async def test_torture_is_bounded_by_torture_max(config, store: Store) -> None:  # type: ignore[no-untyped-def]
    config.torture_max = 2.0
    srv = Server(config)
    await srv.start()
    try:
        assert srv.store is not None
        await block(srv.store, "101", "+13035551212", treatment=Treatment.TORTURE)
        t = await place_call(srv.addresses[0][1], ext="101", callerid="+13035551212", max_seconds=6)
    finally:
        await srv.stop()
    assert t.commands[-1] == "HANGUP" and t.hung_up and t.closed_by_server
    assert 1.9 < t.duration < 3.5


async def test_anonymous_blocked_only_where_the_extension_says_so(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True, anonymous=Rule.BLOCK)
    await store.set_extension("102", enabled=True, anonymous=Rule.ALLOW)
    for callerid, pres in (("", 0), ("anonymous", 0), ("Restricted", 0), ("unknown", 67)):
        t = await place_call(port, ext="101", callerid=callerid, callingpres=pres)
        assert t.commands[0] == mset("BLOCKED", "anonymous", "busy"), callerid
        t = await place_call(port, ext="102", callerid=callerid, callingpres=pres)
        assert t.commands == [mset("ALLOWED", "not-listed")], callerid


async def test_account_list_blocks_every_extension(port: int, store: Store) -> None:
    await store.add_entries(Scope.ACCOUNT, None, Kind.BLOCK, [parse_pattern("+44*")])
    t = await place_call(port, ext="200", callerid="011 44 20 7123 4567")
    assert t.commands == [mset("ALLOWED", "blocking-off")]  # account blocking still off
    await store.set_account(enabled=True, treatment=Treatment.BUSY)
    t = await place_call(port, ext="200", callerid="+442071234567")
    assert t.commands == [mset("BLOCKED", "account-blocklist", "busy"), "EXEC Busy"]


async def test_allowlist_beats_block_lists(port: int, store: Store) -> None:
    await block(store, "101", "+1303*")
    await store.add_entries(Scope.EXTENSION, "101", Kind.ALLOW, [parse_pattern("3035551212")])
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "allowlist")]
    t = await place_call(port, ext="101", callerid="+13035559999")
    assert t.apps == ["MSet", "Busy"]


async def test_change_applies_to_the_next_call_without_restart(port: int, store: Store) -> None:
    await block(store, "101", "+13035551212")
    assert (await place_call(port, ext="101", callerid="+13035551212")).apps == ["MSet", "Busy"]
    await store.set_extension("101", enabled=False)
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "blocking-off")]


async def test_extension_falls_back_to_agi_extension(port: int, store: Store) -> None:
    await block(store, "101", "+13035551212")
    env = env_block(args=[], extra={"agi_extension": "101"}, port=port)
    env = env.replace(b"agi_extension: s\n", b"")
    t = await place_call(port, env)
    assert t.apps == ["MSet", "Busy"]


async def test_no_extension_fails_open_with_reason_error(port: int) -> None:
    env = env_block(args=[], port=port).replace(b"agi_extension: s\n", b"")
    t = await place_call(port, env)
    assert t.commands == [mset("ALLOWED", "error")]


async def test_unknown_script_is_closed_without_a_result(port: int) -> None:
    t = await place_call(port, script="elsewhere")
    assert t.commands == [] and t.closed_by_server


async def test_caller_text_cannot_inject_commands(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True)
    nasty = 'x"\\ ,EXEC Dial(PJSIP/999)\r\nEXEC Busy'
    env = env_block(port=port, callerid=nasty, calleridname=nasty).replace(b"\r", b"")
    t = await place_call(port, env)
    assert t.commands == [mset("ALLOWED", "not-listed")]


async def test_call_log_and_hits_are_written(server: Server, port: int, store: Store) -> None:
    await block(store, "101", "+13035551212")
    await place_call(port, ext="101", callerid="3035551212")
    await place_call(port, ext="101", callerid="+13035550000")
    assert server.recorder is not None
    await server.recorder.flush()
    calls = await store.recent_calls(ext="101")
    assert [(c.result, c.reason, c.caller_e164) for c in calls] == [
        ("ALLOWED", "not-listed", "+13035550000"),
        ("BLOCKED", "ext-blocklist", "+13035551212"),
    ]
    [entry] = await store.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    assert entry.hits == 1 and entry.last_hit is not None


async def test_call_log_keeps_the_caller_name_and_bounds_what_is_sent(
    server: Server, port: int, store: Store
) -> None:
    """Number and name as sent (escape bytes and all), at most 256 characters each."""
    await place_call(port, ext="101", callerid="\x1b[2J" + "9" * 600, calleridname="[b]N\u202e")
    await place_call(port, ext="101", callerid="+13035550000", calleridname="N" * 1000)
    assert server.recorder is not None
    await server.recorder.flush()
    named, hostile = await store.recent_calls(ext="101")  # newest first
    assert hostile.caller_raw == "\x1b[2J" + "9" * 239 + "…[+361 chars]"
    assert hostile.caller_name == "[b]N\u202e"
    assert named.caller_raw == "+13035550000"
    assert named.caller_name == "N" * 243 + "…[+757 chars]"
    assert len(hostile.caller_raw) == len(named.caller_name) == 256


async def test_store_failure_fails_open(server: Server, port: int, store: Store) -> None:
    await block(store, "101", "+13035551212")
    with sqlite3.connect(server.config.db) as conn:
        conn.execute("ALTER TABLE entries RENAME TO entries_gone")
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.commands == [mset("ALLOWED", "error")]
    with sqlite3.connect(server.config.db) as conn:  # back: the server recovers by itself
        conn.execute("ALTER TABLE entries_gone RENAME TO entries")
    t = await place_call(port, ext="101", callerid="+13035551212")
    assert t.apps == ["MSet", "Busy"]


async def test_shutdown_closes_held_calls_and_flushes_the_log(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = Server(config)
    await srv.start()
    assert srv.store is not None
    await block(srv.store, "101", "+13035551212", treatment=Treatment.TORTURE)
    port = srv.addresses[0][1]
    held = [
        asyncio.create_task(place_call(port, ext="101", callerid="+13035551212", max_seconds=10))
        for _ in range(5)
    ]
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await srv.stop()
    assert loop.time() - started < 2.0  # held calls are closed, not drained for 5 s
    transcripts = await asyncio.gather(*held)
    assert all(t.closed_by_server for t in transcripts)
    store = await Store.open(config.db)
    try:
        assert len(await store.recent_calls(ext="101")) == 5  # 0 lost
    finally:
        await store.close()


async def test_every_kind_of_change_applies_to_the_next_call(port: int, store: Store) -> None:
    """The server caches settings and prefix entries; each change must still show at once."""
    caller = "+13035551212"
    await store.set_extension("101", enabled=True)
    assert (await place_call(port, ext="101", callerid=caller)).apps == ["MSet"]
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+1303*")])
    assert (await place_call(port, ext="101", callerid=caller)).apps == ["MSet", "Busy"]
    await store.set_extension("101", treatment=Treatment.VOICEMAIL)
    assert (await place_call(port, ext="101", callerid=caller)).apps[:2] == ["MSet", "VoiceMail"]
    await store.remove_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+1303*")])
    assert (await place_call(port, ext="101", callerid=caller)).apps == ["MSet"]
    await store.add_entries(Scope.ACCOUNT, None, Kind.BLOCK, [parse_pattern(caller)])
    assert (await place_call(port, ext="999", callerid=caller)).apps == ["MSet"]
    await store.set_account(enabled=True, treatment=Treatment.BUSY)
    t = await place_call(port, ext="999", callerid=caller)
    assert t.commands[0] == mset("BLOCKED", "account-blocklist", "busy")
    await store.add_entries(Scope.ACCOUNT, None, Kind.ALLOW, [parse_pattern("+1*")])
    assert (await place_call(port, ext="999", callerid=caller)).commands == [
        mset("ALLOWED", "allowlist")
    ]


async def test_a_finished_call_leaves_nothing_to_the_garbage_collector(
    port: int, store: Store
) -> None:
    """Every object of a call is freed when its connection closes, by reference counting: none
    waits for the cycle collector (issue #16: a closure over the connection made each call
    leave about 14 objects in a cycle, and collecting them cost CPU on every call)."""
    await block(store, "101", "+13035550001", treatment=Treatment.BUSY)
    await block(store, "102", "+13035550002", treatment=Treatment.VOICEMAIL)
    await block(store, "103", "+13035550003", treatment=Treatment.TORTURE)
    await store.set_extension("104", enabled=True, anonymous=Rule.BLOCK)
    await asyncio.sleep(0.3)  # the call-log writer's first batch, before we count
    calls: list[tuple[list[str], str, Channel]] = [
        (["101"], "+13035551212", Channel()),  # allowed
        (["101"], "+13035550001", Channel()),  # busy, run by the server
        (routine("101"), "+13035550001", Channel()),  # busy, left to the routine
        (["102"], "+13035550002", Channel()),  # voicemail
        (["103"], "+13035550003", Channel(patience=1.5)),  # torture until the caller hangs up
        (["104"], "", Channel()),  # anonymous, blocked with the default treatment
        (["101"], "+13035551212", Channel(patience=0.0)),  # the caller hangs up at once
    ]
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for args, callerid, channel in calls:
            await place_call(port, args=args, callerid=callerid, channel=channel, max_seconds=5)
        await asyncio.sleep(0.1)  # connection_lost callbacks
        gc.collect()
        left = sorted(
            {
                f"{type(o).__module__}.{type(o).__qualname__}"
                for o in gc.garbage
                if type(o).__module__.startswith("callscreen")
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
