"""Accounts (tenants) and several server URLs, through the real Asterisk and the shipped routine.

A hosted PBX names the account in the dialplan: the routine's second argument, else
``CALLSCREEN_ACCOUNT``, else "default". Extension 101 of one account is not extension 101 of
another. ``CALLSCREEN_URL`` may list several servers; one that refuses the connection is
skipped, and the call is still *screened* by the next.
"""

from __future__ import annotations

import time

import pytest

from .bed import Ami, Asterisk, Cli, Server, free_port
from .test_e2e_block_last import blocked_numbers, dial_star32
from .test_e2e_screening import assert_allowed, assert_blocked

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def acme(cli: Cli) -> str:
    """The account "acme" beside "default", with extension 301 set up differently in each."""
    cli("account", "add", "acme")
    cli("--account", "acme", "ext", "set", "301", "--enable", "--treatment", "busy")
    cli("--account", "acme", "block", "add", "--ext", "301", "+13035550301")
    cli("ext", "set", "301", "--enable", "--treatment", "busy")  # default: on, nothing listed
    return "acme"


async def test_the_account_argument_screens_with_that_accounts_lists(
    acme: str, ami: Ami, asterisk: Asterisk
) -> None:
    caller = '"Spam" <+13035550301>'
    # Gosub(callscreen,s,1(${EXTEN},acme)): acme's 301 blocks the number...
    assert_blocked(await ami.call("301", caller, context="inbound-acme"), "ext-blocklist")
    # ...the default account's 301 does not list it: the same call rings.
    assert_allowed(await ami.call("301", caller), "not-listed")
    # CALLSCREEN_ACCOUNT names the account when the routine gets no second argument.
    by_variable = await ami.call("301", caller, variables=[f"CALLSCREEN_ACCOUNT={acme}"])
    assert_blocked(by_variable, "ext-blocklist")
    assert asterisk.wait_no_channels() == 0


async def test_an_account_that_does_not_exist_lets_the_call_through_with_one_warning(
    acme: str, ami: Ami, server: Server
) -> None:
    call = await ami.call(
        "301", '"Spam" <+13035550301>', variables=["CALLSCREEN_ACCOUNT=no-such-account"]
    )
    assert_allowed(call, "error")
    deadline = time.monotonic() + 5
    while True:
        warnings = [
            line
            for line in server.log.read_text(errors="replace").splitlines()
            if "no account named 'no-such-account'" in line
        ]
        if warnings or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(warnings) == 1, warnings
    assert "WARNING" in warnings[0], warnings


async def test_each_accounts_call_log_holds_only_its_calls(acme: str, cli: Cli, ami: Ami) -> None:
    await ami.call("301", '"A" <+13035550399>', context="inbound-acme")
    await ami.call("301", '"D" <+13035550398>')
    deadline = time.monotonic() + 5
    while True:  # the call log is written in batches
        in_acme = cli.json("--account", acme, "log", "--ext", "301")
        in_default = cli.json("log", "--ext", "301")
        acme_callers = {c["caller_e164"] for c in in_acme}
        default_callers = {c["caller_e164"] for c in in_default}
        done = "+13035550399" in acme_callers and "+13035550398" in default_callers
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "+13035550399" in acme_callers and "+13035550398" not in acme_callers
    assert "+13035550398" in default_callers and "+13035550399" not in default_callers


async def test_star32_blocks_in_the_phones_own_account(acme: str, cli: Cli, ami: Ami) -> None:
    cli("--account", acme, "ext", "set", "302", "--enable", "--treatment", "busy")
    cli("ext", "set", "302", "--enable", "--treatment", "busy")
    caller = '"Robo" <+13035550302>'
    assert_allowed(await ami.call("302", caller, context="inbound-acme"), "not-listed")
    star = await ami.call(
        "*32",
        '"Phone" <302>',
        context="phones",
        variables=["CALLSCREEN_EXT=302", f"CALLSCREEN_ACCOUNT={acme}"],
    )
    assert star.vars.get("CALLSCREEN_BLOCK_STATUS") == "ADDED", star.summary()
    acme_list = cli.json("--account", acme, "block", "list", "--ext", "302")
    assert [e["value"] for e in acme_list] == ["+13035550302"]
    assert blocked_numbers(cli, "302") == []  # the default account's 302: untouched
    assert_blocked(await ami.call("302", caller, context="inbound-acme"), "ext-blocklist")
    assert_allowed(await ami.call("302", caller), "not-listed")
    # A default-account phone's *32 (no account) still blocks in the default account.
    star = await dial_star32(ami, "302", '"Phone" <302>')
    assert star.vars.get("CALLSCREEN_BLOCK_STATUS") == "ADDED", star.summary()
    assert blocked_numbers(cli, "302") == ["+13035550302"]


async def test_a_server_that_refuses_is_skipped_and_the_next_screens(
    cli: Cli, ami: Ami, asterisk: Asterisk, server: Server
) -> None:
    cli("ext", "set", "303", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "303", "+13035550303")
    # Comma-separated (the context prepends a server on port 1, which refuses).
    call = await ami.call("303", '"Spam" <+13035550303>', context="inbound-failover")
    assert_blocked(call, "ext-blocklist")
    # Space-separated, as a channel variable: a dead server first, then ours.
    dead = free_port()
    urls = f"agi://127.0.0.1:{dead}/screen agi://127.0.0.1:{server.port}/screen"
    call = await ami.call("303", '"Spam" <+13035550303>', variables=[f"CALLSCREEN_URL={urls}"])
    assert_blocked(call, "ext-blocklist")
    assert_allowed(
        await ami.call("303", '"Jane" <+13035550304>', variables=[f"CALLSCREEN_URL={urls}"]),
        "not-listed",
    )
    assert asterisk.wait_no_channels() == 0


async def test_when_no_server_answers_the_call_goes_through_unscreened(
    cli: Cli, ami: Ami, asterisk: Asterisk
) -> None:
    cli("ext", "set", "304", "--enable", "--treatment", "busy")
    cli("block", "add", "--ext", "304", "+13035550305")
    urls = f"agi://127.0.0.1:{free_port()}/screen agi://127.0.0.1:{free_port()}/screen"
    call = await ami.call("304", '"Spam" <+13035550305>', variables=[f"CALLSCREEN_URL={urls}"])
    summary = call.summary()
    assert call.result == "UNSCREENED", summary
    assert call.reached_dial, summary
    # Both servers were tried: two AGI() runs, each failing.
    agis = [data for _ctx, app, data in call.apps if app == "AGI"]
    assert len(agis) == 2, summary
    assert asterisk.wait_no_channels() == 0
