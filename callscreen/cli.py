"""The ``callscreen`` command: thin click commands over the library.

Errors the user can fix come out as one line on stderr: exit 2 for bad input (nothing written),
exit 1 for a failure of the store or the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from . import __version__, app
from .db.errors import InvalidInput, StoreError
from .db.lookup import Lookup
from .db.schema import DEFAULT_DB
from .db.store import ListedEntry, Store, check_ext, check_mailbox, check_treatment
from .numbers import (
    DEFAULT_REGION,
    InvalidNumber,
    Pattern,
    is_anonymous,
    normalize,
    parse_pattern,
    valid_region,
)
from .policy import Decision, ExtensionSettings, Kind, Scope, Treatment
from .screening import caller_of, decide

T = TypeVar("T")
TREATMENTS = [t.value for t in Treatment]


class Ctx:
    def __init__(self, db: Path, region: str) -> None:
        self.db = db
        self.region = region

    def run(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        async def go() -> T:
            async with await Store.open(self.db) as store:
                return await fn(store)

        return _run(go())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _bad(message: str) -> NoReturn:
    raise click.UsageError(message)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def _table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=True).print(table)


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- the group ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callscreen")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CALLSCREEN_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="SQLite database (env CALLSCREEN_DB). Created on first use.",
)
@click.option(
    "--region",
    envvar="CALLSCREEN_REGION",
    default=DEFAULT_REGION,
    show_default=True,
    help="Default region for numbers without a country code (env CALLSCREEN_REGION).",
)
@click.pass_context
def cli(ctx: click.Context, db: Path, region: str) -> None:
    """Call screening for Asterisk: a FastAGI server and the admin commands for its block lists."""
    if not valid_region(region):
        _bad(f"unknown region {region!r} (an ISO country code such as US, GB, DE)")
    ctx.obj = Ctx(db, region.upper())


# -- serve -------------------------------------------------------------------------------------
@cli.command()
@click.option("--host", default=app.DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=app.DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--allow-from",
    multiple=True,
    metavar="CIDR",
    help="Asterisk addresses allowed to connect; required when --host is not loopback. Repeatable.",
)
@click.option(
    "--torture-max",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds of endless ringing before a tortured call is hung up.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a connection has to send its AGI environment.",
)
@click.option(
    "--max-connections",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections beyond this are closed at once (the call fails open).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="info logs one line per call.",
)
@click.pass_obj
def serve(
    obj: Ctx,
    host: str,
    port: int,
    allow_from: tuple[str, ...],
    torture_max: float,
    header_timeout: float,
    max_connections: int,
    log_level: str,
) -> None:
    """Run the FastAGI screening server until SIGTERM/SIGINT."""
    from .fastagi import parse_networks

    try:
        networks = parse_networks(allow_from)
    except ValueError as exc:
        _bad(f"--allow-from: {exc}")
    config = app.Config(
        db=obj.db,
        host=host,
        port=port,
        region=obj.region,
        torture_max=torture_max,
        header_timeout=header_timeout,
        max_connections=max_connections,
        allow_from=networks,
    )
    try:
        config.check()
    except app.ConfigError as exc:
        _bad(str(exc))
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app.run(config)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


# -- scope options shared by block/allow -------------------------------------------------------
def _scope(ext: str | None, account: bool) -> tuple[Scope, str | None]:
    if bool(ext) == account:
        _bad("give exactly one of --ext EXT or --account")
    if ext:
        try:
            check_ext(ext)
        except InvalidInput as exc:
            _bad(str(exc))
        return Scope.EXTENSION, ext
    return Scope.ACCOUNT, None


def _patterns(numbers: tuple[str, ...], region: str) -> list[Pattern]:
    """Parse every number first: one bad number and nothing is written."""
    if not numbers:
        _bad("give at least one NUMBER")
    out = []
    for n in numbers:
        try:
            out.append(parse_pattern(n, region))
        except InvalidNumber as exc:
            _bad(str(exc))
    return out


def _entry_json(e: ListedEntry) -> dict[str, Any]:
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
        "created": _when(e.created_at),
        "hits": e.hits,
        "last_hit": _when(e.last_hit) or None,
    }


def _list_group(kind: Kind) -> click.Group:
    word = "block list" if kind is Kind.BLOCK else "allowlist"

    @click.group(name=kind.value, help=f"Manage the {word} of an extension or the account.")
    def group() -> None:
        pass

    scope_opts = [
        click.option("--ext", metavar="EXT", help="The extension's list."),
        click.option("--account", is_flag=True, help="The account-wide list."),
    ]

    def with_scope(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(scope_opts):
            f = opt(f)
        return f

    @group.command(name="add", help=f"Add numbers (or prefixes like +1900*) to the {word}.")
    @with_scope
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @click.option("--note", default="", help="A note stored with the entries.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def add(
        obj: Ctx, ext: str | None, account: bool, numbers: tuple[str, ...], note: str, as_json: bool
    ) -> None:
        scope, ext = _scope(ext, account)
        patterns = _patterns(numbers, obj.region)
        added, existing = obj.run(lambda s: s.add_entries(scope, ext, kind, patterns, note))
        if as_json:
            _emit_json(
                {"added": [str(p) for p in added], "already_listed": [str(p) for p in existing]}
            )
            return
        where = f"extension {ext}" if ext else "the account"
        for p in added:
            click.echo(f"added {p} ({p.raw}) to the {word} of {where}")
        for p in existing:
            click.echo(f"already listed: {p} ({p.raw})")

    @group.command(name="remove", help=f"Remove numbers from the {word}.")
    @with_scope
    @click.argument("numbers", nargs=-1, metavar="NUMBER...")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def remove(
        obj: Ctx, ext: str | None, account: bool, numbers: tuple[str, ...], as_json: bool
    ) -> None:
        scope, ext = _scope(ext, account)
        patterns = _patterns(numbers, obj.region)
        removed, missing = obj.run(lambda s: s.remove_entries(scope, ext, kind, patterns))
        if as_json:
            _emit_json(
                {"removed": [str(p) for p in removed], "not_listed": [str(p) for p in missing]}
            )
            return
        for p in removed:
            click.echo(f"removed {p}")
        for p in missing:
            click.echo(f"not listed: {p} ({p.raw})", err=True)

    @group.command(name="list", help=f"Show the {word}.")
    @with_scope
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def list_(obj: Ctx, ext: str | None, account: bool, as_json: bool) -> None:
        scope, ext = _scope(ext, account)
        entries = obj.run(lambda s: s.list_entries(scope, ext, kind))
        if as_json:
            _emit_json([_entry_json(e) for e in entries])
            return
        title = f"{word} of " + (f"extension {ext}" if ext else "the account")
        _table(
            title,
            ["number", "as typed", "note", "added", "hits", "last hit"],
            [
                [
                    e.entry.pattern,
                    e.entry.raw,
                    e.entry.note,
                    _when(e.created_at),
                    str(e.hits),
                    _when(e.last_hit),
                ]
                for e in entries
            ],
        )

    return group


cli.add_command(_list_group(Kind.BLOCK))
cli.add_command(_list_group(Kind.ALLOW))


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
        _bad(str(exc))

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
        _emit_json(data)
    else:
        _table(None, _EXT_COLUMNS, _ext_rows([data]))


@ext.command(name="show")
@click.argument("extension", metavar="EXT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ext_show(obj: Ctx, extension: str, as_json: bool) -> None:
    """Show an extension's settings (defaults if never configured)."""
    try:
        check_ext(extension)
    except InvalidInput as exc:
        _bad(str(exc))

    async def go(s: Store) -> dict[str, Any]:
        account, settings = await s.settings(extension)
        data = _ext_json(settings, account.treatment)
        data["blocked_numbers"] = len(await s.list_entries(Scope.EXTENSION, extension, Kind.BLOCK))
        data["allowed_numbers"] = len(await s.list_entries(Scope.EXTENSION, extension, Kind.ALLOW))
        return data

    data = obj.run(go)
    if as_json:
        _emit_json(data)
    else:
        _table(
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
        _emit_json(items)
    else:
        _table("extensions", _EXT_COLUMNS, _ext_rows(items))


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
        _emit_json(data)
    else:
        _table(
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
        _bad(str(exc))
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
        _emit_json(data)
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
    _table(f"call to {extension}", ["", ""], rows)


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


# -- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error is one line on stderr (exit 2: bad input, 1: failure)."""
    try:
        cli.main(args=argv, prog_name="callscreen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("callscreen: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        message = exc.format_message().splitlines()[0] if exc.format_message() else str(exc)
        click.echo(f"callscreen: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
