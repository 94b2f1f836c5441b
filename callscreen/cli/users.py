"""``user`` and ``token``: who may use the portal and the API, and their API tokens.

Thin over :mod:`callscreen.ops.users` with the local operator as the actor (a shell on the PBX
is full control). Passwords come only from stdin (``--password-stdin``), never from an argument
(``ps`` and the shell history would show it), and are never printed.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ..db.store import Store
from ..ops import users as ops
from ..ops.actor import Actor
from ..ops.errors import NotFound, NotPermitted
from .base import Ctx, bad, cli, echo, emit_json, table

T = TypeVar("T")


def _run(obj: Ctx, fn: Callable[[Store, Actor], Awaitable[T]]) -> T:
    """Run an operation as the CLI operator in ``--account``; a refusal is one line and exit 2
    (InvalidInput already is, in :func:`callscreen.cli.base.run`; StoreError exits 1)."""
    try:
        return obj.run(lambda store: fn(store, obj.actor))
    except (NotFound, NotPermitted) as exc:
        bad(str(exc))


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        bad("give the password on stdin with --password-stdin (never as an argument)")
    line = sys.stdin.readline()
    # Strip the line ending only: spaces are part of a password.
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _user_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            u["username"],
            u["role"],
            " ".join(u["extensions"]) or ("all" if u["role"] == "admin" else ""),
            "disabled" if u["disabled"] else "enabled",
            "yes" if u.get("superuser") else "",
            str(u["tokens"]),
            u["created"] or "",
        ]
        for u in items
    ]


_USER_COLUMNS = ["username", "role", "extensions", "status", "superuser", "tokens", "created"]


# -- user --------------------------------------------------------------------------------------
@cli.group()
def user() -> None:
    """Portal and API users: a user manages their own extensions, an admin everything."""


_PW = click.option(
    "--password-stdin", "password_stdin", is_flag=True, help="Read the password from stdin."
)


@user.command(name="add")
@click.argument("username")
@click.option("--ext", "exts", multiple=True, metavar="EXT", help="An extension the user owns.")
@click.option("--admin", is_flag=True, help="An administrator: every extension and the users.")
@click.option(
    "--superuser",
    is_flag=True,
    help="Also manages accounts (add, list, remove) through the API: the hosting provider's "
    "role. Needs --admin.",
)
@_PW
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def user_add(
    obj: Ctx,
    username: str,
    exts: tuple[str, ...],
    admin: bool,
    superuser: bool,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Add a user of --account who owns extensions (--ext, repeatable) or an administrator
    (--admin, optionally --superuser)."""
    password = _password(password_stdin)
    data = _run(
        obj,
        lambda s, a: ops.user_add(
            s, a, username, password, extensions=exts, admin=admin, superuser=superuser
        ),
    )
    if as_json:
        emit_json(data)
    else:
        role = "superuser" if data["superuser"] else data["role"]
        echo(f"added {role} {data['username']} to account {obj.account}")


@user.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def user_list(obj: Ctx, as_json: bool) -> None:
    """Every user with role, extensions, status and token count."""
    data = _run(obj, ops.user_list)
    if as_json:
        emit_json(data)
    else:
        table(None, _USER_COLUMNS, _user_rows(data))


@user.command(name="show")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def user_show(obj: Ctx, username: str, as_json: bool) -> None:
    """One user."""
    data = _run(obj, lambda s, a: ops.user_show(s, a, username))
    if as_json:
        emit_json(data)
    else:
        table(None, _USER_COLUMNS, _user_rows([data]))


@user.command(name="set")
@click.argument("username")
@click.option("--ext", "exts", multiple=True, metavar="EXT", help="Replace the extensions.")
@click.option("--admin/--no-admin", default=None, help="Make or unmake an administrator.")
@click.option(
    "--disable/--enable", "disabled", default=None, help="Stop (or restore) all access at once."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def user_set(
    obj: Ctx,
    username: str,
    exts: tuple[str, ...],
    admin: bool | None,
    disabled: bool | None,
    as_json: bool,
) -> None:
    """Change a user's extensions, role, or disable them (their sessions and tokens stop)."""
    data = _run(
        obj,
        lambda s, a: ops.user_set(
            s, a, username, extensions=exts or None, admin=admin, disabled=disabled
        ),
    )
    if as_json:
        emit_json(data)
    else:
        table(None, _USER_COLUMNS, _user_rows([data]))


@user.command(name="passwd")
@click.argument("username")
@_PW
@click.pass_obj
def user_passwd(obj: Ctx, username: str, password_stdin: bool) -> None:
    """Set a user's password (from stdin); their portal sessions end."""
    password = _password(password_stdin)
    _run(obj, lambda s, a: ops.user_passwd(s, a, username, password))
    echo(f"password changed for {username}")


@user.command(name="remove")
@click.argument("username")
@click.pass_obj
def user_remove(obj: Ctx, username: str) -> None:
    """Remove a user with their tokens and sessions."""
    _run(obj, lambda s, a: ops.user_remove(s, a, username))
    echo(f"removed {username}")


# -- token -------------------------------------------------------------------------------------
_TOKEN_COLUMNS = ["id", "user", "name", "created", "expires", "last used"]


def _token_rows(items: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            str(t["id"]),
            t["user"],
            t["name"],
            t["created"] or "",
            t["expires"] or "never",
            t["last_used"] or "",
        ]
        for t in items
    ]


@cli.group()
def token() -> None:
    """API tokens (Authorization: Bearer TOKEN); only a hash of each is stored."""


@token.command(name="create")
@click.argument("username")
@click.option("--name", default="", help="A label, e.g. what uses the token.")
@click.option("--expires", metavar="DURATION", help="Expire after e.g. 90d (default: never).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the token).")
@click.pass_obj
def token_create(obj: Ctx, username: str, name: str, expires: str | None, as_json: bool) -> None:
    """Create an API token for a user and print it once: it cannot be shown again."""
    secret, row = _run(
        obj, lambda s, a: ops.token_create(s, a, username, name=name, expires=expires)
    )
    if as_json:
        emit_json({"token": secret, **row})
    else:
        click.echo(secret)
        echo(f"token {row['id']} for {row['user']}: shown this once, store it now", err=True)


@token.command(name="list")
@click.argument("username", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def token_list(obj: Ctx, username: str | None, as_json: bool) -> None:
    """The tokens of one user, or of everyone (never the tokens themselves)."""
    data = _run(obj, lambda s, a: ops.token_list(s, a, username))
    if as_json:
        emit_json(data)
    else:
        table(None, _TOKEN_COLUMNS, _token_rows(data))


@token.command(name="revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.pass_obj
def token_revoke(obj: Ctx, token_id: int) -> None:
    """Revoke a token (its ID from token list); it stops working at once."""
    _run(obj, lambda s, a: ops.token_revoke(s, a, token_id))
    echo(f"revoked token {token_id}")
