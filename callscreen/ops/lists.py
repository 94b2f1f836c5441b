"""The block and allow lists of an extension or the account: add, remove, page, block last.

Each change validates everything first (a batch is all or nothing), then asks permission, then
writes the change and its audit row in one store transaction. The words of every refusal are
the CLI's, so the API and the portal say the same thing.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import names as _names
from ..db.audit import AuditEntry
from ..db.errors import InvalidInput
from ..db.store import EntryFilter, ImportResult, ListedEntry, NewEntry, Store, check_ext
from ..numbers import DEFAULT_REGION, InvalidNumber, Pattern, parse_pattern
from ..policy import Field, Kind, Scope
from ..timeutil import parse_duration, parse_time, when
from .actor import Actor, permit_admin, permit_ext
from .errors import NotFound

#: The note ``block last`` stores unless told otherwise.
BLOCK_LAST_NOTE = "blocked with block last"

_NUMBERISH = re.compile(r"^[\s\d+().*/-]*\d[\s\d+().*/-]*$")


def patterns_of(numbers: Sequence[str], region: str) -> list[Pattern]:
    """Parse every number first: one bad number and nothing is written."""
    if not numbers:
        raise InvalidInput("give at least one NUMBER")
    out = []
    for n in numbers:
        try:
            out.append(parse_pattern(n, region))
        except InvalidNumber as exc:
            raise InvalidInput(str(exc)) from None
    return out


def name_patterns(names: Sequence[str], kind: Kind) -> list[Pattern]:
    """Parse every caller-name rule first (block only: a name is easy to fake)."""
    if kind is not Kind.BLOCK:
        raise InvalidInput(_names.ALLOW_REFUSED)
    out = []
    for n in names:
        try:
            rule = _names.parse_rule(n)
        except _names.InvalidName as exc:
            raise InvalidInput(str(exc)) from None
        out.append(Pattern(rule.value, False, rule.raw))
    return out


def _what(
    numbers: Sequence[str], names: Sequence[str], kind: Kind, region: str
) -> tuple[list[Pattern], Field]:
    """The patterns of a change: numbers, or caller-name rules (``--name``), not both."""
    if names:
        if numbers:
            raise InvalidInput("give numbers or --name, not both")
        return name_patterns(names, kind), Field.NAME
    return patterns_of(numbers, region), Field.NUMBER


def _parsed(fn: Any, value: str, option: str) -> float:
    try:
        return float(fn(value))
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}") from None


def expiry_of(for_: str | None, until: str | None) -> float | None:
    """``for_`` 30d / ``until`` DATE -> epoch seconds (whole), or None for a permanent entry."""
    if for_ is not None and until is not None:
        raise InvalidInput("give --for or --until, not both")
    now = time.time()
    if for_ is not None:
        return float(round(now + _parsed(parse_duration, for_, "--for")))
    if until is not None:
        ts = _parsed(parse_time, until, "--until")
        if ts <= now:
            raise InvalidInput(f"--until: {until!r} is in the past")
        return ts
    return None


def _target(actor: Actor, scope: Scope, ext: str | None) -> str:
    """Validate the list named, then permit: the account's lists are an admin's."""
    if scope is Scope.EXTENSION:
        if not ext:
            raise InvalidInput("an extension entry needs an extension")
        check_ext(ext)
        permit_ext(actor, ext)
        return f"ext:{ext}"
    if ext:
        raise InvalidInput("an account entry has no extension")
    permit_admin(actor)
    return "account"


def audit_entry(actor: Actor, action: str, target: str, **kw: Any) -> AuditEntry:
    """The audit row of ``actor``'s change (the store fills in before/after where it knows)."""
    return AuditEntry(
        actor=actor.name,
        source=actor.source.value,
        action=action,
        target=target,
        ip=actor.ip,
        **kw,
    )


