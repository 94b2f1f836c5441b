"""A small reader for Asterisk's config format (voicemail.conf, extensions.conf).

What it understands: ``[section]`` headers with template options (``[name](!)``,
``[name](tpl)``), ``key = value`` and ``key => value``, ``;`` comments (``\\;`` is a literal
semicolon), ``;-- ... --;`` block comments, and ``#include`` / ``#tryinclude`` (relative to
the including file; globs allowed; cycles and depth bounded). ``#exec`` is not run.

pyst2's ``asterisk.config`` was the first choice, but it raises ParseError on ``#include``
lines and on template sections, both common in real voicemail.conf files, and leaves the file
open: this reader is the part of it we need, done for those cases.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path

_SECTION = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?\s*$")
_INCLUDE = re.compile(r"^#\s*(include|tryinclude)\s+\"?([^\"]+?)\"?\s*$", re.IGNORECASE)
MAX_DEPTH = 10


class ConfError(ValueError):
    """A file that cannot be read (or a mandatory #include that is missing)."""


@dataclass
class Section:
    name: str
    options: str = ""  # "!" for a template, else the templates it uses
    items: list[tuple[str, str]] = field(default_factory=list)  # (key, value), in order
    lines: list[str] = field(default_factory=list)  # the statements, normalized (for diffs)

    def keys(self) -> set[str]:
        return {k for k, _ in self.items}


def _strip_comment(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def _lines(path: Path, depth: int, seen: set[Path]) -> list[tuple[Path, int, str]]:
    """(file, line number, statement) with comments removed and includes expanded."""
    if depth > MAX_DEPTH:
        raise ConfError(f"{path}: #include nested more than {MAX_DEPTH} deep")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfError(f"cannot read {path}: {exc.strerror or exc}") from None
    out: list[tuple[Path, int, str]] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw
        if in_block:
            end = line.find("--;")
            if end < 0:
                continue
            line, in_block = line[end + 3 :], False
        while (start := line.find(";--")) >= 0:
            end = line.find("--;", start + 3)
            if end < 0:
                line, in_block = line[:start], True
                break
            line = line[:start] + line[end + 3 :]
        stmt = _strip_comment(line)
        if not stmt:
            continue
        if m := _INCLUDE.match(stmt):
            target = (path.parent / m.group(2)).resolve()
            found = sorted(glob.glob(str(target)))
            matches = found or ([] if "*" in str(target) else [str(target)])
            for inc in map(Path, matches):
                if inc in seen:
                    continue
                if not inc.exists():
                    if m.group(1).lower() == "tryinclude":
                        continue
                    raise ConfError(f"{path} line {number}: #include {inc}: no such file")
                out += _lines(inc, depth + 1, seen | {inc})
            continue
        if stmt.startswith("#"):
            continue  # #exec and friends: not run
        out.append((path, number, stmt))
    return out


def read(path: str | Path) -> list[Section]:
    """Every section of the file (includes expanded), in order; repeated names stay apart."""
    path = Path(path).resolve()
    sections: list[Section] = []
    current: Section | None = None
    for _file, _number, stmt in _lines(path, 0, {path}):
        if m := _SECTION.match(stmt):
            current = Section(m.group(1).strip(), (m.group(2) or "").strip())
            sections.append(current)
            continue
        if current is None:
            continue  # statements before the first section: Asterisk ignores them too
        key, sep, value = stmt.partition("=")
        if sep:
            value = value[1:] if value.startswith(">") else value
            key, value = key.strip(), " ".join(value.split())
            current.items.append((key, value))
            current.lines.append(f"{key} => {value}")  # "=", "=>" and spacing: all the same
        else:
            current.lines.append(" ".join(stmt.split()))
    return sections


def by_name(sections: list[Section]) -> dict[str, list[Section]]:
    out: dict[str, list[Section]] = {}
    for s in sections:
        out.setdefault(s.name, []).append(s)
    return out
