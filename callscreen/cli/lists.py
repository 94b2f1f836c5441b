"""``block`` and ``allow``: add, remove, list (paged), and ``block last``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import click

from ..db.store import Store
from ..ops import lists as ops
from ..ops.errors import NotFound
from ..policy import Field, Kind, Scope
from ..timeutil import when
from .base import Ctx, JsonArray, cli, echo, emit_json, scope_of, table

#: Rows a table shows unless --limit says otherwise (--json streams everything).
TABLE_LIMIT = 1000


def _expires_cell(e: dict[str, Any]) -> str:
    if e["expires"] is None:
        return ""
    return ("expired " if e["expired"] else "") + str(e["expires"])


_SCOPE_OPTS = [
    click.option("--ext", metavar="EXT", help="The extension's list."),
    click.option("--account", is_flag=True, help="The account-wide list."),
]
_EXPIRY_OPTS = [
    click.option("--for", "for_", metavar="DURATION", help="Temporary: for 90s/15m/12h/30d/2w."),
    click.option("--until", metavar="DATE", help="Temporary: until 2026-12-01[T18:00] (UTC)."),
]


def _name_opt(kind: Kind) -> Callable[[Any], Any]:
    if kind is Kind.BLOCK:
        text = (
            'A caller-name rule instead of numbers (repeat for more): "Scam Likely" (the whole'
            ' name), "V*", "*likely", "*spam*"; case-insensitive.'
        )
    else:
        text = "Refused: a caller name can only be blocked (block add --name)."
    return click.option("--name", "names", multiple=True, metavar="NAME", help=text)


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

    extra = ", or caller names with --name," if kind is Kind.BLOCK else ""
    add_help = f"Add numbers (or prefixes like +1900*){extra} to the {word}."

    @group.command(name="add", help=add_help)
    @_with(_SCOPE_OPTS)
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @_name_opt(kind)
    @click.option("--note", default="", help="A note stored with the entries.")
    @_with(_EXPIRY_OPTS)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def add(
        obj: Ctx,
        ext: str | None,
        account: bool,
        numbers: tuple[str, ...],
        names: tuple[str, ...],
        note: str,
        for_: str | None,
        until: str | None,
        as_json: bool,
    ) -> None:
        scope, ext = scope_of(ext, account)
        c = obj.run(
            lambda s: ops.add(
                s,
                obj.actor,
                scope=scope,
                ext=ext,
                kind=kind,
                numbers=numbers,
                note=note,
                for_=for_,
                until=until,
                region=obj.region,
                names=names,
            )
        )
        if as_json:
            emit_json(
                {"added": [str(p) for p in c.done], "already_listed": [str(p) for p in c.other]}
            )
            return
        where = f"extension {ext}" if ext else "the account"
        until_text = f" until {when(c.expires_at)}" if c.expires_at is not None else ""
        what = "name rule " if c.field is Field.NAME else ""
        for p in c.done:
            echo(f"added {what}{p} ({p.raw}) to the {word} of {where}{until_text}")
        for p in c.other:
            echo(f"already listed: {what}{p} ({p.raw})")

    @group.command(name="remove", help=f"Remove numbers (or --name rules) from the {word}.")
    @_with(_SCOPE_OPTS)
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @_name_opt(kind)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def remove(
        obj: Ctx,
        ext: str | None,
        account: bool,
        numbers: tuple[str, ...],
        names: tuple[str, ...],
        as_json: bool,
    ) -> None:
        scope, ext = scope_of(ext, account)
        c = obj.run(
            lambda s: ops.remove(
                s,
                obj.actor,
                scope=scope,
                ext=ext,
                kind=kind,
                numbers=numbers,
                region=obj.region,
                names=names,
            )
        )
        removed, missing = c.done, c.other
        if as_json:
            emit_json(
                {"removed": [str(p) for p in removed], "not_listed": [str(p) for p in missing]}
            )
            return
        what = "name rule " if c.field is Field.NAME else ""
        for p in removed:
            echo(f"removed {what}{p}")
        for p in missing:
            echo(f"not listed: {what}{p} ({p.raw})", err=True)

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

        page = obj.run(
            lambda s: ops.list_entries(
                s, obj.actor, scope=scope, ext=ext, kind=kind, limit=limit, offset=offset
            )
        )
        entries, total = page["entries"], page["total"]
        title = f"{word} of " + (f"extension {ext}" if ext else "the account")
        table(
            title,
            ["number", "as typed", "note", "added", "expires", "hits", "last hit"],
            [
                [
                    _shown(e),
                    e["raw"],
                    e["note"],
                    e["created"],
                    _expires_cell(e),
                    str(e["hits"]),
                    e["last_hit"] or "",
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

    async def go(s: Store) -> None:
        entries = ops.iter_entries(
            s, obj.actor, scope=scope, ext=ext, kind=kind, limit=limit, offset=offset
        )
        async with contextlib.aclosing(entries) as it:
            with JsonArray() as out:
                async for e in it:
                    out.add(e)

    obj.run(go)


def _shown(e: dict[str, Any]) -> str:
    """The number column: a caller-name rule is marked (``name: scam likely``)."""
    return f"name: {e['pattern']}" if e["field"] == Field.NAME.value else str(e["pattern"])


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

    async def go(s: Store) -> dict[str, Any]:
        try:
            return await ops.block_last(s, obj.actor, extension, note=note, for_=for_, until=until)
        except NotFound as exc:  # nothing to block: exit 1, as it always was
            raise NothingToBlock(str(exc)) from None

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
