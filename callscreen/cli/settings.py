"""``ext``, ``account`` and ``check``: settings, and the decision for one caller."""

from __future__ import annotations

from typing import Any

import click

from ..db.errors import InvalidInput, StoreError
from ..db.lookup import Lookup
from ..db.store import Store, check_ext, check_mailbox, check_treatment
from ..numbers import InvalidNumber, is_anonymous, normalize
from ..policy import Decision, ExtensionSettings, Kind, Scope, Treatment
from ..screening import caller_of, decide
from .base import Ctx, bad, cli, emit_json, table

TREATMENTS = [t.value for t in Treatment]


# -- ext ---------------------------------------------------------------------------------------
def _ext_json(s: ExtensionSettings, account_treatment: Treatment) -> dict[str, Any]:
    return {
        "ext": s.ext,
        "enabled": s.enabled,
        "anonymous": "block" if s.block_anonymous else "allow",
        "treatment": (s.treatment or account_treatment).value,
        "treatment_set": s.treatment is not None,
        "mailbox": s.voicemail_box,
    }


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
    try:
        check_ext(extension)
        if mailbox:
            check_mailbox(mailbox)
    except InvalidInput as exc:
        bad(str(exc))

    async def go(s: Store) -> dict[str, Any]:
        settings = await s.set_extension(
            extension,
            enabled=enable,
            block_anonymous=None if anonymous is None else anonymous == "block",
            treatment=check_treatment(treatment) if treatment else None,
            mailbox=mailbox,
        )
        return _ext_json(settings, (await s.account()).treatment)

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
    try:
        check_ext(extension)
    except InvalidInput as exc:
        bad(str(exc))

    async def go(s: Store) -> dict[str, Any]:
        account, settings = await s.settings(extension)
        data = _ext_json(settings, account.treatment)
        data["blocked_numbers"] = await s.count_entries(Scope.EXTENSION, extension, Kind.BLOCK)
        data["allowed_numbers"] = await s.count_entries(Scope.EXTENSION, extension, Kind.ALLOW)
        return data

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

    async def go(s: Store) -> list[dict[str, Any]]:
        treatment = (await s.account()).treatment
        return [_ext_json(e, treatment) for e in await s.extensions()]

    items = obj.run(go)
    if as_json:
        emit_json(items)
    else:
        table("extensions", _EXT_COLUMNS, _ext_rows(items))


# -- account -----------------------------------------------------------------------------------
@cli.group()
def account() -> None:
    """Account-wide blocking: applies to every extension."""


def _account_json(s: Any) -> dict[str, Any]:
    return {
        "enabled": s.enabled,
        "anonymous": "block" if s.block_anonymous else "allow",
        "treatment": s.treatment.value,
    }


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
    settings = obj.run(
        lambda s: s.set_account(
            enabled=enable,
            block_anonymous=None if anonymous is None else anonymous == "block",
            treatment=Treatment(treatment) if treatment else None,
        )
    )
    _show_account(_account_json(settings), as_json)


@account.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_show(obj: Ctx, as_json: bool) -> None:
    """Show the account-wide settings."""
    _show_account(_account_json(obj.run(lambda s: s.account())), as_json)


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(obj: Ctx, extension: str, caller: str, callingpres: str | None, as_json: bool) -> None:
    """Show the decision the server would make for CALLER calling EXT, and why.

    CALLER is a number in any common form, or "anonymous" / "" for no caller ID.
    """
    try:
        check_ext(extension)
        if not is_anonymous(caller, callingpres):
            normalize(caller, obj.region)
    except (InvalidInput, InvalidNumber) as exc:
        bad(str(exc))
    env = {"agi_callerid": caller, "agi_callingpres": callingpres or "0"}
    who = caller_of(env, obj.region)
    try:
        lookup = Lookup(obj.db)
        try:
            settings, decision = decide(lookup, extension, who)
        finally:
            lookup.close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    data = _decision_json(extension, who.raw, who.e164, who.anonymous, settings, decision)
    if as_json:
        emit_json(data)
        return
    rows = [
        ["result", data["result"]],
        ["reason", data["reason"]],
        ["treatment", data["treatment"] or ""],
        ["caller", f"{who.display}" + (" (anonymous)" if who.anonymous else "")],
    ]
    if decision.entry:
        e = decision.entry
        rows.append(
            [
                "matched",
                f"{e.pattern} ({e.raw}) on the "
                f"{'account' if e.scope is Scope.ACCOUNT else 'extension'} {e.kind.value} list",
            ]
        )
    table(f"call to {extension}", ["", ""], rows)


def _decision_json(
    ext: str, raw: str, e164: str | None, anonymous: bool, settings: ExtensionSettings, d: Decision
) -> dict[str, Any]:
    entry = None
    if d.entry is not None:
        entry = {
            "id": d.entry.id,
            "scope": d.entry.scope.value,
            "kind": d.entry.kind.value,
            "pattern": d.entry.pattern,
            "raw": d.entry.raw,
            "note": d.entry.note,
        }
    return {
        "ext": ext,
        "caller": {"raw": raw, "e164": e164, "anonymous": anonymous},
        "result": d.result.value,
        "reason": d.reason.value,
        "treatment": d.treatment.value if d.treatment else None,
        "mailbox": settings.voicemail_box if d.treatment is Treatment.VOICEMAIL else None,
        "entry": entry,
    }
