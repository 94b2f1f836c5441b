"""The screening decision, pure: settings + caller + matching entries -> Decision.

Order (the README and ``callscreen check`` show the same):

1. the number is on the extension's or the account's allowlist      -> ALLOWED  allowlist
2. anonymous caller, and the extension (blocking on) or the account
   (account-wide blocking on) blocks anonymous callers               -> BLOCKED  anonymous
   ... or challenges them (``--anonymous challenge``)                 -> CHALLENGED anonymous
3. extension blocking on and the number is on its block list        -> BLOCKED  ext-blocklist
4. extension blocking on and the caller's name matches one of its
   name rules (``block add --ext EXT --name "Scam Likely"``)          -> BLOCKED  name-rule
5. account-wide blocking on and the number is on the account list   -> BLOCKED  account-blocklist
   (for every extension, also one whose own blocking is off or that was never configured)
6. account-wide blocking on and the name matches an account rule    -> BLOCKED  name-rule
7. the extension (blocking on) or the account (account-wide blocking
   on) challenges every caller it does not know (``--unknown challenge``) -> CHALLENGED not-listed
8. otherwise                                                        -> ALLOWED  blocking-off when
   the extension's blocking is off, else not-listed

Where the extension's and the account's rules for a caller differ, the stricter wins
(allow < challenge < block). A CHALLENGED call is never logged as such: the challenge
(:mod:`callscreen.challenge`) turns it into ALLOWED ``challenge-passed`` or BLOCKED
``challenge-failed`` with the extension's fallback.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from . import names
from .numbers import Caller


class Result(enum.StrEnum):
    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    #: Before the challenge only (``check``): the call log holds ALLOWED or BLOCKED.
    CHALLENGED = "CHALLENGED"


class Treatment(enum.StrEnum):
    VOICEMAIL = "voicemail"
    BUSY = "busy"
    TORTURE = "torture"
    #: "Press N to be connected" (callscreen.challenge): chosen by the anonymous/unknown rules.
    CHALLENGE = "challenge"
    #: A fallback after a failed challenge only: end the (answered) call.
    HANGUP = "hangup"


#: What ``--treatment`` may be: what a blocked caller gets.
TREATMENTS = (Treatment.VOICEMAIL, Treatment.BUSY, Treatment.TORTURE)
#: What ``--challenge-fallback`` may be: what a caller who failed the challenge gets.
FALLBACKS = (Treatment.VOICEMAIL, Treatment.BUSY, Treatment.HANGUP)


class Rule(enum.StrEnum):
    """What happens to a kind of caller (``--anonymous``, ``--unknown``)."""

    ALLOW = "allow"
    CHALLENGE = "challenge"
    BLOCK = "block"


#: Which rule is stricter, when the extension's and the account's differ.
_STRICTNESS: Final = {Rule.ALLOW: 0, Rule.CHALLENGE: 1, Rule.BLOCK: 2}
#: What ``--unknown`` may be: blocking every caller not on a list is not a rule, it is a mistake.
UNKNOWN_RULES = (Rule.ALLOW, Rule.CHALLENGE)


class Scope(enum.StrEnum):
    EXTENSION = "ext"
    ACCOUNT = "account"


class Kind(enum.StrEnum):
    BLOCK = "block"
    ALLOW = "allow"


class Field(enum.StrEnum):
    """What an entry matches: the caller's number, or the caller's name (a name rule)."""

    NUMBER = "number"
    NAME = "name"


class Reason(enum.StrEnum):
    ALLOWLIST = "allowlist"
    ANONYMOUS = "anonymous"
    EXT_BLOCKLIST = "ext-blocklist"
    ACCOUNT_BLOCKLIST = "account-blocklist"
    NAME_RULE = "name-rule"
    BLOCKING_OFF = "blocking-off"
    NOT_LISTED = "not-listed"
    CHALLENGE_PASSED = "challenge-passed"
    CHALLENGE_FAILED = "challenge-failed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class AccountSettings:
    enabled: bool = False  # account-wide blocking: an admin feature, off by default
    anonymous: Rule = Rule.ALLOW  # account-wide: callers without caller ID, everywhere
    treatment: Treatment = Treatment.BUSY  # for extensions that set none
    unknown: Rule = Rule.ALLOW  # account-wide: every caller on no list (allow or challenge)
    remember: float = 0.0  # seconds a passed caller stays allowed (0: not remembered)
    fallback: Treatment = Treatment.BUSY  # after a failed challenge, where extensions set none
    account_id: int = 1  # whose settings these are (the call log's account); 1: "default"


@dataclass(frozen=True, slots=True)
class ExtensionSettings:
    ext: str
    enabled: bool = False  # "Turn On Call Blocking": off until turned on
    anonymous: Rule = Rule.ALLOW
    treatment: Treatment | None = None  # None: the account default
    mailbox: str | None = None  # None: EXT@default
    unknown: Rule = Rule.ALLOW
    remember: float | None = None  # None: the account's; 0: not remembered
    fallback: Treatment | None = None  # None: the account's

    @property
    def voicemail_box(self) -> str:
        return self.mailbox or f"{self.ext}@default"

    @property
    def block_anonymous(self) -> bool:
        return self.anonymous is Rule.BLOCK


def remember_for(account: AccountSettings, ext: ExtensionSettings) -> float:
    """Seconds a caller who passed the challenge stays on the extension's allowlist (0: no)."""
    return account.remember if ext.remember is None else ext.remember


