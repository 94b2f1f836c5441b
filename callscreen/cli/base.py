"""The root command, the shared helpers, and the entry point.

Errors the user can fix come out as one line on stderr: exit 2 for bad input (nothing written),
exit 1 for a failure of the store or the server.

Everything printed here may hold text from outside (a caller ID, a note, a file's contents):
tables print cells as :class:`rich.text.Text` (never read as markup) escaped by
:func:`callscreen.inert.text`, plain lines and error lines go through :func:`echo` and
:func:`main` (escaped the same way), and JSON is ASCII (``\\uXXXX`` for everything else), so
it holds no control or bidi character and parses back to the exact values.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from click.core import ParameterSource

from .. import __version__, config, inert
from ..db import url
from ..db.connection import DEFAULT_ACCOUNT
from ..db.errors import InvalidInput, StoreError
from ..db.schema import DEFAULT_DB
from ..db.store import Store, check_ext
from ..db.url import Database
from ..numbers import DEFAULT_REGION, valid_region
from ..ops.actor import Actor
from ..ops.errors import NotFound, NotPermitted
from ..policy import Scope

T = TypeVar("T")

#: ctx.meta keys: the config file's ``db`` and ``account`` (kept out of click's default_map,
#: see config.py).
CONFIG_DB = "callscreen.config_db"
CONFIG_ACCOUNT = "callscreen.config_account"


class Ctx:
    def __init__(
        self,
        db: Database,
        region: str,
        config_path: Path | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.database = db  # a SQLite path or a PostgreSQL URL (callscreen.db.url)
        self.region = region
        self.config_path = config_path
        self.account = account  # --account: every command's data is this account's
        self.actor = Actor.cli()  # the OS user: a shell on the PBX is full control

    @property
    def db(self) -> Path:
        """The SQLite file, for what works on a file (backups, doctor, the lock): on PostgreSQL
        those refuse with one line, exit 2."""
        if url.is_postgres(self.database):
            raise click.UsageError(
                f"this command needs a SQLite database file; {url.display(self.database)} is "
                "PostgreSQL"
            )
        return Path(self.database)

    def run(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        """Open the store on ``--account`` (an unknown name: one line, exit 2, nothing
        written), run ``fn`` with it as the CLI operator of that account."""

        async def go() -> T:
            async with await Store.open(self.database, self.account) as store:
                self.actor = self.actor.in_account(store.account_id, store.account)
                return await fn(store)

        return run(go())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; the one place an operation's error becomes the CLI's: bad input, a
    missing thing or a refusal is one line and exit 2 (nothing written), a store failure exit 1."""
    try:
        return asyncio.run(coro)
    except (InvalidInput, NotFound, NotPermitted) as exc:
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def bad(message: str) -> NoReturn:
    raise click.UsageError(message)


def emit_json(data: Any) -> None:
    # ensure_ascii (the default, kept on purpose): C1 and bidi characters come out as \uXXXX.
    click.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=True))


def echo(line: str, *, err: bool = False) -> None:
    """Print a plain line that may hold text from outside, inertly (one line, no control)."""
    click.echo(inert.text(line), err=err)


class JsonArray:
    """A JSON array written one element per line as it comes: no list in memory.

    ``with JsonArray() as out: out.add(item)``; on an error the array is left unclosed.
    """

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> JsonArray:
        return self

    def add(self, item: Any) -> None:
        item_json = json.dumps(item, ensure_ascii=True)  # see emit_json
        sys.stdout.write(("[\n  " if not self.count else ",\n  ") + item_json)
        self.count += 1

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            sys.stdout.write("\n]\n" if self.count else "[]\n")
        sys.stdout.flush()


def cell(value: str) -> Any:
    """A table cell: the text as it is (a rich Text is never parsed as markup), escaped."""
    from rich.text import Text

    return Text(inert.text(value))


