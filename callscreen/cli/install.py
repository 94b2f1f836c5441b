"""``init``: first-run setup on a PBX, interactive or scripted, safe to run again.

Order matters: every check (flags, the existing config file, the existing database, the
username and password, the target directories, the installation's path) runs before the
first write, so bad input is one line, exit 2, and nothing written. Then only what differs is
written (:mod:`callscreen.install`): a second run prints ``unchanged`` everywhere.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from .. import app, config, install
from ..db import backup
from ..db.errors import StoreError
from ..db.schema import LATEST_VERSION
from ..ops import users as user_ops
from ..ops.errors import InvalidInput
from .base import Ctx, bad, cli, echo
from .users import _password

WEB_PORT = 8080


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT)


def _user_exists(db: Path, username: str) -> bool:
    """Read-only: init must not write before every check passed."""
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'"
        ).fetchone()
        if row is None:  # a database from before users existed (schema < 6)
            return False
        found = conn.execute(  # init's admin is the default account's (id 1)
            "SELECT 1 FROM users WHERE account_id = 1 AND username = ? COLLATE NOCASE",
            (username,),
        ).fetchone()
        return found is not None
    finally:
        conn.close()


def _settings(
    ctx: click.Context, path: Path, db: Path, port: int | None, web_port: int | None
) -> tuple[install.Settings, bool]:
    """The settings to use, and whether the config file exists already (then it wins, and a
    flag that disagrees with it is an error: init never edits an admin's file)."""
    obj: Ctx = ctx.obj
    host = app.DEFAULT_HOST
    if path.exists():
        defaults = install.Settings(db, obj.region, host, app.DEFAULT_PORT, host, WEB_PORT)
        try:
            found = install.Settings.from_file(path, defaults)
        except config.ConfigFileError as exc:
            bad(str(exc))
        for flag, mine, theirs in (
            ("--port", port, found.port),
            ("--web-port", web_port, found.web_port),
        ):
            if mine is not None and mine != theirs:
                bad(f"{path} already sets {flag.strip('-')} {theirs}: edit it, or leave out {flag}")
        return found, True
    for flag, value in (("--port", port), ("--web-port", web_port)):
        if value is not None and not install.port_free(host, value):
            bad(f"{flag} {value}: the port is in use on {host}")
    try:
        port = port or install.pick_port(host, app.DEFAULT_PORT)
        web_port = web_port or install.pick_port(host, WEB_PORT, frozenset({port}))
    except ValueError as exc:
        bad(str(exc))
    if port == web_port:
        bad("--port and --web-port must differ")
    return install.Settings(db, obj.region, host, port, host, web_port), False


@cli.command()
@click.option(
    "--config",
    "config_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file to write or check (default: /etc/callscreen/callscreen.toml with "
    "--systemd, else ~/.config/callscreen/callscreen.toml).",
)
@click.option(
    "--admin",
    "admin_name",
    default="admin",
    show_default=True,
    help="The first administrator (portal and API); kept if it exists.",
)
@click.option("--password-stdin", is_flag=True, help="Read the admin's password from stdin.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="FastAGI port (default: 4573, or the next free one).",
)
@click.option(
    "--web-port",
    type=click.IntRange(1, 65535),
    help="Portal/API port (default: 8080, or the next free one).",
)
@click.option(
    "--install-dialplan",
    "dialplan_dir",
    is_flag=False,
    flag_value="/etc/asterisk",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="[DIR]",
    help="Install the routine as DIR/callscreen.conf (default DIR: /etc/asterisk); "
    "a changed file there is kept as a .bak first.",
)
@click.option(
    "--systemd",
    is_flag=True,
    help="Install the systemd units and the callscreen system user (as root).",
)
@click.pass_context
def init(
    ctx: click.Context,
    config_out: Path | None,
    admin_name: str,
    password_stdin: bool,
    port: int | None,
    web_port: int | None,
    dialplan_dir: Path | None,
    systemd: bool,
) -> None:
    """Set up callscreen: config file, database, first admin, free ports, the dialplan lines
    to paste (or --install-dialplan), the systemd units (--systemd). Running it again changes
    nothing."""
    obj: Ctx = ctx.obj
    root = ctx.find_root()
    db = obj.db if _given(root, "db") or not systemd else install.SYSTEM_DB
    # A config file found by discovery is not "given": --systemd writes the system's.
    path = config_out or (obj.config_path if _given(root, "config_path") else None)
    if path is None:
        path = install.SYSTEM_CONFIG if systemd else install.user_config_path()
    path = path.expanduser().absolute()
    settings, config_exists = _settings(ctx, path, db.absolute(), port, web_port)
    db = settings.db
    interactive = sys.stdin.isatty() and not password_stdin

    # -- every check before the first write ----------------------------------------------------
    if db.exists():
        try:
            backup.inspect(db, LATEST_VERSION)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    if dialplan_dir is not None and not dialplan_dir.is_dir():
        bad(f"--install-dialplan: no directory {dialplan_dir} (is Asterisk installed?)")
    program = install.executable()
    if systemd:
        if str(install.SYSTEM_ROOT) == "/" and os.geteuid() != 0:
            bad("--systemd installs units and a system user: run it as root")
        try:
            install.check_executable(program)
        except ValueError as exc:
            bad(str(exc))
    if interactive and not _given(ctx, "admin_name"):
        admin_name = click.prompt("first admin username", default=admin_name)
    try:
        user_ops.check_username(admin_name)
    except InvalidInput as exc:
        bad(str(exc))
    password = None
    if not _user_exists(db, admin_name):
        if interactive:
            password = click.prompt(
                f"password for {admin_name}", hide_input=True, confirmation_prompt=True
            )
        else:
            password = _password(password_stdin)
        try:
            user_ops.check_password(password)
        except InvalidInput as exc:
            bad(str(exc))

    # -- writes --------------------------------------------------------------------------------
    done: list[tuple[str, str]] = []
    try:
        done.append(
            (
                "config " + str(path),
                "kept" if config_exists else install.write_file(path, settings.toml()),
            )
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    existed = db.exists()
    ctx_db = Ctx(db, settings.region, path)
    if password is not None:
        ctx_db.run(lambda s: user_ops.user_add(s, ctx_db.actor, admin_name, password, admin=True))
    else:
        ctx_db.run(lambda s: _noop())  # create or migrate (with its backup) like any command
    done.append(("database " + str(db), "checked" if existed else "created"))
    done.append((f"admin {admin_name}", "kept" if password is None else "created"))
    installed = None
    if dialplan_dir is not None:
        installed = dialplan_dir / "callscreen.conf"
        try:
            status = install.write_file(installed, install.shipped("callscreen.conf"))
        except OSError as exc:
            raise click.ClickException(f"cannot write {installed}: {exc.strerror}") from None
        done.append(("dialplan " + str(installed), status))
    if systemd:
        try:
            done += install.install_systemd(program, path, db)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise click.ClickException(f"installing the systemd units: {exc}") from None
    for what, status in done:
        echo(f"{status:>9}  {what}")
    echo(
        f"FastAGI on {settings.host}:{settings.port}, portal on "
        f"http://{settings.web_host}:{settings.web_port}/"
    )
    click.echo()
    click.echo(install.dialplan_snippet(settings.port, settings.host, installed), nl=False)
    click.echo()
    if systemd:
        echo("start it: systemctl enable --now callscreen callscreen-web")
    else:
        echo(f"start it: callscreen --config {path} serve   (and ... web for the portal)")
    if path == config.user_config_path() or (
        path == config.SYSTEM_CONFIG and not config.user_config_path().is_file()
    ):
        echo("manage it: callscreen COMMAND (this config file is read by default)")
    else:
        echo(f"manage it: callscreen --config {path} COMMAND (or export CALLSCREEN_CONFIG={path})")


async def _noop() -> None:
    return None
