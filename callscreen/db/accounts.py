"""Accounts (tenants): add, list and remove the accounts of one database.

Every other query of the store is scoped to the store's own account (``store.account_id``);
these are the provider's, over all of them. The audit rows of these changes go to the default
account's log (target ``account:NAME``): the account itself may be gone afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from . import audit as _audit
from .connection import DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_ID, StoreBase
from .errors import Conflict, InvalidInput, UnknownAccount
from .validate import check_account_name


@dataclass(frozen=True, slots=True)
class AccountRow:
    name: str
    id: int
    extensions: int
    users: int
    created_at: float | None  # None: the default account, made before migration 0010


_ACCOUNT_SELECT = (
    "SELECT a.name, a.id, (SELECT count(*) FROM extensions x WHERE x.account_id = a.id), "
    "(SELECT count(*) FROM users u WHERE u.account_id = a.id), a.created_at FROM accounts a "
)


def _row(r: Any) -> AccountRow:
    return AccountRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4])


#: What a forced removal deletes, in this order (users' tokens, sessions and extensions go
#: with the users: ON DELETE CASCADE; entries before list_sizes, whose triggers they fire).
_OWNED = ("entries", "list_sizes", "extensions", "users", "call_log", "audit_log")


class AccountsMixin(StoreBase):
    async def account_list(self) -> list[AccountRow]:
        """Every account, by name, with its extension and user counts."""
        rows = await self._fetchall(_ACCOUNT_SELECT + "ORDER BY a.name")
        return [_row(r) for r in rows]

    async def account_get(self, name: str) -> AccountRow | None:
        rows = await self._fetchall(_ACCOUNT_SELECT + "WHERE a.name = ?", (name,))
        return _row(rows[0]) if rows else None

    async def account_add(self, name: str, *, audit: _audit.AuditEntry | None = None) -> AccountRow:
        """A new account, empty and (like a new database's) not screening until enabled."""
        check_account_name(name)
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO accounts (name, created_at) VALUES (?, ?)", (name, time.time())
                )
                if audit is not None:
                    await _audit.write(db, DEFAULT_ACCOUNT_ID, audit)
        except InvalidInput:
            raise
        except Exception as exc:
            if isinstance(exc, Conflict):
                raise InvalidInput(f"account {name!r} already exists") from None
            raise
        found = await self.account_get(name)
        assert found is not None
        return found

    async def account_remove(
        self, name: str, *, force: bool = False, audit: _audit.AuditEntry | None = None
    ) -> AccountRow:
        """Remove an account; refused while it has extensions or users unless ``force``, which
        deletes them and everything else of the account in the same transaction. The default
        account is never removed. Returns the account as it was."""
        if name == DEFAULT_ACCOUNT:
            raise InvalidInput("the default account cannot be removed")
        try:
            return await self._remove(name, force, audit)
        except _Refused as exc:
            if exc.args[0] is None:
                raise UnknownAccount(name) from None
            raise InvalidInput(str(exc.args[0])) from None

    async def _remove(self, name: str, force: bool, audit: _audit.AuditEntry | None) -> AccountRow:
        async with self._transaction() as db:
            found = await db.fetchone(_ACCOUNT_SELECT + "WHERE a.name = ?", (name,))
            if found is None:
                raise _Refused(None)
            row = _row(found)
            if not force and (row.extensions or row.users):
                raise _Refused(
                    f"account {name!r} has {row.extensions} extension(s) and {row.users} "
                    "user(s): remove them first, or force the removal (--force)"
                )
            for table in _OWNED:
                await db.execute(f"DELETE FROM {table} WHERE account_id = ?", (row.id,))
            await db.execute("DELETE FROM accounts WHERE id = ?", (row.id,))
            if audit is not None:
                after = {"extensions": row.extensions, "users": row.users, "force": force}
                await _audit.write(db, DEFAULT_ACCOUNT_ID, replace(audit, after=after))
        return row


class _Refused(Exception):
    """Raised inside the transaction to roll it back (not a ValueError, which the transaction
    would turn into a StoreError); the caller gets InvalidInput (args[0] None: no such account)."""
