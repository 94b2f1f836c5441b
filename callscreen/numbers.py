"""Caller-ID parsing, pure: E.164 normalization, prefix patterns, anonymous detection.

Stored entries and incoming caller IDs go through the same functions, so ``3035551212``,
``+1 (303) 555-1212`` and ``011 1 303 555 1212`` all become ``+13035551212`` and match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from .names import caller_key

DEFAULT_REGION: Final = "US"

#: Caller-ID texts that mean "no number" (compared case-insensitively).
ANONYMOUS_WORDS: Final = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld"}
)
#: agi_callingpres: the presentation restriction bits (AST_PRES_RESTRICTION = 0x60).
_PRES_RESTRICTION: Final = 0x60
_PRES_RESTRICTED: Final = 0x20
_PRES_UNAVAILABLE: Final = 0x40

# What a typed phone number may contain: digits, an optional leading +, and separators.
_NUMBER_TEXT: Final = re.compile(r"^\+?[\d\s().\-/]*\d[\d\s().\-/]*$")
_SEPARATORS: Final = re.compile(r"[\s().\-/]")


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
    if not _ascii_digits(text) and not _NUMBER_TEXT.match(text):
        raise InvalidNumber(f"not a phone number: {text!r}")
    region = region.upper()
    return _already_normal(text, region) or _normalize(text, region)


def _ascii_digits(text: str, start: int = 0) -> bool:
    """``text[start:]`` is ASCII digits, after an optional ``+`` (at least one digit): what
    trunks send. Such text matches :data:`_NUMBER_TEXT`; string methods say so for a tenth of
    a regex call from compiled code (issue #16)."""
    if start < len(text) and text[start] == "+":  # not startswith("+", start): compiled,
        start += 1  # a start argument makes it a generic method call
    return text.isascii() and (text[start:] if start else text).isdigit()


_E164_DIGITS: Final = re.compile(r"\+[1-9]\d{6,14}")
_NANP_NATIONAL: Final = re.compile(r"[2-9]\d{9}")


def _is_e164_digits(text: str) -> bool:
    """``_E164_DIGITS.fullmatch(text)``; without the regex for ASCII text (``\\d`` also
    matches other scripts' digits: that text still goes to the regex)."""
    if text.isascii():
        return 8 <= len(text) <= 16 and text[0] == "+" and text[1] != "0" and _ascii_digits(text)
    return _E164_DIGITS.fullmatch(text) is not None


def _is_nanp_national(text: str, start: int = 0) -> bool:
    """``_NANP_NATIONAL.fullmatch(text, start)``, the same way."""
    if text.isascii():
        return len(text) - start == 10 and "2" <= text[start] <= "9" and text[start:].isdigit()
    return _NANP_NATIONAL.fullmatch(text, start) is not None


def _already_normal(text: str, region: str) -> str | None:
    """The answer phonenumbers would give, without running it (it costs ~20 us a number),
    for the two forms trunks send most; None when unsure. Exact by construction: the
    property tests compare it with phonenumbers on generated numbers of every country code.

    - ``+CC…`` (E.164 already): phonenumbers only changes it when the digits after the
      country code start with that country's national prefix (``+44 0…``): then fall back;
    - ten digits ``NXXNXXXXXX`` in a +1 region: ``+1`` and the digits; the same with the
      national prefix, ``1NXXNXXXXXX`` (the form many NANP trunks send): ``+`` and the digits.
    """
    if text[0] == "+":
        if not _is_e164_digits(text):
            return None
        for n in (1, 2, 3):
            pattern = _NATIONAL_PREFIX.get(text[1 : n + 1])
            if pattern is not None:
                rest = text[n + 1 :]
                return None if pattern.match(rest) else text
            if text[1 : n + 1] in _COUNTRY_CODES:  # a country code without a national prefix
                return text
        return None
    if _is_nanp_national(text) and _metadata(region).country_code == 1:
        return "+1" + text
    if text[0] == "1" and _is_nanp_national(text, 1) and _metadata(region).country_code == 1:
        return "+" + text
    return None


def _national_prefixes() -> tuple[dict[str, re.Pattern[str]], frozenset[str]]:
    patterns: dict[str, re.Pattern[str]] = {}
    for cc, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
        if meta is not None and meta.national_prefix_for_parsing:
            patterns[str(cc)] = re.compile(meta.national_prefix_for_parsing)
    return patterns, frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


_NATIONAL_PREFIX, _COUNTRY_CODES = _national_prefixes()


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


class Caller:
    """Who is calling. A plain class with ``Final`` attributes rather than a frozen dataclass:
    one is made per call, and the dataclass's generated ``__init__`` stays interpreted code
    even compiled (issue #16); mypy, and the compiled class at run time, refuse assignments."""

    __slots__ = ("anonymous", "e164", "name", "raw")

    def __init__(
        self, raw: str, e164: str | None, anonymous: bool, name: str | None = None
    ) -> None:
        self.raw: Final = raw  # agi_callerid as received
        self.e164: Final = e164  # None when anonymous or not a number
        self.anonymous: Final = anonymous
        #: The caller's name as name rules see it (callscreen.names.caller_key): None for none.
        self.name: Final = name

    @property
    def display(self) -> str:
        return self.e164 or self.raw or "(none)"

    def _key(self) -> tuple[str, str | None, bool, str | None]:
        return (self.raw, self.e164, self.anonymous, self.name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Caller):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Caller(raw={self.raw!r}, e164={self.e164!r}, anonymous={self.anonymous!r}, "
            f"name={self.name!r})"
        )


def is_anonymous(number: str, callingpres: str | int | None = None) -> bool:
    """No usable caller ID: an empty or 'anonymous'-like text, all zeros, or a presentation
    marked restricted/unavailable."""
    text = number.strip()
    if text.lower() in ANONYMOUS_WORDS:
        return True
    if "0" in text and not text.strip("+0 ().-/"):  # all zeros
        return True
    if callingpres not in (None, ""):
        try:
            pres = int(callingpres)
        except ValueError:
            return False
        return pres & _PRES_RESTRICTION in (_PRES_RESTRICTED, _PRES_UNAVAILABLE)
    return False


def caller_from(
    number: str,
    callingpres: str | int | None = None,
    region: str = DEFAULT_REGION,
    name: str | None = None,
) -> Caller:
    """Classify an incoming caller ID (``agi_callerid`` / ``agi_callingpres``, and the name
    ``agi_calleridname`` for name rules)."""
    name_key = caller_key(name)
    if is_anonymous(number, callingpres):
        return Caller(number, None, True, name_key)
    try:
        return Caller(number, normalize(number, region), False, name_key)
    except InvalidNumber:
        return Caller(number, None, False, name_key)  # a name or garbage: matches no entry
