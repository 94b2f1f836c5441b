"""Caller-name rules on the call path: the real server against the fake Asterisk."""

from __future__ import annotations

from callscreen.app import Server
from callscreen.db import Store
from callscreen.names import parse_rule
from callscreen.numbers import Pattern
from callscreen.policy import Field, Kind, Scope, Treatment

from .fake_asterisk import env_block, place_call
from .test_calls import mset


async def block_names(store: Store, scope: Scope, ext: str | None, *rules: str) -> None:
    patterns = [Pattern(r.value, False, r.raw) for r in map(parse_rule, rules)]
    await store.add_entries(scope, ext, Kind.BLOCK, patterns, field=Field.NAME)


async def test_a_name_rule_blocks_and_is_logged_with_its_entry_and_hit(
    server: Server, port: int, store: Store
) -> None:
    await store.set_extension("101", enabled=True, treatment=Treatment.BUSY)
    await block_names(store, Scope.EXTENSION, "101", "Scam Likely")
    t = await place_call(port, ext="101", callerid="+13035551212", calleridname="SCAM LIKELY")
    assert t.commands == [mset("BLOCKED", "name-rule", "busy"), "EXEC Busy"]
    assert t.closed_by_server and t.hung_up
    # The same number with another name, or none (Asterisk says "unknown"), rings through.
    for name in ("Scam Likely Ltd", "unknown", ""):
        t = await place_call(port, ext="101", callerid="+13035551212", calleridname=name)
        assert t.commands == [mset("ALLOWED", "not-listed")], name
    assert server.recorder is not None
    await server.recorder.flush()
    [entry] = await store.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    calls = await store.recent_calls(ext="101")
    assert [(c.result, c.reason, c.entry_id) for c in calls][-1] == (
        "BLOCKED",
        "name-rule",
        entry.entry.id,
    )
    assert calls[-1].caller_name == "SCAM LIKELY"
    assert entry.hits == 1 and entry.last_hit is not None


async def test_a_name_rule_change_applies_to_the_next_call(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True)
    call = {"ext": "101", "callerid": "+13035551212", "calleridname": "V1234567"}
    t = await place_call(port, **call)  # the server has read (and cached) the settings
    assert t.commands == [mset("ALLOWED", "not-listed")]
    await block_names(store, Scope.EXTENSION, "101", "V*")
    t = await place_call(port, **call)
    assert t.commands[0] == mset("BLOCKED", "name-rule", "busy")
    await store.remove_entries(
        Scope.EXTENSION, "101", Kind.BLOCK, [Pattern("v*", False, "V*")], field=Field.NAME
    )
    t = await place_call(port, **call)
    assert t.commands == [mset("ALLOWED", "not-listed")]
    # An account rule, with account-wide blocking on, covers an extension whose blocking is off.
    await store.set_extension("101", enabled=False)
    await store.set_account(enabled=True)
    await block_names(store, Scope.ACCOUNT, None, "*1234*")
    t = await place_call(port, **call)
    assert t.commands[0] == mset("BLOCKED", "name-rule", "busy")


async def test_the_allowlist_by_number_beats_a_name_rule(port: int, store: Store) -> None:
    await store.set_extension("101", enabled=True)
    await block_names(store, Scope.EXTENSION, "101", "*spam*")
    await store.add_entries(
        Scope.EXTENSION, "101", Kind.ALLOW, [Pattern("+13035551212", False, "mum")]
    )
    t = await place_call(port, ext="101", callerid="+13035551212", calleridname="SPAM?")
    assert t.commands == [mset("ALLOWED", "allowlist")]
    t = await place_call(port, ext="101", callerid="+13035550000", calleridname="SPAM?")
    assert t.commands[0] == mset("BLOCKED", "name-rule", "busy")


async def test_hostile_and_invalid_utf8_names_never_crash(
    server: Server, port: int, store: Store
) -> None:
    await store.set_extension("101", enabled=True)
    await block_names(store, Scope.EXTENSION, "101", "*spam*")
    # Not UTF-8 (a cut multibyte character), ESC sequences and a bidi override around SPAM.
    env = env_block(port=port, ext="101", callerid="+13035550000", calleridname="NAME")
    env = env.replace(
        b"agi_calleridname: NAME", b"agi_calleridname: \xff\x1b[2J\xe2\x80\xaeSPAM\xc3"
    )
    t = await place_call(port, env)
    assert t.commands[0] == mset("BLOCKED", "name-rule", "busy")
    t = await place_call(port, ext="101", callerid="+13035550000", calleridname="\x00\u202e")
    assert t.commands == [mset("ALLOWED", "not-listed")]
    assert server.screener is not None and server.screener.decision_errors == 0
    assert server.recorder is not None
    await server.recorder.flush()
    logged = await store.recent_calls(ext="101")
    assert logged[-1].caller_name == "\ufffd\x1b[2J\u202eSPAM\ufffd"
