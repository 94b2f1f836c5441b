"""The store's checks of values from outside: extension names, mailboxes, treatments."""

from __future__ import annotations

import re

from ..policy import Treatment
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


def check_treatment(value: str) -> Treatment:
    try:
        return Treatment(value)
    except ValueError:
        choices = ", ".join(t.value for t in Treatment)
        raise InvalidInput(f"unknown treatment {value!r} (choose {choices})") from None