def entry_json(e: ListedEntry, now: float | None = None) -> dict[str, Any]:
    """One entry as ``block list --json`` prints it."""
    return {
        "id": e.entry.id,
        "scope": e.entry.scope.value,
        "ext": e.entry.ext,
        "kind": e.entry.kind.value,
        "pattern": e.entry.pattern,
        "value": e.entry.value,
        "prefix": e.entry.prefix,
        "raw": e.entry.raw,
        "field": e.entry.field.value,
        "note": e.entry.note,
        "created": when(e.created_at),
        "hits": e.hits,
        "last_hit": when(e.last_hit) or None,
        "expires": when(e.expires_at) or None,
        "expired": e.expired(now),
    }


@dataclass(frozen=True, slots=True)
class Changed:
    """What a list change did, with the patterns as typed (the CLI prints ``raw``)."""

    done: list[Pattern]  # added or removed
    other: list[Pattern]  # already listed, or not listed
    expires_at: float | None = None
    field: Field = Field.NUMBER  # NAME: the patterns are caller-name rules


async def add(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    numbers: Sequence[str],
    note: str = "",
    for_: str | None = None,
    until: str | None = None,
    region: str = DEFAULT_REGION,
    names: Sequence[str] = (),
) -> Changed:
    """:func:`list_add` with the patterns themselves."""
    patterns, field = _what(numbers, names, kind, region)
    expires = expiry_of(for_, until)
    target = _target(actor, scope, ext)
    added, existing = await store.add_entries(
        scope,
        ext,
        kind,
        patterns,
        note,
        expires_at=expires,
        audit=audit_entry(actor, f"{kind.value}.add", target),
        field=field,
    )
    return Changed(added, existing, expires, field)


