"""The decision table: each precedence rule, and what wins when rules meet."""

from __future__ import annotations

from dataclasses import replace

import pytest

from callscreen.names import parse_rule
from callscreen.numbers import caller_from, parse_pattern
from callscreen.policy import (
    AccountSettings,
    Decision,
    Entry,
    ExtensionSettings,
    Field,
    Kind,
    Reason,
    Result,
    Rule,
    Scope,
    Treatment,
    decide,
    fallback_for,
    remember_for,
)

_ids = iter(range(1, 1000))


def entry(scope: Scope, kind: Kind, text: str, ext: str | None = "101") -> Entry:
    p = parse_pattern(text)
    return Entry(
        next(_ids), scope, kind, p.value, p.prefix, p.raw, ext if scope is Scope.EXTENSION else None
    )


def name(scope: Scope, text: str, ext: str | None = "101", kind: Kind = Kind.BLOCK) -> Entry:
    r = parse_rule(text)
    return Entry(
        next(_ids),
        scope,
        kind,
        r.value,
        False,
        r.raw,
        ext if scope is Scope.EXTENSION else None,
        field=Field.NAME,
    )


E, A = Scope.EXTENSION, Scope.ACCOUNT
BLOCK, ALLOW = Kind.BLOCK, Kind.ALLOW
ON = ExtensionSettings("101", enabled=True)
OFF = ExtensionSettings("101", enabled=False)
ON_ANON = ExtensionSettings("101", enabled=True, anonymous=Rule.BLOCK)
OFF_ANON = ExtensionSettings("101", enabled=False, anonymous=Rule.BLOCK)
CHALLENGE_ANON = ExtensionSettings("101", enabled=True, anonymous=Rule.CHALLENGE)
CHALLENGE_UNKNOWN = ExtensionSettings("101", enabled=True, unknown=Rule.CHALLENGE)
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
        AccountSettings(enabled=True, anonymous=Rule.BLOCK),
        OFF,
        "Restricted",
        [],
        "BLOCKED",
        "anonymous",
    ),
    (
        "anonymous, account blocks but off",
        AccountSettings(anonymous=Rule.BLOCK),
        OFF,
        "Restricted",
        [],
        "ALLOWED",
        "blocking-off",
    ),
    ("garbage caller id", ACC_ON, ON, "Bob", [entry(A, BLOCK, "+1*")], "ALLOWED", "not-listed"),
    # Caller-name rules: (number, agi_calleridname) callers.
    ("ext name rule", ACC_OFF, ON, (CALLER, "Scam Likely"), [name(E, "Scam Likely")],
     "BLOCKED", "name-rule"),
    ("name rule, other case and spaces", ACC_OFF, ON, (CALLER, " SCAM   likely "),
     [name(E, "scam likely")], "BLOCKED", "name-rule"),
    ("name rule, another name", ACC_OFF, ON, (CALLER, "Scam Likely Not"),
     [name(E, "Scam Likely")], "ALLOWED", "not-listed"),
    ("name rule, no name", ACC_OFF, ON, CALLER, [name(E, "Scam Likely")], "ALLOWED",
     "not-listed"),
    ("ext name rule, ext off", ACC_ON, OFF, (CALLER, "Scam Likely"), [name(E, "Scam Likely")],
     "ALLOWED", "blocking-off"),
    ("other ext's name rule", ACC_OFF, ON, (CALLER, "Scam Likely"),
     [name(E, "Scam Likely", ext="102")], "ALLOWED", "not-listed"),
    ("account name rule, ext off", ACC_ON, OFF, (CALLER, "V12345"), [name(A, "V*")],
     "BLOCKED", "name-rule"),
    ("account name rule, account off", ACC_OFF, ON, (CALLER, "V12345"), [name(A, "V*")],
     "ALLOWED", "not-listed"),
    ("ext allow beats ext name rule", ACC_OFF, ON, (CALLER, "SPAM?"),
     [name(E, "*spam*"), entry(E, ALLOW, CALLER)], "ALLOWED", "allowlist"),
    ("account allow beats account name rule", ACC_ON, ON, (CALLER, "SPAM?"),
     [name(A, "*spam*"), entry(A, ALLOW, "+1303*")], "ALLOWED", "allowlist"),
    ("anonymous rule before name rule", ACC_OFF, ON_ANON, ("anonymous", "Scam Likely"),
     [name(E, "Scam Likely")], "BLOCKED", "anonymous"),
    ("anonymous caller, name rule", ACC_OFF, ON, ("anonymous", "Scam Likely"),
     [name(E, "Scam Likely")], "BLOCKED", "name-rule"),
    ("ext number entry before ext name rule", ACC_OFF, ON, (CALLER, "Scam Likely"),
     [name(E, "Scam Likely"), entry(E, BLOCK, CALLER)], "BLOCKED", "ext-blocklist"),
    ("ext name rule before account number entry", ACC_ON, ON, (CALLER, "Scam Likely"),
     [entry(A, BLOCK, CALLER), name(E, "Scam Likely")], "BLOCKED", "name-rule"),
    ("unknown is no name", ACC_OFF, ON, (CALLER, "unknown"), [name(E, "*n*"), name(E, "unknown")],
     "ALLOWED", "not-listed"),
    ("an allow name entry counts for nothing", ACC_OFF, ON, (CALLER, "Scam Likely"),
     [name(E, "Scam Likely", kind=ALLOW), entry(E, BLOCK, CALLER)], "BLOCKED", "ext-blocklist"),
    ("a name rule does not match the number", ACC_OFF, ON, (CALLER, "Bob"),
     [name(E, CALLER)], "ALLOWED", "not-listed"),
    # The challenge: who is asked to press a digit.
    ("anonymous, ext challenges", ACC_OFF, CHALLENGE_ANON, "", [], "CHALLENGED", "anonymous"),
    ("anonymous challenge, caller has a number", ACC_OFF, CHALLENGE_ANON, CALLER, [], "ALLOWED",
     "not-listed"),
    ("anonymous challenge, but off", ACC_OFF, replace(CHALLENGE_ANON, enabled=False), "", [],
     "ALLOWED", "blocking-off"),
    ("anonymous: account block beats ext challenge",
     AccountSettings(enabled=True, anonymous=Rule.BLOCK), CHALLENGE_ANON, "", [], "BLOCKED",
     "anonymous"),
    ("anonymous: ext block beats account challenge",
     AccountSettings(enabled=True, anonymous=Rule.CHALLENGE), ON_ANON, "", [], "BLOCKED",
     "anonymous"),
    ("anonymous: account challenge, ext allows",
     AccountSettings(enabled=True, anonymous=Rule.CHALLENGE), ON, "", [], "CHALLENGED",
     "anonymous"),
    ("unknown challenged", ACC_OFF, CHALLENGE_UNKNOWN, CALLER, [], "CHALLENGED", "not-listed"),
    ("unknown challenge, anonymous caller allowed by the anonymous rule", ACC_OFF,
     CHALLENGE_UNKNOWN, "", [], "CHALLENGED", "not-listed"),
    ("unknown challenge, allowlisted", ACC_OFF, CHALLENGE_UNKNOWN, CALLER,
     [entry(E, ALLOW, CALLER)], "ALLOWED", "allowlist"),
    ("unknown challenge, blocklisted", ACC_OFF, CHALLENGE_UNKNOWN, CALLER,
     [entry(E, BLOCK, "+1303*")], "BLOCKED", "ext-blocklist"),
    ("unknown challenge, account-wide", AccountSettings(enabled=True, unknown=Rule.CHALLENGE),
     OFF, CALLER, [], "CHALLENGED", "not-listed"),
    ("unknown challenge, account-wide but off", AccountSettings(unknown=Rule.CHALLENGE), OFF,
     CALLER, [], "ALLOWED", "blocking-off"),
    ("unknown challenge, ext blocking off", ACC_OFF, replace(CHALLENGE_UNKNOWN, enabled=False),
     CALLER, [], "ALLOWED", "blocking-off"),
    ("unknown challenge, name rule blocks first", ACC_OFF, CHALLENGE_UNKNOWN,
     (CALLER, "Scam Likely"), [name(E, "Scam Likely")], "BLOCKED", "name-rule"),
    ("anonymous challenge before name rule", ACC_OFF, CHALLENGE_ANON, ("", "Scam Likely"),
     [name(E, "Scam Likely")], "CHALLENGED", "anonymous"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("account", "ext", "caller", "entries", "result", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(
    account: AccountSettings,
    ext: ExtensionSettings,
    caller: str | tuple[str, str],
    entries: list[Entry],
    result: str,
    reason: str,
) -> None:
    number, name_ = caller if isinstance(caller, tuple) else (caller, None)
    d = decide(account, ext, caller_from(number, name=name_), entries)
    assert (d.result.value, d.reason.value) == (result, reason)
    assert (d.treatment is not None) == (d.result is not Result.ALLOWED)
    assert (d.treatment is Treatment.CHALLENGE) == (d.result is Result.CHALLENGED)


def test_every_reason_is_reachable_in_the_table() -> None:
    """Every reason decide() gives; the others come from elsewhere: error (no decision) and
    the challenge's outcome (callscreen.challenge)."""
    reasons = {c[-1] for c in CASES}
    after = {"error", "challenge-passed", "challenge-failed"}
    assert reasons == {r.value for r in Reason} - after


def test_remember_and_fallback_are_the_extensions_else_the_accounts() -> None:
    acc = AccountSettings(remember=86400.0, fallback=Treatment.VOICEMAIL)
    assert remember_for(acc, ExtensionSettings("101")) == 86400.0
    assert remember_for(acc, ExtensionSettings("101", remember=0.0)) == 0.0
    assert fallback_for(acc, ExtensionSettings("101")) is Treatment.VOICEMAIL
    ext = ExtensionSettings("101", fallback=Treatment.HANGUP)
    assert fallback_for(acc, ext) is Treatment.HANGUP


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


def test_entries_and_decisions_compare_by_value() -> None:
    """What the matched entry and the decision were (plain classes since issue #16) compare,
    hash and print by value, as the dataclasses they replaced did."""
    a = Entry(7, Scope.EXTENSION, Kind.BLOCK, "+13035551212", False, "303-555-1212", "101")
    b = Entry(7, Scope.EXTENSION, Kind.BLOCK, "+13035551212", False, "303-555-1212", "101")
    other = Entry(7, Scope.EXTENSION, Kind.BLOCK, "+13035551212", False, "303-555-1212", "102")
    assert a == b and hash(a) == hash(b) and a != other and len({a, b, other}) == 2
    assert a.note == "" and a.field is Field.NUMBER  # the defaults
    assert repr(a) == (
        "Entry(id=7, scope=<Scope.EXTENSION: 'ext'>, kind=<Kind.BLOCK: 'block'>, "
        "value='+13035551212', prefix=False, raw='303-555-1212', ext='101', note='', "
        "field=<Field.NUMBER: 'number'>)"
    )
    d = Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, Treatment.BUSY, a)
    assert d == Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, Treatment.BUSY, b)
    assert d != Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, Treatment.BUSY, other)
    assert d != Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, Treatment.VOICEMAIL, a)
    assert hash(d) == hash(Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, Treatment.BUSY, b))
    assert d.blocked and not Decision(Result.ALLOWED, Reason.NOT_LISTED).blocked
    assert "treatment=<Treatment.BUSY: 'busy'>" in repr(d)


def test_mailbox_default() -> None:
    assert ExtensionSettings("101").voicemail_box == "101@default"
    assert ExtensionSettings("101", mailbox="9@ctx").voicemail_box == "9@ctx"


def test_name_rule_decision_names_the_most_specific_rule() -> None:
    rules = [name(E, "*likely"), name(E, "scam*"), name(E, "Scam Likely"), name(E, "*am*")]
    d = decide(ACC_OFF, ON, caller_from(CALLER, name="Scam Likely"), rules)
    assert d.reason is Reason.NAME_RULE and d.entry is rules[2]
    d = decide(ACC_OFF, ON, caller_from(CALLER, name="Scam Probably"), rules)
    assert d.entry is rules[1]  # one wildcard beats two
