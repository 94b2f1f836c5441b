"""``account add``, ``account list``, ``account remove``: the accounts (tenants) of the database.

The ``account`` group itself (``account set``, ``account show``: the settings of the account
``--account`` names) is in :mod:`.settings`. These three are over every account, whatever
``--account`` says: the CLI operator (a shell on the PBX) manages them.
"""

from __future__ import annotations

from typing import Any

import click

from ..ops import accounts as ops
from .base import Ctx, echo, emit_json, table
from .settings import account


def _run_default(obj: Ctx, fn: Any) -> Any:
    """Accounts are managed from the default account (where their audit rows go), so a
    command works whatever ``--account`` names, even one just removed."""
    here = Ctx(obj.database, obj.region, obj.config_path)
    return here.run(lambda s: fn(s, here.actor))


@account.command(name="add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_add(obj: Ctx, name: str, as_json: bool) -> None:
    """Add an account NAME (lowercase letters, digits, . _ -): its own extensions, lists,
    call log, users and tokens. Work in it with callscreen --account NAME ...; the dialplan
    names it: Gosub(callscreen,s,1(${EXTEN},NAME))."""
    data = _run_default(obj, lambda s, a: ops.account_add(s, a, name))
    if as_json:
        emit_json(data)
    else:
        echo(f"added account {data['name']} (not screening until: callscreen --account "
             f"{data['name']} account set --enable)")  # fmt: skip


@account.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_list(obj: Ctx, as_json: bool) -> None:
    """Every account with its extension and user counts."""
    data = _run_default(obj, ops.account_list)
    if as_json:
        emit_json(data)
        return
    rows = [
        [a["name"], str(a["id"]), str(a["extensions"]), str(a["users"]), a["created"] or ""]
        for a in data
    ]
    table("accounts", ["name", "id", "extensions", "users", "created"], rows)


@account.command(name="remove")
@click.argument("name")
@click.option(
    "--force",
    is_flag=True,
    help="Also remove its extensions, lists, call log, audit log, users and their tokens.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def account_remove(obj: Ctx, name: str, force: bool, as_json: bool) -> None:
    """Remove the account NAME; refused while it has extensions or users unless --force. The
    default account cannot be removed."""
    data = _run_default(obj, lambda s, a: ops.account_remove(s, a, name, force=force))
    if as_json:
        emit_json(data)
    else:
        echo(f"removed account {data['name']} ({data['extensions']} extensions, "
             f"{data['users']} users)")  # fmt: skip
