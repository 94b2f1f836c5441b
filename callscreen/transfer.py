"""Import and export of block and allow lists: CSV and JSON, checked row by row.

Columns: ``number`` (a number or a prefix like ``+1900*``, any form ``block add`` takes) and
``note``; an export adds ``raw`` (the text as first typed) and ``expires`` (ISO 8601, UTC;
empty: never) so that importing an export gives back exactly the same lists, and ``export
--all`` puts ``scope`` (ext/account), ``ext`` and ``kind`` (block/allow) first. A file of just
numbers, one per line, with no header, is fine too. JSON is an array of objects with the same
keys (``pattern`` is accepted for ``number``, so ``block list --json`` output imports with
``--all``).

Notes, ``raw`` and extensions are text someone typed (or a file supplied): in CSV a cell that
begins with ``=``, ``+``, ``-``, ``@``, a tab or a CR is exported with a ``'`` in front, so a
spreadsheet shows it as text instead of running it as a formula (:func:`inert.csv_cell`), and
import drops that ``'`` again (:func:`inert.csv_value`): importing an export gives back the
same lists, byte for byte. The number column is a normalized ``+E.164`` (or prefix) and is
written as it is. JSON needs none of this.

A caller-name rule (``block add --name``) is exported with ``name:`` and the stored rule in the
number column (``name:scam likely``, ``name:v*``) and imported back from that form; a JSON item
with ``"field": "name"`` (as ``block list --json`` prints it) imports as a name rule too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

from . import inert, names
from .db.errors import InvalidInput
from .db.store import ListedEntry, NewEntry, check_ext
from .numbers import InvalidNumber, Pattern, parse_pattern
from .policy import Field, Kind, Scope
from .timeutil import iso, parse_time

LIST_COLUMNS = ("number", "note", "raw", "expires")
#: A caller-name rule in the number column: ``name:scam likely`` (``block add --name``).
NAME_MARK = "name:"
SCOPE_COLUMNS = ("scope", "ext", "kind")
ALL_COLUMNS = (*SCOPE_COLUMNS, *LIST_COLUMNS)
FORMATS = ("csv", "json")
#: CSV columns that hold typed text: neutralised on export (not number), restored on import.
CSV_TEXT_COLUMNS = frozenset({"number", "pattern", "note", "raw", "ext"})
_NEUTRALISED = ("note", "raw", "ext")


@dataclass(frozen=True, slots=True)
class Target:
    """Where rows go: one list (scope, ext, kind), or ``all_lists`` (each row says)."""

    scope: Scope | None
    ext: str
    kind: Kind
    all_lists: bool = False


@dataclass(frozen=True, slots=True)
class BadRow:
    where: str  # "line 7" / "item 3"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class TextSource(Protocol):
    """What an import reads: lines (CSV) or the whole text (JSON)."""

    def __iter__(self) -> Iterator[str]: ...

    def read(self, n: int = -1, /) -> str: ...


class FileError(ValueError):
    """The file as a whole cannot be imported (not JSON, wrong columns for the target)."""


# -- reading ----------------------------------------------------------------------------------
def _row_entry(
    record: dict[str, str], target: Target, region: str, shared: dict[str, str]
) -> NewEntry:
    """One row as an entry. ``shared`` holds one copy of repeated notes and extensions."""
    number = (record.get("number") or record.get("pattern") or "").strip()
    if not number:
        raise ValueError("no number")
    field = Field.NUMBER
    if number.startswith(NAME_MARK) or record.get("field") == Field.NAME.value:
        rule = names.parse_rule(number.removeprefix(NAME_MARK))
        pattern, field = Pattern(rule.value, False, rule.raw), Field.NAME
    else:
        pattern = parse_pattern(number, region)
    raw = (record.get("raw") or "").strip() or pattern.raw
    if raw == pattern.value:
        raw = pattern.value  # one string, not two equal ones (a million rows add up)
    if raw is not pattern.raw:
        pattern = Pattern(pattern.value, pattern.prefix, raw)
    expires_text = (record.get("expires") or "").strip()
    expires = parse_time(expires_text) if expires_text else None
    note = record.get("note") or ""
    if len(shared) < 10_000:
        note = shared.setdefault(note, note)
    if not target.all_lists:
        assert target.scope is not None
        _check_kind(field, target.kind)
        return NewEntry(target.scope, target.ext, target.kind, pattern, note, expires, field)
    scope_text = (record.get("scope") or "").strip()
    try:
        scope = Scope(scope_text)
    except ValueError:
        raise ValueError(f"scope must be ext or account, not {scope_text!r}") from None
    kind_text = (record.get("kind") or "").strip()
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise ValueError(f"kind must be block or allow, not {kind_text!r}") from None
    ext = (record.get("ext") or "").strip()
    if len(shared) < 10_000:
        ext = shared.setdefault(ext, ext)
    if scope is Scope.EXTENSION:
        check_ext(ext)
    elif ext:
        raise ValueError(f"an account entry has no extension (got {ext!r})")
    _check_kind(field, kind)
    return NewEntry(scope, ext, kind, pattern, note, expires, field)


def _check_kind(field: Field, kind: Kind) -> None:
    if field is Field.NAME and kind is not Kind.BLOCK:
        raise ValueError(names.ALLOW_REFUSED)


def _check_columns(columns: Iterable[str], target: Target) -> None:
    names = set(columns)
    if not names & {"number", "pattern"}:
        raise FileError("no number column")
    has_scope = bool(names & set(SCOPE_COLUMNS))
    if target.all_lists and not set(SCOPE_COLUMNS) <= names:
        raise FileError("import --all needs scope, ext and kind columns (an export --all file)")
    if not target.all_lists and has_scope:
        raise FileError("the file has scope/ext/kind columns (an export --all file): use --all")


def _records_csv(stream: Iterable[str], target: Target) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.reader(stream)
    try:
        yield from _rows_csv(reader, target)
    except csv.Error as exc:  # e.g. a stray carriage return inside a field
        raise FileError(f"line {reader.line_num}: not readable as CSV: {exc}") from None


def _rows_csv(reader: Any, target: Target) -> Iterator[tuple[str, dict[str, str]]]:
    header: list[str] | None = None
    line = 0
    for row in reader:
        start, line = line + 1, reader.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            cells = [c.strip().lower() for c in row]
            if "number" in cells or "pattern" in cells:
                header = cells
                _check_columns(header, target)
                continue
            header = ["number", "note"]  # a plain file: number[,note]
            _check_columns(header, target)
        record = dict(zip(header, row, strict=False))
        for key in CSV_TEXT_COLUMNS.intersection(record):
            record[key] = inert.csv_value(record[key])
        yield f"line {start}", record


def _records_json(stream: TextSource, target: Target) -> Iterator[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(stream.read())
    except json.JSONDecodeError as exc:
        raise FileError(f"not JSON: {exc}") from None
    if not isinstance(data, list):
        raise FileError("expected a JSON array of objects")
    checked = False
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            yield f"item {i}", {"number": ""}
            continue
        if not checked:
            _check_columns(item, target)
            checked = True
        yield f"item {i}", {k: "" if v is None else str(v) for k, v in item.items()}


def read_entries(
    stream: TextSource, fmt: str, target: Target, region: str
) -> tuple[list[NewEntry], list[BadRow]]:
    """Every row of the file as an entry, and every bad row with where it is.

    Raises :class:`FileError` when the file as a whole does not fit.
    """
    records = _records_json(stream, target) if fmt == "json" else _records_csv(stream, target)
    rows: list[NewEntry] = []
    bad: list[BadRow] = []
    shared: dict[str, str] = {}
    for where, record in records:
        try:
            rows.append(_row_entry(record, target, region, shared))
        except (InvalidNumber, InvalidInput, ValueError) as exc:
            bad.append(BadRow(where, str(exc)))
    return rows, bad


class CountingLines:
    """Iterate a binary file's lines as text, counting the bytes read (for a progress bar)."""

    def __init__(self, f: IO[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self._f = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[str]:
        for line in self._f:
            if self._on_bytes is not None:
                self._on_bytes(len(line))
            yield line

    def read(self, n: int = -1) -> str:
        return self._f.read(n)


# -- writing ----------------------------------------------------------------------------------
def record(e: ListedEntry, all_lists: bool) -> dict[str, str | None]:
    """One exported entry (the keys of :data:`ALL_COLUMNS` or :data:`LIST_COLUMNS`)."""
    out: dict[str, str | None] = {}
    if all_lists:
        out = {"scope": e.entry.scope.value, "ext": e.entry.ext or "", "kind": e.entry.kind.value}
    out.update(
        number=(NAME_MARK if e.entry.field is Field.NAME else "") + e.entry.pattern,
        note=e.entry.note,
        raw=e.entry.raw,
        expires=iso(e.expires_at),
    )
    return out


class CsvWriter:
    """Export rows as CSV to a text stream, header first."""

    def __init__(self, out: IO[str], all_lists: bool) -> None:
        self.all_lists = all_lists
        self._w = csv.writer(out, lineterminator="\n")
        # csv quotes a field with "\n" but not one with a lone "\r" (not in our line
        # terminator): such a row would not read back. Rows holding one are written quoted.
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self._w.writerow(ALL_COLUMNS if all_lists else LIST_COLUMNS)

    def add(self, e: ListedEntry) -> None:
        out = record(e, self.all_lists)
        for key in _NEUTRALISED:
            value = out.get(key)
            if value:
                out[key] = inert.csv_cell(value)
        row = ["" if v is None else v for v in out.values()]
        (self._quoted if any("\r" in v for v in row) else self._w).writerow(row)


def json_item(e: ListedEntry, all_lists: bool) -> dict[str, Any]:
    return dict(record(e, all_lists))
