"""``block`` and ``allow``: add, remove, list (paged), and ``block last``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import click

from ..db.store import ListedEntry, Store
from ..numbers import InvalidNumber, Pattern, parse_pattern
from ..policy import Kind, Scope
from ..timeutil import parse_duration, parse_time, when
from .base import Ctx, JsonArray, bad, cli, echo, emit_json, parsed, scope_of, table

#: Rows a table shows unless --limit says otherwise (--json streams everything).
TABLE_LIMIT = 1000


def patterns_of(numbers: tuple[str, ...], region: str) -> list[Pattern]:
    """Parse every number first: one bad number and nothing is written."""
    if not numbers:
        bad("give at least one NUMBER")
    out = []
    for n in numbers:
        try:
            out.append(parse_pattern(n, region))
        except InvalidNumber as exc:
            bad(str(exc))
    return out


def expiry_of(for_: str | None, until: str | None) -> float | None:
    """--for 30d / --until DATE -> epoch seconds (whole), or None for a permanent entry."""
    if for_ is not None and until is not None:
        bad("give --for or --until, not both")
    now = time.time()
    if for_ is not None:
        return float(round(now + (parsed(parse_duration, for_, "--for") or 0)))
    if until is not None:
        ts = parsed(parse_time, until, "--until") or 0.0
        if ts <= now:
            bad(f"--until: {until!r} is in the past")
        return ts
    return None


def entry_json(e: ListedEntry, now: float | None = None) -> dict[str, Any]:
    return {
        "id": e.entry.id,
        "scope": e.entry.scope.value,
        "ext": e.entry.ext,
        "kind": e.entry.kind.value,
        "pattern": e.entry.pattern,
        "value": e.entry.value,
        "prefix": e.entry.prefix,
        "raw": e.entry.raw,
        "note": e.entry.note,
        "created": when(e.created_at),
        "hits": e.hits,
        "last_hit": when(e.last_hit) or None,
        "expires": when(e.expires_at) or None,
        "expired": e.expired(now),
    }


def _expires_cell(e: ListedEntry, now: float) -> str:
    if e.expires_at is None:
        return ""
    return ("expired " if e.expired(now) else "") + when(e.expires_at)


_SCOPE_OPTS = [
    click.option("--ext", metavar="EXT", help="The extension's list."),
    click.option("--account", is_flag=True, help="The account-wide list."),
]
_EXPIRY_OPTS = [
    click.option("--for", "for_", metavar="DURATION", help="Temporary: for 90s/15m/12h/30d/2w."),
    click.option("--until", metavar="DATE", help="Temporary: until 2026-12-01[T18:00] (UTC)."),
]


def _with(opts: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def deco(f: Any) -> Any:
        for opt in reversed(opts):
            f = opt(f)
        return f

    return deco


def _list_group(kind: Kind) -> click.Group:
    word = "block list" if kind is Kind.BLOCK else "allowlist"

    @click.group(name=kind.value, help=f"Manage the {word} of an extension or the account.")
    def group() -> None:
        pass

    @group.command(name="add", help=f"Add numbers (or prefixes like +1900*) to the {word}.")
    @_with(_SCOPE_OPTS)
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @click.option("--note", default="", help="A note stored with the entries.")
    @_with(_EXPIRY_OPTS)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def add(
        obj: Ctx,
        ext: str | None,
        account: bool,
        numbers: tuple[str, ...],
        note: str,
        for_: str | None,
        until: str | None,
        as_json: bool,
    ) -> None:
        scope, ext = scope_of(ext, account)
        patterns = patterns_of(numbers, obj.region)
        expires = expiry_of(for_, until)
        added, existing = obj.run(
            lambda s: s.add_entries(scope, ext, kind, patterns, note, expires_at=expires)
        )
        if as_json:
            emit_json(
                {"added": [str(p) for p in added], "already_listed": [str(p) for p in existing]}
            )
            return
        where = f"extension {ext}" if ext else "the account"
        until_text = f" until {when(expires)}" if expires is not None else ""
        for p in added:
            echo(f"added {p} ({p.raw}) to the {word} of {where}{until_text}")
        for p in existing:
            echo(f"already listed: {p} ({p.raw})")

    @group.command(name="remove", help=f"Remove numbers from the {word}.")
    @_with(_SCOPE_OPTS)
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def remove(
        obj: Ctx, ext: str | None, account: bool, numbers: tuple[str, ...], as_json: bool
    ) -> None:
        scope, ext = scope_of(ext, account)
        patterns = patterns_of(numbers, obj.region)
        removed, missing = obj.run(lambda s: s.remove_entries(scope, ext, kind, patterns))
        if as_json:
            emit_json(
                {"removed": [str(p) for p in removed], "not_listed": [str(p) for p in missing]}
            )
            return
        for p in removed:
            echo(f"removed {p}")
        for p in missing:
            echo(f"not listed: {p} ({p.raw})", err=True)

    @group.command(name="list", help=f"Show the {word} (a page of it: --limit, --offset).")
    @_with(_SCOPE_OPTS)
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        help=f"Entries to show (table default {TABLE_LIMIT}; --json: all, streamed).",
    )
    @click.option("--offset", type=click.IntRange(min=0), default=0, help="Entries to skip.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def list_(
        obj: Ctx, ext: str | None, account: bool, limit: int | None, offset: int, as_json: bool
    ) -> None:
        scope, ext = scope_of(ext, account)
        if as_json:
            _stream_json(obj, scope, ext, kind, limit, offset)
            return
        limit = limit or TABLE_LIMIT

        async def go(s: Store) -> tuple[list[ListedEntry], int]:
            page = await s.list_entries(scope, ext, kind, limit=limit, offset=offset)
            return page, await s.count_entries(scope, ext, kind)

        entries, total = obj.run(go)
        now = time.time()
        title = f"{word} of " + (f"extension {ext}" if ext else "the account")
        table(
            title,
            ["number", "as typed", "note", "added", "expires", "hits", "last hit"],
            [
                [
                    e.entry.pattern,
                    e.entry.raw,
                    e.entry.note,
                    when(e.created_at),
                    _expires_cell(e, now),
                    str(e.hits),
                    when(e.last_hit),
                ]
                for e in entries
            ],
        )
        if offset or len(entries) < total:
            first = offset + 1 if entries else offset
            click.echo(
                f"showing {first}-{offset + len(entries)} of {total:,}"
                " (--offset/--limit for more; --json or export for all)"
            )

    return group


def _stream_json(
    obj: Ctx, scope: Scope, ext: str | None, kind: Kind, limit: int | None, offset: int
) -> None:
    """Print the list as a JSON array, streamed from the database in chunks."""
    now = time.time()

    async def go(s: Store) -> None:
        entries = s.iter_entries(scope, ext, kind, limit=limit, offset=offset)
        async with contextlib.aclosing(entries) as it:
            with JsonArray() as out:
                async for e in it:
                    out.add(entry_json(e, now))

    obj.run(go)


block_group = _list_group(Kind.BLOCK)
cli.add_command(block_group)
cli.add_command(_list_group(Kind.ALLOW))


class NothingToBlock(click.ClickException):
    """No caller to block (none logged, or the last one had no number): exit 1."""


@block_group.command(name="last")
@click.option("--ext", "extension", required=True, metavar="EXT", help="The extension.")
@click.option("--note", default="blocked with block last", help="A note stored with the entry.")
@_with(_EXPIRY_OPTS)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def block_last(
    obj: Ctx, extension: str, note: str, for_: str | None, until: str | None, as_json: bool
) -> None:
    """Block the most recent caller that got through to EXT (from the call log).

    Refuses (exit 1) when the call log has no call to EXT, or when the last caller had no
    number (anonymous or withheld): there is nothing to put on the list.
    """
    scope_of(extension, False)
    expires = expiry_of(for_, until)

    async def go(s: Store) -> dict[str, Any]:
        last = await s.last_caller(extension)
        if last is None:
            raise NothingToBlock(f"no call to extension {extension} got through yet")
        if last.caller_e164 is None:
            who = last.caller_raw or "no caller ID"
            raise NothingToBlock(
                f"the last caller to {extension} ({when(last.time)}) had no number ({who!r}):"
                " nothing to block"
            )
        pattern = Pattern(last.caller_e164, False, last.caller_raw.strip() or last.caller_e164)
        added, _ = await s.add_entries(
            Scope.EXTENSION, extension, Kind.BLOCK, [pattern], note, expires_at=expires
        )
        settings = (await s.settings(extension))[1]
        return {
            "ext": extension,
            "number": pattern.value,
            "raw": pattern.raw,
            "call_time": when(last.time),
            "added": bool(added),
            "blocking_on": settings.enabled,
        }

    data = obj.run(go)
    if as_json:
        emit_json(data)
        return
    state = "added" if data["added"] else "already listed"
    echo(f"{state}: {data['number']} ({data['raw']}, called {data['call_time']})")
    if not data["blocking_on"]:
        click.echo(
            f"note: blocking is off for {extension}: callscreen ext set {extension} --enable",
            err=True,
        )
