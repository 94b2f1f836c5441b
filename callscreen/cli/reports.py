"""``log`` and ``stats``: what the server did, from the call log."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import click

from ..db import reports
from ..db.errors import InvalidInput, StoreError
from ..db.reports import LoggedCall
from ..db.store import Store
from ..ops import retention as ops_retention
from ..timeutil import parse_since, when
from .base import Ctx, JsonArray, bad, cli, echo, emit_json, parsed, table, valid_ext

_SINCE_HELP = "Only calls since then: 1h, 30m, 7d, or a date 2026-11-01[T18:00] (UTC)."


def _call_json(c: LoggedCall) -> dict[str, Any]:
    out = dataclasses.asdict(c)
    out["time"] = when(c.time)
    out["duration"] = round(c.duration, 3)
    return out


def _call_row(c: LoggedCall) -> list[str]:
    return [
        when(c.time),
        c.ext,
        c.caller_e164 or c.caller_raw or "(none)",
        c.caller_name or "",
        c.result,
        c.reason,
        c.treatment or "",
        c.entry or "",
        f"{c.duration:.1f}s",
    ]


_COLUMNS = ["time", "ext", "caller", "name", "result", "reason", "treatment", "entry", "duration"]


def _line(c: LoggedCall) -> str:
    return "  ".join(cell for cell in _call_row(c) if cell)


@cli.group(name="log", invoke_without_command=True)
@click.option("--ext", metavar="EXT", help="Only calls to this extension.")
@click.option(
    "--result", type=click.Choice(["blocked", "allowed"]), help="Only blocked or allowed calls."
)
@click.option("--since", metavar="WHEN", help=_SINCE_HELP)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Calls to show."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new calls as they are logged.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="With --follow: seconds between polls.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with --follow: one per line).")
@click.pass_context
def log_(
    ctx: click.Context,
    ext: str | None,
    result: str | None,
    since: str | None,
    limit: int,
    follow: bool,
    interval: float,
    as_json: bool,
) -> None:
    """The call log, newest call first; --follow tails it (oldest first, then each new call).

    The server writes the log in batches, a quarter of a second apart. ``log prune`` deletes
    old calls.
    """
    if ctx.invoked_subcommand is not None:
        if ext or result or since or follow or as_json or limit != 50:
            bad("give log's options to `log` alone, and prune's after `prune`")
        return
    obj: Ctx = ctx.obj
    valid_ext(ext)
    since_ts = parsed(parse_since, since, "--since")
    res = result.upper() if result else None
    filters: dict[str, Any] = {"ext": ext, "result": res, "since": since_ts}
    try:
        conn = reports.open_db(obj.database)
        try:
            filters["account_id"] = reports.resolve_account(conn, obj.account)
            if follow:
                _follow(conn, filters, limit, interval, as_json)
                return
            calls = reports.recent(conn, limit=limit, **filters)
            if as_json:
                with JsonArray() as out:
                    for c in calls:
                        out.add(_call_json(c))
            else:
                table("call log (newest first)", _COLUMNS, [_call_row(c) for c in calls])
        finally:
            conn.close()
    except InvalidInput as exc:  # no such account
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@log_.command(name="prune")
@click.option(
    "--before",
    required=True,
    metavar="WHEN",
    help="Delete calls older than this: a date 2026-09-01[T18:00] (UTC) or a duration ago (90d).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option(
    "--batch",
    type=click.IntRange(1, ops_retention.MAX_BATCH),
    default=ops_retention.BATCH,
    show_default=True,
    metavar="ROWS",
    help="Rows deleted per transaction (a running server's writes wait at most one batch).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def log_prune(obj: Ctx, before: str, dry_run: bool, batch: int, as_json: bool) -> None:
    """Delete the call log older than --before, in batches, safely beside a running server.

    One audit row (log.prune) records who pruned what. The server also prunes by itself:
    serve --log-retention (default 90d).
    """

    async def go(s: Store) -> dict[str, Any]:
        return await ops_retention.log_prune(s, obj.actor, before, dry_run=dry_run, batch=batch)

    data = obj.run(go)
    if as_json:
        emit_json(data)
        return
    cut = data["before"].replace("T", " ")
    oldest = f" (oldest {data['oldest'].replace('T', ' ')})" if data["oldest"] else ""
    verb = "would delete" if dry_run else "deleted"
    echo(f"{verb} {data['rows']:,} call-log rows older than {cut}{oldest}")


def _follow(conn: Any, filters: dict[str, Any], limit: int, interval: float, as_json: bool) -> None:
    def show(c: LoggedCall) -> None:
        if as_json:
            click.echo(json.dumps(_call_json(c), ensure_ascii=True))  # exact, and ASCII
        else:
            echo(_line(c))

    after = reports.last_id(conn)  # first: a row written meanwhile is printed once, by a poll
    first = [c for c in reports.recent(conn, limit=limit, **filters) if c.id <= after]
    for c in reversed(first):
        show(c)
    try:
        while True:
            time.sleep(interval)
            rows, after = reports.newer(conn, after, **filters)
            for c in rows:
                show(c)
    except KeyboardInterrupt:
        return


@cli.command()
@click.option("--ext", metavar="EXT", help="Only calls to this extension (and its entries).")
@click.option("--since", metavar="WHEN", help=_SINCE_HELP)
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Rows per top list."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(obj: Ctx, ext: str | None, since: str | None, top: int, as_json: bool) -> None:
    """Calls screened, blocked by reason and by treatment, the most blocked numbers, hits per
    entry (with the last one), and the entries that never matched a call."""
    valid_ext(ext)
    since_ts = parsed(parse_since, since, "--since")
    try:
        conn = reports.open_db(obj.database)
        try:
            account_id = reports.resolve_account(conn, obj.account)
            data = reports.stats(conn, account_id=account_id, ext=ext, since=since_ts, top=top)
        finally:
            conn.close()
    except InvalidInput as exc:  # no such account
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    data = {"ext": ext, "since": when(since_ts) or None, **data}
    for item in data["top_blocked_numbers"]:
        item["last"] = when(item["last"])
    for item in data["top_entries"]:
        item["last"] = when(item["last"])
        item["expires"] = when(item["expires"]) or None
    for item in data["never_matched"]["oldest"]:
        item["created"] = when(item["created"])
        item["expires"] = when(item["expires"]) or None
    if as_json:
        emit_json(data)
        return
    _print_stats(data)


def _print_stats(d: dict[str, Any]) -> None:
    scope = f"extension {d['ext']}" if d["ext"] else "all extensions"
    window = f"since {d['since']}" if d["since"] else "all time"
    rows = [["calls screened", f"{d['calls']:,}"], ["allowed", f"{d['allowed']:,}"]]
    rows += [[f"  {k}", f"{v:,}"] for k, v in d["allowed_by_reason"].items()]
    rows.append(["blocked", f"{d['blocked']:,}"])
    rows += [[f"  {k}", f"{v:,}"] for k, v in d["blocked_by_reason"].items()]
    rows += [[f"  treatment {k}", f"{v:,}"] for k, v in d["blocked_by_treatment"].items()]
    table(f"calls, {scope}, {window}", ["", "calls"], rows)
    table(
        "most blocked numbers",
        ["number", "calls", "last"],
        [
            [i["number"] or "(no number)", f"{i['calls']:,}", i["last"]]
            for i in d["top_blocked_numbers"]
        ],
    )
    table(
        f"entries that matched ({d['entries_matched']:,}), most first",
        ["entry", "list", "calls", "last", "all-time hits"],
        [
            [
                i["pattern"] or f"(removed #{i['id']})",
                _list_name(i),
                f"{i['calls']:,}",
                i["last"],
                "" if i["hits_all_time"] is None else f"{i['hits_all_time']:,}",
            ]
            for i in d["top_entries"]
        ],
    )
    never = d["never_matched"]
    table(
        f"entries that never matched a call: {never['count']:,} (oldest first)",
        ["entry", "list", "added", "expires"],
        [[i["pattern"], _list_name(i), i["created"], i["expires"] or ""] for i in never["oldest"]],
    )


def _list_name(i: dict[str, Any]) -> str:
    if i.get("scope") is None:
        return ""
    where = f"ext {i['ext']}" if i["scope"] == "ext" else "account"
    return f"{where} {i['kind']}"
