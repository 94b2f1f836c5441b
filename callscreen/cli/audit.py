"""``audit``: who changed what, from where (the CLI, the API, the portal, a phone), newest first."""

from __future__ import annotations

import json
from typing import Any

import click

from ..ops import settings as ops
from ..timeutil import parse_since
from .base import Ctx, cli, emit_json, parsed, table

_COLUMNS = ["time", "who", "from", "action", "target", "before", "after"]


def _value(v: Any) -> str:
    """A before/after value on one line (JSON, compact); "" when there is none."""
    return "" if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)


def _row(r: dict[str, Any]) -> list[str]:
    where = r["source"] + (f" {r['ip']}" if r["ip"] else "")
    return [
        r["time"],
        r["actor"],
        where,
        r["action"],
        r["target"],
        _value(r["before"]),
        _value(r["after"]),
    ]


@cli.command(name="audit")
@click.option(
    "--since", metavar="WHEN", help="Only changes since then: 1h, 7d, or a date 2026-11-01 (UTC)."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Rows to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def audit(obj: Ctx, since: str | None, limit: int, as_json: bool) -> None:
    """The audit log, newest first: every change to a list or a setting, who made it (a user,
    or the OS user for the CLI), from where (cli, api, portal, phone; the client address), and
    the values before and after. Every value is shown as text, inertly."""
    since_ts = parsed(parse_since, since, "--since")
    rows = obj.run(lambda s: ops.audit_list(s, obj.actor, since=since_ts, limit=limit))
    if as_json:
        emit_json(rows)
        return
    table("audit log (newest first)", _COLUMNS, [_row(r) for r in rows])
