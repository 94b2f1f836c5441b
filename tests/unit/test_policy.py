"""The decision table: each precedence rule, and what wins when rules meet."""

from __future__ import annotations

import pytest

from callscreen.numbers import caller_from, parse_pattern
from callscreen.policy import (
    AccountSettings,
    Entry,
    ExtensionSettings,
    Kind,
    Reason,
    Result,
    Scope,
    Treatment,
    decide,
)

_ids = iter(range(1, 1000))


def entry(scope: Scope, kind: Kind, text: str, ext: str | None = "101") -> Entry:
    p = parse_pattern(text)
    return Entry(
        next(_ids), scope, kind, p.value, p.prefix, p.raw, ext if scope is Scope.EXTENSION else None
    )


E, A = Scope.EXTENSION, Scope.ACCOUNT
BLOCK, ALLOW = Kind.BLOCK, Kind.ALLOW
ON = ExtensionSettings("101", enabled=True)
OFF = ExtensionSettings("101", enabled=False)
ON_ANON = ExtensionSettings("101", enabled=True, block_anonymous=True)
OFF_ANON = ExtensionSettings("101", enabled=False, block_anonymous=True)
ACC_OFF = AccountSettings()
ACC_ON = AccountSettings(enabled=True)
CALLER = "+13035551212"

CASES = [
    # (name, account, ext, caller, entries, result, reason)
    ("nothing configured", ACC_OFF, OFF, CALLER, [], "ALLOWED", "blocking-off"),
    ("on, not listed", ACC_OFF, ON, CALLER, [], "ALLOWED", "not-listed"),
    ("ext exact", ACC_OFF, ON, CALLER, [entry(E, BLOCK, "3035551212")], "BLOCKED", "ext-blocklist"),
    ("ext prefix", ACC_OFF, ON, CALLER, [entry(E, BLOCK, "+1303*")], "BLOCKED", "ext-blocklist"),
    (
        "ext list but off",
        ACC_OFF,
        OFF,
        CALLER,
        [entry(E, BLOCK, CALLER)],
        "ALLOWED",
        "blocking-off",
    ),
    (
        "other ext's list",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, CALLER, ext="102")],
        "ALLOWED",
        "not-listed",
    ),
    (
        "prefix not matching",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, "+1900*")],
        "ALLOWED",
        "not-listed",
    ),
    (
        "account list, account off",
        ACC_OFF,
        ON,
        CALLER,
        [entry(A, BLOCK, CALLER)],
        "ALLOWED",
        "not-listed",
    ),
    (
        "account list, ext off",
        ACC_ON,
        OFF,
        CALLER,
        [entry(A, BLOCK, CALLER)],
        "BLOCKED",
        "account-blocklist",
    ),
    (
        "account prefix",
        ACC_ON,
        OFF,
        CALLER,
        [entry(A, BLOCK, "+1*")],
        "BLOCKED",
        "account-blocklist",
    ),
    (
        "ext allow beats ext block",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, CALLER), entry(E, ALLOW, CALLER)],
        "ALLOWED",
        "allowlist",
    ),
    (
        "ext allow beats account block",
        ACC_ON,
        ON,
        CALLER,
        [entry(A, BLOCK, CALLER), entry(E, ALLOW, CALLER)],
        "ALLOWED",
        "allowlist",
    ),
    (
        "account allow beats ext block",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, "+1303*"), entry(A, ALLOW, CALLER)],
        "ALLOWED",
        "allowlist",
    ),
    (
        "allow prefix",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, CALLER), entry(E, ALLOW, "+1303*")],
        "ALLOWED",
        "allowlist",
    ),
    (
        "other ext's allow",
        ACC_OFF,
        ON,
        CALLER,
        [entry(E, BLOCK, CALLER), entry(E, ALLOW, CALLER, ext="102")],
        "BLOCKED",
        "ext-blocklist",
    ),
    (
        "ext beats account",
        ACC_ON,
        ON,
        CALLER,
        [entry(A, BLOCK, CALLER), entry(E, BLOCK, CALLER)],
        "BLOCKED",
        "ext-blocklist",
    ),
    ("anonymous, ext blocks", ACC_OFF, ON_ANON, "anonymous", [], "BLOCKED", "anonymous"),
    ("anonymous, ext allows", ACC_OFF, ON, "anonymous", [], "ALLOWED", "not-listed"),
    ("anonymous, ext blocks but off", ACC_OFF, OFF_ANON, "", [], "ALLOWED", "blocking-off"),
    (
        "anonymous, account blocks",
        AccountSettings(enabled=True, block_anonymous=True),
        OFF,
        "Restricted",
        [],
        "BLOCKED",
        "anonymous",
    ),
    (
        "anonymous, account blocks but off",
        AccountSettings(block_anonymous=True),
        OFF,
        "Restricted",
        [],
        "ALLOWED",
        "blocking-off",
    ),
    ("garbage caller id", ACC_ON, ON, "Bob", [entry(A, BLOCK, "+1*")], "ALLOWED", "not-listed"),
]


@pytest.mark.parametrize(
    ("account", "ext", "caller", "entries", "result", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(
    account: AccountSettings,
    ext: ExtensionSettings,
    caller: str,
    entries: list[Entry],
    result: str,
    reason: str,
) -> None:
    d = decide(account, ext, caller_from(caller), entries)
    assert (d.result.value, d.reason.value) == (result, reason)
    assert (d.treatment is not None) == (d.result is Result.BLOCKED)


def test_every_reason_but_error_is_reachable_in_the_table() -> None:
    reasons = {c[-1] for c in CASES}
    assert reasons == {r.value for r in Reason} - {"error"}


def test_treatment_is_the_extensions_else_the_accounts() -> None:
    acc = AccountSettings(enabled=True, treatment=Treatment.TORTURE)
    blocked = [entry(A, BLOCK, CALLER)]
    d = decide(acc, OFF, caller_from(CALLER), blocked)
    assert d.treatment is Treatment.TORTURE
    ext = ExtensionSettings("101", treatment=Treatment.VOICEMAIL)
    assert decide(acc, ext, caller_from(CALLER), blocked).treatment is Treatment.VOICEMAIL


def test_most_specific_entry_is_reported() -> None:
    entries = [entry(E, BLOCK, "+1*"), entry(E, BLOCK, "+1303*"), entry(E, BLOCK, CALLER)]
    d = decide(ACC_OFF, ON, caller_from(CALLER), entries)
    assert d.entry is not None and d.entry.pattern == CALLER
    d = decide(ACC_OFF, ON, caller_from("+13035550000"), entries)
    assert d.entry is not None and d.entry.pattern == "+1303*"


def test_mailbox_default() -> None:
    assert ExtensionSettings("101").voicemail_box == "101@default"
    assert ExtensionSettings("101", mailbox="9@ctx").voicemail_box == "9@ctx"