def table(title: str | None, columns: list[str], rows: list[list[str]]) -> None:
    """Print a table; every title, header and cell is shown as text (see :func:`cell`)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=None if title is None else cell(title), show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(cell(col), overflow="fold")
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    # Piped (| grep, | less): wide enough that a row stays on one line.
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else 250).print(t)


def scope_of(ext: str | None, account: bool) -> tuple[Scope, str | None]:
    if bool(ext) == account:
        bad("give exactly one of --ext EXT or --account")
    if ext:
        try:
            check_ext(ext)
        except InvalidInput as exc:
            bad(str(exc))
        return Scope.EXTENSION, ext
    return Scope.ACCOUNT, None


def valid_ext(ext: str | None) -> str | None:
    if ext is not None:
        try:
            check_ext(ext)
        except InvalidInput as exc:
            bad(str(exc))
    return ext


def parsed(fn: Callable[[str], T], value: str | None, option: str) -> T | None:
    """Parse an option's text with ``fn`` (a ValueError becomes a one-line usage error)."""
    if value is None:
        return None
    try:
        return fn(value)
    except ValueError as exc:
        bad(f"{option}: {exc}")


def _load_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """Eager: runs before the other options read their defaults, so the file can supply them."""
    if value is None:
        return None
    try:
        cfg = config.load(value)
    except config.ConfigFileError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="--config") from None
    ctx.default_map = {**(ctx.default_map or {}), **config.default_map(cfg)}
    if "db" in cfg:
        ctx.meta[CONFIG_DB] = cfg["db"]
    if "account" in cfg:
        ctx.meta[CONFIG_ACCOUNT] = cfg["account"]
    return value


# -- the group ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callscreen")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=config.ENV,
    default=config.discover,
    is_eager=True,
    callback=_load_config,
    help=f"TOML config file with defaults for the options below, serve and web (env "
    f"{config.ENV}; default: ~/.config/callscreen/callscreen.toml, else "
    f"{config.SYSTEM_CONFIG}, if there).",
)
@click.option(
    "--db",
    envvar="CALLSCREEN_DB",
    default=str(DEFAULT_DB),
    show_default=True,
    metavar="PATH|URL",
    help="SQLite database file (created on first use), or a PostgreSQL database "
    "postgresql://USER@HOST:PORT/NAME (migrated on first use) (env CALLSCREEN_DB).",
)
@click.option(
    "--account",
    envvar="CALLSCREEN_ACCOUNT",
    default=DEFAULT_ACCOUNT,
    show_default=True,
    metavar="NAME",
    help="The account (tenant) every command works on: its settings, lists, call log, stats, "
    "users, tokens and audit log (env CALLSCREEN_ACCOUNT; config key account). Not the "
    "--account flag of block/allow, which means the account-wide list.",
)
@click.option(
    "--region",
    envvar="CALLSCREEN_REGION",
    default=DEFAULT_REGION,
    show_default=True,
    help="Default region for numbers without a country code (env CALLSCREEN_REGION).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, db: str, account: str, region: str) -> None:
    """Call screening for Asterisk: a FastAGI server and the admin commands for its block lists."""
    if not valid_region(region):
        bad(f"unknown region {region!r} (an ISO country code such as US, GB, DE)")
    if ctx.get_parameter_source("db") is ParameterSource.DEFAULT and CONFIG_DB in ctx.meta:
        db = str(ctx.meta[CONFIG_DB])  # the file's db: below --db and CALLSCREEN_DB
    if ctx.get_parameter_source("account") is ParameterSource.DEFAULT:
        account = ctx.meta.get(CONFIG_ACCOUNT, account)  # the file's: below flag and env
    database = url.parse(db)
    if isinstance(database, Path) and database.is_dir():  # (click.Path's dir_okay=False)
        bad(f"--db: {database} is a directory, not a database file")
    ctx.obj = Ctx(database, region.upper(), config_path, account)


# -- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error is one line on stderr (exit 2: bad input, 1: failure)."""
    try:
        # Not standalone: click would print its own multi-line errors. It then *returns* the
        # code of ctx.exit(N) (doctor's failures) instead of exiting.
        code = cli.main(args=argv, prog_name="callscreen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("callscreen: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        message = exc.format_message().splitlines()[0] if exc.format_message() else str(exc)
        click.echo(f"callscreen: error: {inert.text(message)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `callscreen export --all | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
