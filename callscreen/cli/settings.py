"""``ext``, ``account`` and ``check``: settings, and the decision for one caller."""

from __future__ import annotations

from typing import Any

import click

from ..db.store import Store
from ..ops import settings as ops
from ..policy import FALLBACKS, TREATMENTS, UNKNOWN_RULES, Rule, Scope
from .base import Ctx, cli, emit_json, table

_TREATMENTS = [t.value for t in TREATMENTS]
_FALLBACKS = [t.value for t in FALLBACKS]
_ANONYMOUS = click.Choice([r.value for r in Rule])
_UNKNOWN = click.Choice([r.value for r in UNKNOWN_RULES])
_ACCOUNT_WORD = ops.ACCOUNT_DEFAULT


# -- ext ---------------------------------------------------------------------------------------
def _ext_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            i["ext"],
            "on" if i["enabled"] else "off",
            i["anonymous"],
            i["unknown"],
            i["treatment"] + ("" if i["treatment_set"] else " (account default)"),
            i["mailbox"],
        ]
        for i in items
    ]


_EXT_COLUMNS = ["ext", "blocking", "anonymous", "unknown", "treatment", "mailbox"]


def _challenge_cells(i: dict[str, Any]) -> list[str]:
    """remember and fallback, marked when they follow the account."""
    default = " (account default)"
    return [
        i["remember"] + ("" if i.get("remember_set", True) else default),
        i["challenge_fallback"] + ("" if i.get("challenge_fallback_set", True) else default),
    ]


@cli.group()
def ext() -> None:
    """Per-extension settings: the on/off switch, anonymous and unknown callers, the
    challenge, treatment, mailbox."""


@ext.command(name="set")
@click.argument("extension", metavar="EXT")
@click.option("--enable/--disable", default=None, help="Turn call blocking on or off.")
@click.option(
    "--anonymous",
    type=_ANONYMOUS,
    help="Callers without caller ID: let through, block, or challenge (press a digit).",
)
@click.option(
    "--unknown",
    type=_UNKNOWN,
    help="Callers on no list: let through, or challenge (press a digit to get through).",
)
@click.option("--treatment", type=click.Choice(_TREATMENTS), help="What blocked callers get.")
@click.option(
    "--remember",
    metavar="DURATION",
    help="Keep callers who passed the challenge on the allowlist this long (30d; 0: not; "
    "account: the account's).",
)
@click.option(
    "--challenge-fallback",
    type=click.Choice([*_FALLBACKS, _ACCOUNT_WORD]),
    help="What callers who fail the challenge get (account: the account's).",
)
@click.option("--mailbox", metavar="BOX@CONTEXT", help="Voicemail box (default EXT@default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ext_set(
    obj: Ctx,
    extension: str,
    enable: bool | None,
    anonymous: str | None,
    unknown: str | None,
    treatment: str | None,
    remember: str | None,
    challenge_fallback: str | None,
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
            unknown=unknown,
            remember=remember,
            challenge_fallback=challenge_fallback,
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
            [*_EXT_COLUMNS, "remember", "challenge fallback", "blocked", "allowed"],
            [
                [
                    *_ext_rows([data])[0],
                    *_challenge_cells(data),
                    str(data["blocked_numbers"]),
                    str(data["allowed_numbers"]),
                ]
            ],
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
    """Account-wide settings (of --account), and the accounts (tenants) themselves."""


@account.command(name="set")
@click.option("--enable/--disable", default=None, help="Turn account-wide blocking on or off.")
@click.option(
    "--anonymous",
    type=_ANONYMOUS,
    help="Callers without caller ID on every extension: allow, block or challenge (needs "
    "--enable).",
)
@click.option(
    "--unknown",
    type=_UNKNOWN,
    help="Callers on no list, on every extension: allow or challenge (needs --enable).",
)
@click.option(
    "--treatment",
    type=click.Choice(_TREATMENTS),
    help="Default treatment for extensions that set none.",
)
@click.option(
    "--remember",
    metavar="DURATION",
    help="Default: keep callers who passed the challenge allowed this long (30d; 0: not).",
)
@click.option(
    "--challenge-fallback",
    type=click.Choice(_FALLBACKS),
    help="Default: what callers who fail the challenge get.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_set(
    obj: Ctx,
    enable: bool | None,
    anonymous: str | None,
    unknown: str | None,
    treatment: str | None,
    remember: str | None,
    challenge_fallback: str | None,
    as_json: bool,
) -> None:
    """Change the account-wide settings."""
    data = obj.run(
        lambda s: ops.account_set(
            s,
            obj.actor,
            enabled=enable,
            anonymous=anonymous,
            treatment=treatment,
            unknown=unknown,
            remember=remember,
            challenge_fallback=challenge_fallback,
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
            ["blocking", "anonymous", "unknown", "default treatment", "remember", "fallback"],
            [
                [
                    "on" if data["enabled"] else "off",
                    data["anonymous"],
                    data["unknown"],
                    data["treatment"],
                    *_challenge_cells(data),
                ]
            ],
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
    if c := data.get("challenge"):
        failed = c["failed"]
        rows.append(["if the right digit", "ALLOWED challenge-passed"])
        rows.append(["if not", f"BLOCKED challenge-failed {failed['treatment']}"])
        if c["remember"] != "0":
            rows.append(["remember", f"passed callers are allowed for {c['remember']}"])
    table(f"call to {extension}", ["", ""], rows)


def _display(caller: dict[str, Any]) -> str:
    text = caller["e164"] or caller["raw"] or "(none)"
    return str(text) + (" (anonymous)" if caller["anonymous"] else "")