def fallback_for(account: AccountSettings, ext: ExtensionSettings) -> Treatment:
    """What a caller who failed the challenge gets."""
    return ext.fallback or account.fallback


#: :class:`Entry`'s fields, in the order its constructor takes them.
_ENTRY_FIELDS: Final = ("id", "scope", "kind", "value", "prefix", "raw", "ext", "note", "field")


class Entry:
    """A list entry that matched the caller (the store returns only matching ones).

    Immutable (``Final`` attributes), compared and hashed by value, like the frozen dataclass
    it was: a plain class because a blocked call builds one, and a frozen dataclass's
    generated ``__init__`` stays interpreted code even in the compiled build (about 6,000
    instructions a call, measured with ``bench.callcost``).
    """

    __slots__ = ("ext", "field", "id", "kind", "note", "prefix", "raw", "scope", "value")

    def __init__(
        self,
        id: int,
        scope: Scope,
        kind: Kind,
        value: str,
        prefix: bool,
        raw: str,
        ext: str | None = None,
        note: str = "",
        field: Field = Field.NUMBER,  # NAME: value is a caller-name rule (callscreen.names)
    ) -> None:
        self.id: Final = id
        self.scope: Final = scope
        self.kind: Final = kind
        self.value: Final = value
        self.prefix: Final = prefix
        self.raw: Final = raw
        self.ext: Final = ext
        self.note: Final = note
        self.field: Final = field

    def _values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.scope,
            self.kind,
            self.value,
            self.prefix,
            self.raw,
            self.ext,
            self.note,
            self.field,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in zip(_ENTRY_FIELDS, self._values(), strict=True))
        return f"Entry({values})"

    @property
    def pattern(self) -> str:
        return self.value + ("*" if self.prefix else "")

    def applies(self, ext: str, e164: str) -> bool:
        """Whether this entry covers a call from ``e164`` to extension ``ext``."""
        if (self.scope is Scope.EXTENSION and self.ext != ext) or self.field is Field.NAME:
            return False
        return e164.startswith(self.value) if self.prefix else e164 == self.value

    def applies_name(self, ext: str, name: str) -> bool:
        """Whether this name rule covers a caller named ``name`` (a names.caller_key)."""
        if self.field is not Field.NAME or (self.scope is Scope.EXTENSION and self.ext != ext):
            return False
        return names.matches(self.value, name)


class Decision:
    """What screening decided for a call. Immutable and compared by value; a plain class for
    the reason :class:`Entry` is one (every call builds a Decision)."""

    __slots__ = ("entry", "reason", "result", "treatment")

    def __init__(
        self,
        result: Result,
        reason: Reason,
        treatment: Treatment | None = None,
        entry: Entry | None = None,
    ) -> None:
        self.result: Final = result
        self.reason: Final = reason
        self.treatment: Final = treatment
        self.entry: Final = entry

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.result, self.reason, self.treatment, self.entry) == (
            other.result,
            other.reason,
            other.treatment,
            other.entry,
        )

    def __hash__(self) -> int:
        return hash((self.result, self.reason, self.treatment, self.entry))

    def __repr__(self) -> str:
        return (
            f"Decision(result={self.result!r}, reason={self.reason!r}, "
            f"treatment={self.treatment!r}, entry={self.entry!r})"
        )

    @property
    def blocked(self) -> bool:
        return self.result is Result.BLOCKED


