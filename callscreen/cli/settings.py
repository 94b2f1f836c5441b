"""``ext``, ``account`` and ``check``: settings, and the decision for one caller."""

from __future__ import annotations

from typing import Any

import click

from ..db.store import Store
from ..ops import settings as ops
from ..policy import Scope, Treatment
from .base import Ctx, cli, emit_json, table

TREATMENTS = [t.value for t in Treatment]


# -- ext ---------------------------------------------------------------------------------------
def _ext_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            i["ext"],
            "on" if i["enabled"] else "off",
            i["anonymous"],
            i["treatment"] + ("" if i["treatment_set"] else " (account default)"),
            i["mailbox"],
        ]
        for i in items
    ]


_EXT_COLUMNS = ["ext", "blocking", "anonymous", "treatment", "mailbox"]


@cli.group()
def ext() -> None:
    """Per-extension settings: the on/off switch, anonymous callers, treatment, mailbox."""


@ext.command(name="set")
@click.argument("extension", metavar="EXT")
@click.option("--enable/--disable", default=None, help="Turn call blocking on or off.")
@click.option(
    "--anonymous", type=click.Choice(["allow", "block"]), help="Callers without caller ID."
)
@click.option("--treatment", type=click.Choice(TREATMENTS), help="What blocked callers get.")
@click.option("--mailbox", metavar="BOX@CONTEXT", help="Voicemail box (default EXT@default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ext_set(
    obj: Ctx,
    extension: str,
    enable: bool | None,
    anonymous: str | None,
    treatment: str | None,
    mailbox: str | None,
    as_json: bool,
) -> None:
    """Change an extension's call-blocking settings."""

    async def go(s: Store) -> dict[str, Any]:
        return await ops.ext_set(
            s,
            obj.actor,
            extension,
            enabled=enable,
            anonymous=anonymous,
            treatment=treatment,
            mailbox=mailbox,
        )

    data = obj.run(go)
    if as_json:
        emit_json(data)
    else:
        table(None, _EXT_COLUMNS, _ext_rows([data]))


@ext.command(name="show")
@click.argument("extension", metavar="EXT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ext_show(obj: Ctx, extension: str, as_json: bool) -> None:
    """Show an extension's settings (defaults if never configured)."""

    async def go(s: Store) -> dict[str, Any]:
        return await ops.ext_show(s, obj.actor, extension)

    data = obj.run(go)
    if as_json:
        emit_json(data)
    else:
        table(
            None,
            [*_EXT_COLUMNS, "blocked", "allowed"],
            [[*_ext_rows([data])[0], str(data["blocked_numbers"]), str(data["allowed_numbers"])]],
        )


@ext.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ext_list(obj: Ctx, as_json: bool) -> None:
    """List the configured extensions."""

    items = obj.run(lambda s: ops.ext_list(s, obj.actor))
    if as_json:
        emit_json(items)
    else:
        table("extensions", _EXT_COLUMNS, _ext_rows(items))


# -- account -----------------------------------------------------------------------------------
@cli.group()
def account() -> None:
    """Account-wide blocking: applies to every extension."""


@account.command(name="set")
@click.option("--enable/--disable", default=None, help="Turn account-wide blocking on or off.")
@click.option(
    "--anonymous",
    type=click.Choice(["allow", "block"]),
    help="Block callers without caller ID on every extension (needs --enable).",
)
@click.option(
    "--treatment",
    type=click.Choice(TREATMENTS),
    help="Default treatment for extensions that set none.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_set(
    obj: Ctx, enable: bool | None, anonymous: str | None, treatment: str | None, as_json: bool
) -> None:
    """Change the account-wide settings."""
    data = obj.run(
        lambda s: ops.account_set(
            s, obj.actor, enabled=enable, anonymous=anonymous, treatment=treatment
        )
    )
    _show_account(data, as_json)


@account.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_show(obj: Ctx, as_json: bool) -> None:
    """Show the account-wide settings."""
    _show_account(obj.run(lambda s: ops.account_show(s, obj.actor)), as_json)


def _show_account(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(data)
    else:
        table(
            "account",
            ["blocking", "anonymous", "default treatment"],
            [["on" if data["enabled"] else "off", data["anonymous"], data["treatment"]]],
        )


# -- check -------------------------------------------------------------------------------------
@cli.command()
@click.option("--ext", "extension", required=True, metavar="EXT", help="The dialed extension.")
@click.argument("caller", metavar="CALLER")
@click.option(
    "--callingpres",
    default=None,
    metavar="N",
    help="agi_callingpres as Asterisk sends it (e.g. 67: no caller ID).",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help='The caller\'s name (agi_calleridname), for name rules: e.g. "Scam Likely".',
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(
    obj: Ctx,
    extension: str,
    caller: str,
    callingpres: str | None,
    name: str | None,
    as_json: bool,
) -> None:
    """Show the decision the server would make for CALLER calling EXT, and why.

    CALLER is a number in any common form, or "anonymous" / "" for no caller ID.
    """
    try:
        pres: int | None = None if callingpres is None else int(callingpres)
    except ValueError:  # not a number: presentation unknown, as the server reads it
        pres = None
    data = obj.run(
        lambda s: ops.check(
            s, obj.actor, extension, caller, callingpres=pres, region=obj.region, name=name
        )
    )
    if as_json:
        emit_json(data)
        return
    rows = [
        ["result", data["result"]],
        ["reason", data["reason"]],
        ["treatment", data["treatment"] or ""],
        ["caller", _display(data["caller"])],
    ]
    if name is not None:
        rows.append(["name", name])
    if e := data["entry"]:
        where = "account" if e["scope"] == Scope.ACCOUNT.value else "extension"
        what = "name rule " if e["field"] == "name" else ""
        rows.append(
            ["matched", f"{what}{e['pattern']} ({e['raw']}) on the {where} {e['kind']} list"]
        )
    table(f"call to {extension}", ["", ""], rows)


def _display(caller: dict[str, Any]) -> str:
    text = caller["e164"] or caller["raw"] or "(none)"
    return str(text) + (" (anonymous)" if caller["anonymous"] else "")
