"""Caller-ID parsing, pure: E.164 normalization, prefix patterns, anonymous detection.

Stored entries and incoming caller IDs go through the same functions, so ``3035551212``,
``+1 (303) 555-1212`` and ``011 1 303 555 1212`` all become ``+13035551212`` and match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

DEFAULT_REGION = "US"

#: Caller-ID texts that mean "no number" (compared case-insensitively).
ANONYMOUS_WORDS = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld"}
)
#: agi_callingpres: the presentation restriction bits (AST_PRES_RESTRICTION = 0x60).
_PRES_RESTRICTION = 0x60
_PRES_RESTRICTED = 0x20
_PRES_UNAVAILABLE = 0x40

# What a typed phone number may contain: digits, an optional leading +, and separators.
_NUMBER_TEXT = re.compile(r"^\+?[\d\s().\-/]*\d[\d\s().\-/]*$")
_SEPARATORS = re.compile(r"[\s().\-/]")


class InvalidNumber(ValueError):
    """The text is not a phone number (or not a pattern)."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A list entry: an E.164 number, or an E.164 prefix when ``prefix`` is true."""

    value: str  # "+13035551212" or, for a prefix, "+1303"
    prefix: bool
    raw: str  # as typed, for display

    def matches(self, e164: str) -> bool:
        return e164.startswith(self.value) if self.prefix else e164 == self.value

    def __str__(self) -> str:
        return self.value + ("*" if self.prefix else "")


def normalize(text: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form of a phone number typed any common way.

    Numbers phonenumbers calls invalid are kept if they parse (carriers send odd ones); text
    that is not a phone number raises :class:`InvalidNumber`.
    """
    text = text.strip()
    if not _NUMBER_TEXT.match(text):
        raise InvalidNumber(f"not a phone number: {text!r}")
    return _normalize(text, region.upper())


@lru_cache(maxsize=4096)
def _normalize(text: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidNumber(f"not a phone number: {text!r} ({exc._msg})") from None
    return str(phonenumbers.format_number(parsed, PhoneNumberFormat.E164))


def prefix_e164(body: str, region: str = DEFAULT_REGION) -> str:
    """Normalize the digits before a ``*`` to an E.164 prefix, as :func:`normalize` would.

    ``+1900`` -> ``+1900``; ``011 44`` -> ``+44``; with region US ``1303`` and ``303`` ->
    ``+1303``; with region GB ``020`` -> ``+4420`` (the national prefix 0 dropped).
    """
    if not _NUMBER_TEXT.match(body.strip()):
        raise InvalidNumber(f"not a number prefix: {body!r}")
    digits = _SEPARATORS.sub("", body)
    if digits.startswith("+"):
        return digits
    meta = _metadata(region.upper())
    if meta.international_prefix and (m := re.match(meta.international_prefix, digits)):
        rest = digits[m.end() :]
        if rest:
            return "+" + rest
    national = meta.national_prefix or ""
    if national and digits.startswith(national):
        digits = digits[len(national) :]
    return f"+{meta.country_code}{digits}"


@lru_cache(maxsize=64)
def _metadata(region: str) -> phonenumbers.PhoneMetadata:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        raise InvalidNumber(f"unknown region: {region!r}")
    return meta


def parse_pattern(text: str, region: str = DEFAULT_REGION) -> Pattern:
    """A list entry as typed: a number, or a prefix ending in ``*`` (``+1900*``, ``+44*``)."""
    raw = text.strip()
    if raw.endswith("*"):
        value = prefix_e164(raw[:-1], region)
        if len(value) < 2:
            raise InvalidNumber(f"empty prefix: {raw!r}")
        return Pattern(value, True, raw)
    return Pattern(normalize(raw, region), False, raw)


def valid_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


@dataclass(frozen=True, slots=True)
class Caller:
    raw: str  # agi_callerid as received
    e164: str | None  # None when anonymous or not a number
    anonymous: bool

    @property
    def display(self) -> str:
        return self.e164 or self.raw or "(none)"


def is_anonymous(number: str, callingpres: str | int | None = None) -> bool:
    """No usable caller ID: an empty or 'anonymous'-like text, all zeros, or a presentation
    marked restricted/unavailable."""
    text = number.strip()
    if text.lower() in ANONYMOUS_WORDS:
        return True
    digits = _SEPARATORS.sub("", text).lstrip("+")
    if digits and set(digits) == {"0"}:
        return True
    if callingpres not in (None, ""):
        try:
            pres = int(callingpres)
        except ValueError:
            return False
        return pres & _PRES_RESTRICTION in (_PRES_RESTRICTED, _PRES_UNAVAILABLE)
    return False


def caller_from(
    number: str, callingpres: str | int | None = None, region: str = DEFAULT_REGION
) -> Caller:
    """Classify an incoming caller ID (``agi_callerid`` / ``agi_callingpres``)."""
    if is_anonymous(number, callingpres):
        return Caller(number, None, True)
    try:
        return Caller(number, normalize(number, region), False)
    except InvalidNumber:
        return Caller(number, None, False)  # a name or garbage: matches no entry


def prefixes_of(e164: str) -> list[str]:
    """Every string a list entry could hold to match ``e164``: its prefixes, longest last."""
    return [e164[:i] for i in range(2, len(e164) + 1)]
