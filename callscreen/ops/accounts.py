"""Accounts (tenants): add, list and remove the accounts of the database.

Each account has its own extensions, lists, call log, users, tokens and audit log (the store is
scoped to one, see :meth:`callscreen.db.store.Store.scoped`). These operations are over all of
them: the CLI operator (a shell on the PBX) and a superuser (the hosted provider's role) may
use them; an administrator of one account may not. Their audit rows go to the default
account's log, target ``account:NAME`` (a removed account's own log goes with it).
"""

from __future__ import annotations

from typing import Any

from ..db.accounts import AccountRow
from ..db.errors import UnknownAccount
from ..db.store import Store
from ..db.validate import check_account_name
from ..timeutil import iso
from .actor import Actor, permit_accounts
from .errors import NotFound
from .lists import audit_entry


def account_json(a: AccountRow) -> dict[str, Any]:
    """An account as ``account list --json`` prints it."""
    return {
        "name": a.name,
        "id": a.id,
        "extensions": a.extensions,
        "users": a.users,
        "created": iso(a.created_at),
    }


async def account_add(store: Store, actor: Actor, name: str) -> dict[str, Any]:
    """A new, empty account (not screening until ``account set --enabled``)."""
    check_account_name(name)
    permit_accounts(actor)
    entry = audit_entry(actor, "account.add", f"account:{name}", after={"name": name})
    return account_json(await store.account_add(name, audit=entry))


async def account_list(store: Store, actor: Actor) -> list[dict[str, Any]]:
    permit_accounts(actor)
    return [account_json(a) for a in await store.account_list()]


async def account_remove(
    store: Store, actor: Actor, name: str, *, force: bool = False
) -> dict[str, Any]:
    """Remove an account: refused while it has extensions or users unless ``force``, which
    removes them and everything else of the account with it. Never the default account."""
    check_account_name(name)
    permit_accounts(actor)
    entry = audit_entry(actor, "account.remove", f"account:{name}")
    try:
        return account_json(await store.account_remove(name, force=force, audit=entry))
    except UnknownAccount as exc:
        raise NotFound(str(exc)) from None
