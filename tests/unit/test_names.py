"""Caller-name rules: parsing (with the exact refusals), normalizing a caller's name, matching."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callscreen import inert
from callscreen.names import (
    InvalidName,
    NameIndex,
    caller_key,
    matches,
    parse_rule,
)
from callscreen.screening import caller_of


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("Scam Likely", "scam likely"),
        ("  SCAM   Likely ", "scam likely"),
        ("V*", "v*"),
        ("*SPAM*", "*spam*"),
        ("*likely", "*likely"),
        ("* spam *", "*spam*"),
        ("SPAM?", "spam?"),
        ("Straße", "strasse"),  # casefold, not lower
    ],
)
def test_parse_rule(typed: str, value: str) -> None:
    rule = parse_rule(typed)
    assert rule.value == value
    assert rule.raw == typed.strip()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", 'give a caller name (e.g. "Scam Likely", "V*", "*spam*")'),
        ("   ", 'give a caller name (e.g. "Scam Likely", "V*", "*spam*")'),
        ("*", "a caller name needs more than *: '*'"),
        ("**", "a caller name needs more than *: '**'"),
        ("* *", "a caller name needs more than *: '* *'"),
        ("a*b", "a * may only start or end a caller name: 'a*b'"),
        ("***", "a * may only start or end a caller name: '***'"),
        ("**spam", "a * may only start or end a caller name: '**spam'"),
        ("\x1b[2JScam", "a caller name cannot hold control characters"),
        ("Scam\u202eylekiL", "a caller name cannot hold control characters"),
        ("Scam\nLikely", "a caller name cannot hold control characters"),
        ("x" * 101, "a caller name has at most 100 characters"),
    ],
)
def test_parse_rule_refuses(typed: str, message: str) -> None:
    with pytest.raises(InvalidName) as exc:
        parse_rule(typed)
    assert str(exc.value) == message
    assert inert.text(str(exc.value)) == str(exc.value).replace("\\", "\\\\")


@pytest.mark.parametrize(
    ("sent", "key"),
    [
        (None, None),
        ("", None),
        ("unknown", None),
        ("UNKNOWN", None),
        ("  ", None),
        ("Scam  Likely", "scam likely"),
        ("V123\x1b", "v123\x1b"),
        ("Caf\ufffd", "caf\ufffd"),  # invalid UTF-8 as the reader decodes it
    ],
)
def test_caller_key(sent: str | None, key: str | None) -> None:
    assert caller_key(sent) == key


@pytest.mark.parametrize(
    ("rule", "name", "hit"),
    [
        ("Scam Likely", "scam likely", True),
        ("Scam Likely", "scam likely!", False),
        ("Scam Likely", "not scam likely", False),
        ("V*", "V123456", True),
        ("V*", "ev123", False),
        ("*likely", "Scam Likely", True),
        ("*likely", "likely scam", False),
        ("*SPAM*", "Maybe SPAM? call", True),
        ("*SPAM*", "spa m", False),
        ("*SPAM*", "spam", True),
    ],
)
def test_matches(rule: str, name: str, hit: bool) -> None:
    key = caller_key(name)
    assert key is not None
    assert matches(parse_rule(rule).value, key) is hit


def test_caller_of_reads_the_name_and_survives_hostile_names() -> None:
    env = {"agi_callerid": "3035551212", "agi_calleridname": "Scam Likely"}
    assert caller_of(env).name == "scam likely"
    assert caller_of({"agi_callerid": "3035551212"}).name is None
    assert caller_of({**env, "agi_calleridname": "unknown"}).name is None
    hostile = "\u202eSPAM\x1b[2J\ud800" + "\ufffd" * 3
    assert caller_of({**env, "agi_calleridname": hostile}).name == hostile.casefold()


_TEXT = st.text(alphabet="abV *?\u00df", max_size=8)


@given(rules=st.lists(_TEXT, max_size=8), name=_TEXT)
def test_the_index_finds_what_matching_finds(rules: list[str], name: str) -> None:
    parsed = []
    for r in rules:
        with contextlib.suppress(InvalidName):
            parsed.append(parse_rule(r).value)
    key = caller_key(name)
    if key is None:
        return
    index = NameIndex((v, i) for i, v in enumerate(parsed))
    want = sorted(i for i, v in enumerate(parsed) if matches(v, key))
    assert sorted(index.find(key)) == want
