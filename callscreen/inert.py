"""Text from outside is data: never markup, never control. One rule, used by every output.

Caller ID (number and name as Asterisk hands them over), and anything a person or a program
types (notes, numbers as typed, file contents) can hold bytes that drive a terminal (ESC
sequences clear the screen, rewrite earlier lines, set the window title), split or forge a log
line (CR, LF, U+2028), reorder what is shown (bidi overrides such as U+202E) or, in a rich
table, be read as markup (``[bold]X[/bold]``). Anyone who can place a call can send them.

- :func:`text` shows such characters visibly (``\\x1b``, ``\\u202e``) and doubles a
  backslash, so the shown text is unambiguous: ``\\x1b`` on screen is an ESC that was sent,
  ``\\\\x1b`` is the four characters a caller typed. Plain text comes back as the same object
  (the fast path: one regex scan; this runs on the per-call log path).
- :func:`json_safe` escapes the same characters inside a JSON document as ``\\uXXXX``: the
  parsed value is still exact, the raw document holds no control or bidi character.
- :func:`bound` caps what is stored (evidence, but not a way to bloat the call log).
- :func:`csv_cell` / :func:`csv_value` neutralise spreadsheet formulas in exported text cells
  and undo it on import, exactly.

Markup is not this module's business: the CLI prints these values as :class:`rich.text.Text`
(never parsed as markup) and the portal's templates autoescape; this module only makes sure
what reaches either is visible text.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls; the Arabic letter mark, LRM/RLM, the line and paragraph
#: separators, the bidi embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069);
#: lone surrogates (they cannot even be written to a UTF-8 terminal; as the regex's own
#: escapes: a surrogate in a string literal would stop mypyc compiling this module).
_UNSAFE_CLASS = (
    "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\\ud800-\\udfff"
)
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE_CLASS}\\\\]")
_UNSAFE_JSON = re.compile(f"[{_UNSAFE_CLASS}]")

#: Most characters of a caller number or name the call log keeps (the cut is marked).
MAX_STORED = 256


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c == "\\":
        return "\\\\"
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def text(value: str) -> str:
    """``value`` with every control, bidi-control and line-separator character shown as an
    escape (``\\x1b``, ``\\u202e``) and each backslash doubled; ``value`` itself (the same
    object) when there is nothing to escape."""
    if value.isascii():  # the common case, half the cost of the scan: in ASCII the unsafe
        # characters are exactly the non-printable ones (C0 controls and DEL), and backslash
        if value.isprintable() and "\\" not in value:
            return value
    elif _UNSAFE_TEXT.search(value) is None:
        return value
    return _UNSAFE_TEXT.sub(_escape, value)


def has_unsafe(value: str) -> bool:
    """Whether ``value`` holds a character :func:`text` would escape (backslash aside)."""
    return _UNSAFE_JSON.search(value) is not None


def unescape(shown: str) -> str:
    """The inverse of :func:`text` (for tests and tools reading our output back)."""
    return re.sub(
        r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})",
        lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)),
        shown,
    )


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_safe(document: str) -> str:
    """A JSON document (from ``json.dumps(..., ensure_ascii=False)``) with every raw control,
    bidi-control and separator character written as a ``\\uXXXX`` escape.

    Outside strings JSON has none of these characters, and inside a string the escape means
    the same character: ``json.loads`` gives back exactly the same value.
    """
    if _UNSAFE_JSON.search(document) is None:
        return document
    return _UNSAFE_JSON.sub(_json_escape, document)


def _mark(dropped: int) -> str:
    return f"…[+{dropped} chars]"


def bound(value: str, limit: int = MAX_STORED) -> str:
    """``value`` if it has at most ``limit`` characters; else its start and a marker of how
    many characters were cut (``…[+1794 chars]``), ``limit`` characters in all."""
    if len(value) <= limit:
        return value
    keep = max(0, limit - len(_mark(len(value))))  # the marker can only get shorter...
    if keep + 1 + len(_mark(len(value) - keep - 1)) <= limit:  # ...by a digit: use it
        keep += 1
    return value[:keep] + _mark(len(value) - keep)


#: A spreadsheet reads a cell that starts with one of these as a formula (or, for tab and CR,
#: strips it and reads the rest): OWASP's "CSV injection" list.
FORMULA_START = frozenset("=+-@\t\r")
_QUOTE = "'"
_QUOTED_START = FORMULA_START | {_QUOTE}


def csv_cell(value: str) -> str:
    """An exported text cell a spreadsheet shows as text: ``'`` before a formula start.

    A value that already starts with ``'`` and then a formula start or another ``'`` gets one
    more ``'`` too, so that :func:`csv_value` can tell the two apart: for every string
    ``csv_value(csv_cell(s)) == s``.
    """
    if value[:1] in FORMULA_START or (value[:1] == _QUOTE and value[1:2] in _QUOTED_START):
        return _QUOTE + value
    return value


def csv_value(cell: str) -> str:
    """An imported text cell: the inverse of :func:`csv_cell` (a ``'`` followed by a formula
    start or a ``'`` is dropped; anything else is kept as it is)."""
    if cell[:1] == _QUOTE and cell[1:2] and cell[1:2] in _QUOTED_START:
        return cell[1:]
    return cell
