"""Accounts (tenants) on the call path: the real server against the fake Asterisk.

``AGI(agi://host/screen,EXT,ACCOUNT)``: the account is the second argument, "default" when
there is none. Extension 101 of one account is not extension 101 of another.
"""

from __future__ import annotations

import logging

import pytest

from callscreen.app import Server
from callscreen.db import Store
from callscreen.numbers import Pattern
from callscreen.policy import Kind, Scope, Treatment

from .fake_asterisk import place_call
from .test_calls import mset
from .test_ops_server import block_last

SPAMMER = "+13035551212"


@pytest.fixture
async def acme(store: Store) -> Store:
    """The account "acme" (a store scoped to it): ext 101 blocks SPAMMER there only."""
    row = await store.account_add("acme")
    acme = store.scoped(row.id, "acme")
    await acme.set_extension("101", enabled=True, treatment=Treatment.BUSY)
    await acme.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [Pattern(SPAMMER, False, SPAMMER)])
    await store.set_extension("101", enabled=True, treatment=Treatment.VOICEMAIL)
    return acme


async def test_the_account_argument_picks_the_accounts_settings_and_lists(
    server: Server, port: int, store: Store, acme: Store
) -> None:
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands == [mset("BLOCKED", "ext-blocklist", "busy"), "EXEC Busy"]
    # No account argument, an empty one, or "default": the default account's 101.
    for args in (["101"], ["101", ""], ["101", "default"]):
        t = await place_call(port, args=args, callerid=SPAMMER)
        assert t.commands == [mset("ALLOWED", "not-listed")], args
    # The call log and the hit counter are the account's own.
    assert server.recorder is not None
    await server.recorder.flush()
    acme_calls = await acme.recent_calls(ext="101")
    default_calls = await store.recent_calls(ext="101")
    assert [(c.result, c.reason) for c in acme_calls] == [("BLOCKED", "ext-blocklist")]
    assert len(default_calls) == 3 and {c.result for c in default_calls} == {"ALLOWED"}
    [entry] = await acme.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    assert entry.hits == 1


async def test_a_change_in_one_account_applies_to_its_next_call_only(
    port: int, store: Store, acme: Store
) -> None:
    await acme.set_extension("101", enabled=False)
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands == [mset("ALLOWED", "blocking-off")]
    await store.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [Pattern(SPAMMER, False, SPAMMER)])
    t = await place_call(port, args=["101"], callerid=SPAMMER)
    assert t.commands[0] == mset("BLOCKED", "ext-blocklist", "voicemail")
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands == [mset("ALLOWED", "blocking-off")]


async def test_an_account_that_does_not_exist_fails_open_with_one_warning(
    server: Server, port: int, acme: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="callscreen")
    for name in ("nope", "x" * 5000, "acme\x1b[31m"):
        caplog.clear()
        t = await place_call(port, args=["101", name], callerid=SPAMMER)
        assert t.commands == [mset("ALLOWED", "error")], name
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "no account named" in warnings[0].getMessage()
    assert server.screener is not None
    assert server.screener.metrics.unknown_accounts == 3
    assert server.screener.decision_errors == 0  # not a store failure
    assert server.recorder is not None
    await server.recorder.flush()
    assert await acme.recent_calls(ext="101") == []  # no account's log holds them


async def test_block_last_works_in_the_phones_own_account(
    port: int, store: Store, acme: Store
) -> None:
    caller = "+13035550042"
    t = await place_call(port, args=["102", "acme"], callerid=caller)
    assert t.commands == [mset("ALLOWED", "blocking-off")]
    v = await block_last(port, "102", "acme")
    assert v == {"CALLSCREEN_BLOCK_STATUS": "ADDED", "CALLSCREEN_BLOCKED_NUMBER": caller}
    listed = await acme.list_entries(Scope.EXTENSION, "102", Kind.BLOCK)
    assert [e.entry.value for e in listed] == [caller]
    assert await store.list_entries(Scope.EXTENSION, "102", Kind.BLOCK) == []
    # The default account's 102 had no caller: nothing to block there; no such account: error.
    assert (await block_last(port, "102"))["CALLSCREEN_BLOCK_STATUS"] == "NOCALLER"
    assert (await block_last(port, "102", "nope"))["CALLSCREEN_BLOCK_STATUS"] == "ERROR"


async def test_an_account_removed_and_added_again_is_read_afresh(
    port: int, store: Store, acme: Store
) -> None:
    """The server keeps each account's id by name between calls: a removal (and a new
    account of the same name, with another id) must show on the very next call."""
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands[0] == mset("BLOCKED", "ext-blocklist", "busy")
    await store.account_remove("acme", force=True)
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands == [mset("ALLOWED", "error")]
    await store.account_add("other")  # takes an id, so acme's next one differs
    row = await store.account_add("acme")
    again = store.scoped(row.id, "acme")
    await again.set_extension("101", enabled=True, treatment=Treatment.BUSY)
    t = await place_call(port, args=["101", "acme"], callerid=SPAMMER)
    assert t.commands == [mset("ALLOWED", "not-listed")]  # the new acme lists nothing
