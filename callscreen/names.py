"""Caller-name rules, pure: parse a rule as typed, normalize a caller's name, match.

Carriers put warnings in the caller name (``SPAM?``, ``Scam Likely``, ``V`` and digits). A
name rule blocks on ``agi_calleridname``:

- both sides are compared as :func:`key` makes them: surrounding space stripped, runs of
  white space made one space, case folded (``str.casefold``: ``SCAM  Likely`` = ``scam likely``);
- ``Scam Likely`` matches the whole name only; ``V*`` a name that starts with ``v``;
  ``*likely`` one that ends with ``likely``; ``*SPAM*`` one that contains ``spam``;
- a ``*`` may only start or end a rule: ``a*b``, ``*``, ``**``, an empty rule and a rule with a
  control or bidi character (:mod:`callscreen.inert`) are refused, so every stored rule shows
  back as plain text (and an error quotes the rule with ``repr``, itself inert).

``agi_calleridname`` is ``unknown`` when Asterisk has no valid name: that, and an empty name,
is *no name*, which no rule matches (a rule ``unknown`` or ``*n*`` must not block every caller
without a name: blocking those is what the anonymous setting is for). A name that is not valid
UTF-8 arrives with U+FFFD in place of the bad bytes (the FastAGI reader decodes with
``replace``) and is matched as it is: it never raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from .inert import has_unsafe

#: The most characters a rule may have (a CNAM name is at most 15; SIP display names are longer).
MAX_RULE: Final = 100
#: agi_calleridname when Asterisk has no valid name (compared after :func:`key`).
NO_NAME: Final = frozenset({"", "unknown"})

#: Why a name rule is block only (the ops error, the import's bad row).
ALLOW_REFUSED = (
    "a caller name can only be blocked: anyone can send any name, so a name never lets a call"
    " through"
)


class InvalidName(ValueError):
    """The text is not a caller-name rule (the message is one line for a person)."""


def key(name: str) -> str:
    """``name`` as rules compare it: trimmed, white space runs made one space, casefolded."""
    return " ".join(name.split()).casefold()  # split(): the Unicode white space of \s


def caller_key(name: str | None) -> str | None:
    """The caller's name (``agi_calleridname``) as rules see it; None for no name."""
    if not name:
        return None
    k = key(name)
    return None if k in NO_NAME else k


@dataclass(frozen=True, slots=True)
class NameRule:
    """A parsed rule: ``value`` is what is stored (casefolded, with its ``*``), ``raw`` as
    typed (trimmed)."""

    value: str
    raw: str

    def __str__(self) -> str:
        return self.value


def parse_rule(text: str) -> NameRule:
    """A rule as typed -> :class:`NameRule`, or :class:`InvalidName` in one line."""
    raw = text.strip()
    if not raw:
        raise InvalidName('give a caller name (e.g. "Scam Likely", "V*", "*spam*")')
    if has_unsafe(raw):
        raise InvalidName("a caller name cannot hold control characters")
    if len(raw) > MAX_RULE:
        raise InvalidName(f"a caller name has at most {MAX_RULE} characters")
    value = key(raw)
    start, end = value.startswith("*"), value.endswith("*")
    core = value[1 if start else 0 : len(value) - 1 if end and len(value) > 1 else len(value)]
    if "*" in core:
        raise InvalidName(f"a * may only start or end a caller name: {raw!r}")
    if not core.strip():
        raise InvalidName(f"a caller name needs more than *: {raw!r}")
    if core != core.strip():  # "* spam" -> "*spam": space next to a * means nothing
        core = core.strip()
        value = ("*" if start else "") + core + ("*" if end else "")
    return NameRule(value, raw)


def matches(rule: str, name_key: str) -> bool:
    """Whether a stored rule value matches a caller's :func:`caller_key` (not None)."""
    start, end = rule.startswith("*"), rule.endswith("*")
    if start and end:
        return rule[1:-1] in name_key
    if end:
        return name_key.startswith(rule[:-1])
    if start:
        return name_key.endswith(rule[1:])
    return name_key == rule


def specificity(rule: str) -> tuple[bool, bool, int]:
    """A whole name beats a wildcard, one wildcard beats two, longer text beats shorter."""
    stars = rule.count("*")
    return (stars == 0, stars < 2, len(rule) - stars)


T = TypeVar("T")


class NameIndex(Generic[T]):
    """Rules indexed for one caller's name: whole names in a dict, prefixes and suffixes by
    the lengths present (one dict probe per length), "contains" rules scanned (few)."""

    __slots__ = ("_contains", "_exact", "_prefix", "_prefix_lengths", "_suffix", "_suffix_lengths")

    def __init__(self, items: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, list[T]] = {}
        self._prefix: dict[str, list[T]] = {}
        self._suffix: dict[str, list[T]] = {}
        self._contains: list[tuple[str, T]] = []
        for rule, item in items:
            start, end = rule.startswith("*"), rule.endswith("*")
            if start and end:
                self._contains.append((rule[1:-1], item))
            elif end:
                self._prefix.setdefault(rule[:-1], []).append(item)
            elif start:
                self._suffix.setdefault(rule[1:], []).append(item)
            else:
                self._exact.setdefault(rule, []).append(item)
        self._prefix_lengths = sorted({len(p) for p in self._prefix})
        self._suffix_lengths = sorted({len(s) for s in self._suffix})

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefix or self._suffix or self._contains)

    def find(self, name_key: str) -> list[T]:
        """Every item whose rule matches ``name_key`` (a :func:`caller_key`)."""
        out = list(self._exact.get(name_key, ()))
        n = len(name_key)
        for length in self._prefix_lengths:
            if length > n:
                break
            out += self._prefix.get(name_key[:length], ())
        for length in self._suffix_lengths:
            if length > n:
                break
            out += self._suffix.get(name_key[n - length :], ())
        out += [item for text, item in self._contains if text in name_key]
        return out
