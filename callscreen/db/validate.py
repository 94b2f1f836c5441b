"""The store's checks of values from outside: extension names, mailboxes, treatments."""

from __future__ import annotations

import re
from typing import TypeVar

from ..policy import FALLBACKS, TREATMENTS, Rule, Treatment
from .errors import InvalidInput

_EXT = re.compile(r"^[\w+#*.-]{1,80}$")
# Mailbox goes into VoiceMail(box@context,u): no commas, quotes or spaces may slip through.
_MAILBOX = re.compile(r"^[\w.+-]{1,80}(@[\w.-]{1,80})?$")


def check_ext(ext: str) -> str:
    if not _EXT.match(ext):
        raise InvalidInput(f"not an extension: {ext!r} (letters, digits, + # * . - _)")
    return ext


def check_mailbox(box: str) -> str:
    if not _MAILBOX.match(box):
        raise InvalidInput(f"not a mailbox: {box!r} (expected BOX@CONTEXT, e.g. 101@default)")
    return box


_T = TypeVar("_T", Treatment, Rule)


def _choice(value: object, what: str, choices: tuple[_T, ...]) -> _T:
    for choice in choices:
        if value == choice.value:
            return choice
    words = ", ".join(c.value for c in choices)
    raise InvalidInput(f"unknown {what} {value!r} (choose {words})")


def check_treatment(value: object) -> Treatment:
    """What a blocked caller gets: voicemail, busy or torture."""
    return _choice(value, "treatment", TREATMENTS)


def check_fallback(value: object) -> Treatment:
    """What a caller who failed the challenge gets: voicemail, busy or hangup."""
    return _choice(value, "challenge fallback", FALLBACKS)


def check_rule(value: object, what: str, choices: tuple[Rule, ...]) -> Rule:
    """An ``--anonymous`` or ``--unknown`` rule."""
    return _choice(value, f"{what} setting", choices)


_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def check_account_name(name: str) -> str:
    """An account's name: what ``--account`` and Asterisk's AGI argument carry."""
    if not isinstance(name, str) or not _ACCOUNT.fullmatch(name):
        raise InvalidInput(
            f"not an account name: {name!r} (1-63 lowercase letters, digits, . _ -, "
            "starting with a letter or digit)"
        )
    return name
