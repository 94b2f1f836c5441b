from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callscreen import numbers
from callscreen.numbers import (
    InvalidNumber,
    caller_from,
    is_anonymous,
    normalize,
    parse_pattern,
    prefix_e164,
)


@pytest.mark.parametrize(
    "text",
    [
        "3035551212",
        "13035551212",
        "+1 (303) 555-1212",
        "303.555.1212",
        "+13035551212",
        "1-303-555-1212",
        "011 1 303 555 1212",
    ],
)
def test_us_forms_normalize_to_one_e164(text: str) -> None:
    assert normalize(text) == "+13035551212"


def test_international_dialing_prefix() -> None:
    assert normalize("011 44 20 7123 4567") == "+442071234567"
    assert normalize("00 44 20 7123 4567", "GB") == "+442071234567"
    assert normalize("020 7123 4567", "GB") == "+442071234567"


def test_numbers_phonenumbers_calls_invalid_are_kept() -> None:
    assert normalize("+1 555 0100") == "+15550100"  # too short to be valid, still a number


@pytest.mark.parametrize("text", ["abc", "", "   ", "+", "1-800-FLOWERS", "303 555 1212 x", "*"])
def test_text_that_is_not_a_number_is_rejected(text: str) -> None:
    with pytest.raises(InvalidNumber):
        parse_pattern(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("+1900*", "+1900"),
        ("+1303*", "+1303"),
        ("1303*", "+1303"),
        ("303*", "+1303"),
        ("+44*", "+44"),
        ("011 44*", "+44"),
        ("+1 (303) 555*", "+1303555"),
    ],
)
def test_prefix_patterns_normalize_like_numbers(text: str, value: str) -> None:
    p = parse_pattern(text)
    assert (p.value, p.prefix, p.raw) == (value, True, text)
    assert p.matches(value + "0") and not p.matches("+3" + value[1:])


def test_prefix_with_region_drops_the_national_prefix() -> None:
    assert prefix_e164("020", "GB") == "+4420"


def test_exact_pattern_keeps_raw_text() -> None:
    p = parse_pattern(" 303-555-1212 ")
    assert (p.value, p.prefix, p.raw) == ("+13035551212", False, "303-555-1212")
    assert p.matches("+13035551212") and not p.matches("+130355512120")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "anonymous",
        "Anonymous",
        "UNKNOWN",
        "restricted",
        "Private",
        "unavailable",
        "Withheld",
        "0",
        "0000000000",
        "+000",
    ],
)
def test_anonymous_words_and_zeros(text: str) -> None:
    assert is_anonymous(text)
    assert caller_from(text).anonymous


@pytest.mark.parametrize(
    ("pres", "anonymous"),
    [(0, False), (1, False), (32, True), (35, True), (67, True), ("67", True), ("x", False)],
)
def test_presentation_restricted_or_unavailable(pres: object, anonymous: bool) -> None:
    assert is_anonymous("+13035551212", pres) is anonymous  # type: ignore[arg-type]


def test_caller_with_garbage_number_matches_nothing_but_is_not_anonymous() -> None:
    c = caller_from("Bob's phone")
    assert (c.e164, c.anonymous) == (None, False)


# The number checks' fast paths (issue #16: string methods instead of regexes for ASCII text)
# answer exactly what the regexes answer, for any text: other scripts' digits (which ``\d``
# matches), separators, signs, the empty string.
_NUMBERISH = st.one_of(
    st.from_regex(r"\+?[0-9]{0,17}", fullmatch=True),  # the lengths at the bounds, often
    st.from_regex(r"1?[0-9]{9,11}", fullmatch=True),  # NANP shapes
    st.from_regex("\\+?[0-9\u0663]{5,17}", fullmatch=True),
    st.text(alphabet="0123456789+ ()-./a\u0663\u09e6", max_size=18),
)


@given(_NUMBERISH)
def test_the_e164_check_answers_as_its_regex(text: str) -> None:
    assert numbers._is_e164_digits(text) == bool(numbers._E164_DIGITS.fullmatch(text))


@given(_NUMBERISH, st.integers(0, 1))
def test_the_nanp_check_answers_as_its_regex(text: str, start: int) -> None:
    if len(text) > start:
        expected = bool(numbers._NANP_NATIONAL.fullmatch(text, start))
        assert numbers._is_nanp_national(text, start) == expected


@given(_NUMBERISH)
def test_plain_digits_are_always_number_text(text: str) -> None:
    if numbers._ascii_digits(text):
        assert numbers._NUMBER_TEXT.match(text)
