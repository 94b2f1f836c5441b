"""The shape checker behind every request body and query string: each refusal is one line of
InvalidInput naming the field, never another exception (which would be a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callscreen.ops.errors import InvalidInput
from callscreen.web import schema as s

BODY = s.obj(
    {"numbers": s.NUMBERS, "note": s.string(10), "on": s.BOOLEAN, "n": s.integer(0, 5)},
    required=["numbers"],
)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"numbers": NaN}', "NaN is not JSON"),
        (b'{"a": 1, "a": 2}', "given twice"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_parse_refusals_are_one_line(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        s.parse_json(raw)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "request body: expected a JSON object, got an array"),
        ({}, "numbers: required"),
        ({"numbers": ["1"], "x": 1}, "unknown field 'x' (known: numbers, note, on, n)"),
        ({"numbers": "123"}, "numbers: expected an array, got a string"),
        ({"numbers": []}, "numbers: expected at least 1 item(s)"),
        ({"numbers": [1]}, "numbers[0]: expected a string, got a number"),
        ({"numbers": ["1"] * 10_001}, "numbers: more than 10000 items"),
        ({"numbers": ["1"], "note": "x" * 11}, "note: longer than 10 characters"),
        ({"numbers": ["1"], "note": "\ud800"}, "note: not valid Unicode text"),
        ({"numbers": ["1"], "on": 1}, "on: expected true or false, got a number"),
        ({"numbers": ["1"], "n": True}, "n: expected a whole number, got a boolean"),
        ({"numbers": ["1"], "n": 1.0}, "n: expected a whole number, got a number"),
        ({"numbers": ["1"], "n": 6}, "n: expected a number from 0 to 5"),
    ],
)
def test_shape_refusals(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        s.check(BODY, value, "request body")
    assert str(info.value) == message


def test_a_good_body_passes_as_it_is() -> None:
    body = {"numbers": ["+13035550100"], "note": "spam", "on": False, "n": 0}
    assert s.check(BODY, body, "request body") == body


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([("limit", "x")], "limit: expected a whole number"),
        ([("limit", "١٢")], "limit: expected a whole number"),
        ([("limit", " 1")], "limit: expected a whole number"),
        ([("limit", "0")], "limit: expected a number from 1 to 10"),
        ([("limit", "9" * 40)], "limit: expected a whole number"),
        ([("limit", "1"), ("limit", "2")], "query parameter 'limit' given twice"),
        ([("order", "x")], "unknown query parameter 'order' (known: limit, q)"),
    ],
)
def test_query_refusals(items: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        s.check_query({"limit": s.integer(1, 10), "q": s.string(5)}, items)
    assert str(info.value) == message


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSONISH)
def test_any_value_is_accepted_or_refused_with_invalid_input(value: Any) -> None:
    try:
        s.check(BODY, value, "request body")
    except InvalidInput as exc:
        assert str(exc) and "\n" not in str(exc)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_with_invalid_input(raw: bytes) -> None:
    try:
        s.parse_json(raw)
    except InvalidInput as exc:
        assert str(exc) and "\n" not in str(exc)