#: What a call gets when we cannot decide (store down, bug): through, and say why.
FAIL_OPEN: Final = Decision(Result.ALLOWED, Reason.ERROR)
#: The caller must press the digit they are told (callscreen.challenge) to get through.
CHALLENGE_ANONYMOUS: Final = Decision(Result.CHALLENGED, Reason.ANONYMOUS, Treatment.CHALLENGE)
CHALLENGE_UNKNOWN: Final = Decision(Result.CHALLENGED, Reason.NOT_LISTED, Treatment.CHALLENGE)


def _specificity(e: Entry) -> tuple[bool, int]:
    """An exact number beats a prefix, a longer prefix a shorter one."""
    return (not e.prefix, len(e.value))


def _best_by_list(ext: str, number: str, entries: list[Entry]) -> dict[tuple[Scope, Kind], Entry]:
    """The most specific entry that applies, for each (scope, kind) list."""
    best: dict[tuple[Scope, Kind], Entry] = {}
    for e in entries:
        if e.applies(ext, number):
            key = (e.scope, e.kind)
            if key not in best or _specificity(e) > _specificity(best[key]):
                best[key] = e
    return best


def _best_name_rules(ext: str, name: str, entries: list[Entry]) -> dict[Scope, Entry]:
    """The most specific block name rule that matches, for each scope."""
    best: dict[Scope, Entry] = {}
    for e in entries:
        if e.kind is Kind.BLOCK and e.applies_name(ext, name):
            old = best.get(e.scope)
            if old is None or names.specificity(e.value) > names.specificity(old.value):
                best[e.scope] = e
    return best


def decide(
    account: AccountSettings,
    ext: ExtensionSettings,
    caller: Caller,
    entries: list[Entry],
) -> Decision:
    """Decide one call. ``entries`` may hold any entries: only those that apply count (the
    store passes just the candidates for this caller, so this filter is cheap)."""
    treatment = ext.treatment or account.treatment
    number = caller.e164
    best = _best_by_list(ext.ext, number, entries) if number and entries else {}
    allowed = best.get((Scope.EXTENSION, Kind.ALLOW)) or best.get((Scope.ACCOUNT, Kind.ALLOW))
    if allowed is not None:
        return Decision(Result.ALLOWED, Reason.ALLOWLIST, entry=allowed)
    if caller.anonymous:
        rule = _stricter(ext.enabled and ext.anonymous, account.enabled and account.anonymous)
        if rule is Rule.BLOCK:
            return _ANONYMOUS_BLOCKED[treatment]
        if rule is Rule.CHALLENGE:
            return CHALLENGE_ANONYMOUS
    named = _best_name_rules(ext.ext, caller.name, entries) if caller.name and entries else {}
    if ext.enabled and (hit := best.get((Scope.EXTENSION, Kind.BLOCK))) is not None:
        return Decision(Result.BLOCKED, Reason.EXT_BLOCKLIST, treatment, hit)
    if ext.enabled and (hit := named.get(Scope.EXTENSION)) is not None:
        return Decision(Result.BLOCKED, Reason.NAME_RULE, treatment, hit)
    if account.enabled and (hit := best.get((Scope.ACCOUNT, Kind.BLOCK))) is not None:
        return Decision(Result.BLOCKED, Reason.ACCOUNT_BLOCKLIST, treatment, hit)
    if account.enabled and (hit := named.get(Scope.ACCOUNT)) is not None:
        return Decision(Result.BLOCKED, Reason.NAME_RULE, treatment, hit)
    if (
        _stricter(ext.enabled and ext.unknown, account.enabled and account.unknown)
        is not Rule.ALLOW
    ):
        return CHALLENGE_UNKNOWN
    return NOT_LISTED if ext.enabled else BLOCKING_OFF


#: The decisions that name no entry, made once: most calls end in one of them, and a
#: Decision is immutable.
NOT_LISTED: Final = Decision(Result.ALLOWED, Reason.NOT_LISTED)
BLOCKING_OFF: Final = Decision(Result.ALLOWED, Reason.BLOCKING_OFF)
_ANONYMOUS_BLOCKED: Final = {t: Decision(Result.BLOCKED, Reason.ANONYMOUS, t) for t in Treatment}


def _stricter(a: Rule | bool, b: Rule | bool) -> Rule:
    """The stricter of two rules; False (that side's blocking is off) counts as allow."""
    ra = a if isinstance(a, Rule) else Rule.ALLOW
    rb = b if isinstance(b, Rule) else Rule.ALLOW
    return ra if _STRICTNESS[ra] >= _STRICTNESS[rb] else rb