async def list_add(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    numbers: Sequence[str],
    note: str = "",
    for_: str | None = None,
    until: str | None = None,
    region: str = DEFAULT_REGION,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """Add numbers, or caller-name rules (``names``, block only), all or nothing ->
    ``{"added": [...], "already_listed": [...]}``."""
    c = await add(
        store,
        actor,
        scope=scope,
        ext=ext,
        kind=kind,
        numbers=numbers,
        note=note,
        for_=for_,
        until=until,
        region=region,
        names=names,
    )
    return {"added": [str(p) for p in c.done], "already_listed": [str(p) for p in c.other]}


async def remove(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    numbers: Sequence[str],
    region: str = DEFAULT_REGION,
    names: Sequence[str] = (),
) -> Changed:
    """:func:`list_remove` with the patterns themselves."""
    patterns, field = _what(numbers, names, kind, region)
    target = _target(actor, scope, ext)
    removed, missing = await store.remove_entries(
        scope,
        ext,
        kind,
        patterns,
        audit=audit_entry(actor, f"{kind.value}.remove", target),
        field=field,
    )
    return Changed(removed, missing, field=field)


async def list_remove(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    numbers: Sequence[str],
    region: str = DEFAULT_REGION,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """Remove numbers (or caller-name rules: ``names``) -> ``{"removed": [...],
    "not_listed": [...]}`` (not listed: no error)."""
    c = await remove(
        store, actor, scope=scope, ext=ext, kind=kind, numbers=numbers, region=region, names=names
    )
    return {"removed": [str(p) for p in c.done], "not_listed": [str(p) for p in c.other]}


def _filter(q: str | None, region: str) -> EntryFilter | None:
    """A number or prefix typed any way -> its normalized value prefix (indexed); other text
    -> a substring of the note or of the number as typed."""
    if q is None or not q.strip():
        return None
    text = q.strip()
    if _NUMBERISH.match(text):
        try:
            return EntryFilter(value_prefix=parse_pattern(text.rstrip("*"), region).value)
        except InvalidNumber:
            if text.startswith("+"):
                return EntryFilter(value_prefix="+" + re.sub(r"\D", "", text))
    return EntryFilter(text=text)


async def list_entries(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    limit: int | None = None,
    offset: int = 0,
    q: str | None = None,
    region: str = DEFAULT_REGION,
    after: int | None = None,
) -> dict[str, Any]:
    """A page of a list in number order -> ``{"total", "limit", "offset", "after", "next",
    "entries"}`` (``total`` counts what ``q`` matches). Reads follow the entries_list index.

    ``after`` (an entry id, e.g. the previous page's ``next``) pages by keyset: every page
    costs the same on a list of a million; ``offset`` steps over the entries before it.
    ``next`` is the id to pass as ``after`` for the following page (None on the last)."""
    if limit is not None and limit < 1:
        raise InvalidInput("limit: expected a number of at least 1")
    if offset < 0:
        raise InvalidInput("offset: expected a number of at least 0")
    if after is not None and offset:
        raise InvalidInput("give offset or after, not both")
    match = _filter(q, region)
    _target(actor, scope, ext)
    page = await store.list_entries(
        scope, ext, kind, limit=limit, offset=offset, match=match, after=after
    )
    total = await store.count_entries(scope, ext, kind, match)
    now = time.time()
    full = limit is not None and len(page) == limit
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "after": after,
        "next": page[-1].entry.id if full and page else None,
        "entries": [entry_json(e, now) for e in page],
    }


async def iter_entries(
    store: Store,
    actor: Actor,
    *,
    scope: Scope,
    ext: str | None,
    kind: Kind,
    limit: int | None = None,
    offset: int = 0,
) -> AsyncGenerator[dict[str, Any], None]:
    """Every entry of a list (or a slice), streamed: a million never sit in memory at once.

    Permission is asked before the first row is read."""
    _target(actor, scope, ext)
    now = time.time()
    entries = store.iter_entries(scope, ext, kind, limit=limit, offset=offset)
    try:
        async for e in entries:
            yield entry_json(e, now)
    finally:
        await entries.aclose()


async def block_last(
    store: Store,
    actor: Actor,
    ext: str,
    *,
    note: str = BLOCK_LAST_NOTE,
    for_: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Block the most recent caller that got through to ``ext`` (from the call log).

    NotFound when no call got through yet, or the last caller had no number."""
    check_ext(ext)
    expires = expiry_of(for_, until)
    permit_ext(actor, ext)
    last = await store.last_caller(ext)
    if last is None:
        raise NotFound(f"no call to extension {ext} got through yet")
    if last.caller_e164 is None:
        who = last.caller_raw or "no caller ID"
        raise NotFound(
            f"the last caller to {ext} ({when(last.time)}) had no number ({who!r}):"
            " nothing to block"
        )
    pattern = Pattern(last.caller_e164, False, last.caller_raw.strip() or last.caller_e164)
    added, _ = await store.add_entries(
        Scope.EXTENSION,
        ext,
        Kind.BLOCK,
        [pattern],
        note,
        expires_at=expires,
        audit=audit_entry(actor, "block.last", f"ext:{ext}"),
    )
    settings = (await store.settings(ext))[1]
    return {
        "ext": ext,
        "number": pattern.value,
        "raw": pattern.raw,
        "call_time": when(last.time),
        "added": bool(added),
        "blocking_on": settings.enabled,
    }


async def import_rows(
    store: Store,
    actor: Actor,
    rows: Iterable[NewEntry],
    *,
    scope: Scope | None,
    ext: str | None,
    kind: Kind | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Add parsed rows (all or nothing; ``dry_run``: count and roll back) with ONE audit row
    holding the counts, not one per number. ``scope`` None: rows of every list (an
    ``export --all`` file), an admin's like the account's lists; ``kind`` (the one list's)
    is recorded with the counts."""
    if scope is None:
        permit_admin(actor)
        target = "all"
    else:
        target = _target(actor, scope, ext)
    return await store.import_rows(
        rows,
        dry_run=dry_run,
        progress=progress,
        audit=audit_entry(actor, "import", target, after={"list": kind.value} if kind else None),
    )
