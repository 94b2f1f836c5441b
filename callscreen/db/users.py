"""The SQL for users, their extensions, API tokens and portal sessions.

Kept here so the operations (:mod:`callscreen.ops.users`, :mod:`callscreen.ops.auth`) hold no
SQL. Every change runs in one ``Store._transaction()`` with its audit row (when it has one), so
a change and its record commit together. Credentials arrive here already hashed: this module
never sees a password, a token or a cookie value.

A user's extensions are folded into one column with ``group_concat`` (PostgreSQL:
``string_agg``; an extension never holds a comma, see ``store.check_ext``), so a session or
token lookup is one indexed read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import audit
from .backends import Conn, Dialect
from .errors import Conflict, InvalidInput
from .store import Store

LAST_ADMIN = "the last enabled administrator cannot be disabled, demoted or removed"


class _Refused(Exception):
    """Raised inside a transaction to roll it back; re-raised outside as InvalidInput (the
    transaction turns a ValueError, which InvalidInput is, into a StoreError)."""


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    role: str  # user, admin
    disabled: bool
    created_at: float
    updated_at: float
    extensions: tuple[str, ...]
    tokens: int = 0
    superuser: bool = False  # the provider's role: manages accounts (migration 0010)


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    user_id: int
    username: str
    name: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class Credential:
    """Who a session or a token belongs to, as one lookup returns it."""

    user_id: int
    username: str
    role: str
    extensions: frozenset[str]
    csrf: str = ""  # sessions only
    token_id: int = 0  # tokens only
    last_used_at: float | None = None
    account_id: int = 1  # the user's account (id and name)
    account: str = "default"
    superuser: bool = False


def _exts(joined: str | None) -> tuple[str, ...]:
    return tuple(sorted(joined.split(","))) if joined else ()


def _user_exts(d: Dialect) -> str:
    """A user's extensions in one column (u: the users row)."""
    return f"(SELECT {d.group_concat('ext')} FROM user_extensions e WHERE e.user_id = u.id)"


@cache
def _user_select(d: Dialect) -> str:
    return (
        "SELECT u.id, u.username, u.role, u.disabled, u.created_at, u.updated_at, "
        f"{_user_exts(d)}, "
        "(SELECT count(*) FROM tokens t WHERE t.user_id = u.id), u.superuser FROM users u "
    )


def _user(r: Sequence[Any]) -> UserRow:
    id_, name, role, disabled, created, updated, exts, tokens, superuser = r
    return UserRow(
        int(id_),
        str(name),
        str(role),
        bool(disabled),
        created,
        updated,
        _exts(exts),
        int(tokens),
        bool(superuser),
    )


# -- users -------------------------------------------------------------------------------------
async def find_user(store: Store, username: str) -> UserRow | None:
    """The user named ``username`` (case-insensitive), or None."""
    d = store.dialect
    rows = await store._fetchall(
        _user_select(d) + f"WHERE u.account_id = ? AND {d.ci_eq('u.username')}",
        (store.account_id, username),
    )
    return _user(rows[0]) if rows else None


async def list_users(store: Store) -> list[UserRow]:
    d = store.dialect
    rows = await store._fetchall(
        _user_select(d) + f"WHERE u.account_id = ? ORDER BY {d.ci_order('u.username')}",
        (store.account_id,),
    )
    return [_user(r) for r in rows]


async def password_hash(store: Store, username: str) -> tuple[int, str, bool] | None:
    """(user id, argon2 hash, disabled) for a login, or None for an unknown username."""
    rows = await store._fetchall(
        "SELECT id, password_hash, disabled FROM users WHERE account_id = ? AND "
        + store.dialect.ci_eq("username"),
        (store.account_id, username),
    )
    return (int(rows[0][0]), str(rows[0][1]), bool(rows[0][2])) if rows else None


async def _guard_last_admin(db: Conn, account_id: int) -> None:
    """Inside the change's transaction (called when the change touches an enabled admin):
    refuse, and so roll back, a change that leaves the account without an enabled
    administrator; only a shell on the PBX could then manage users again."""
    row = await db.fetchone(
        "SELECT count(*) FROM users WHERE account_id = ? AND role = 'admin' AND disabled = 0",
        (account_id,),
    )
    if not row or not row[0]:
        raise _Refused(LAST_ADMIN)


async def insert_user(
    store: Store,
    username: str,
    hashed: str,
    role: str,
    extensions: Sequence[str],
    entry: audit.AuditEntry,
    *,
    superuser: bool = False,
) -> None:
    now = time.time()
    try:
        async with store._transaction() as db:
            try:
                user_id = await db.insert(
                    "INSERT INTO users (account_id, username, password_hash, role, created_at, "
                    "updated_at, superuser) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (store.account_id, username, hashed, role, now, now, int(superuser)),
                )
            except Conflict:  # added by someone else since the check
                raise _Refused(f"user {username!r} already exists") from None
            await db.executemany(
                "INSERT INTO user_extensions (user_id, ext) VALUES (?, ?)",
                [(user_id, e) for e in extensions],
            )
            await audit.write(db, store.account_id, entry)
    except _Refused as exc:
        raise InvalidInput(str(exc)) from None


async def update_user(
    store: Store,
    user_id: int,
    entry: audit.AuditEntry,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    extensions: Sequence[str] | None = None,
    hashed: str | None = None,
    was_admin: bool = False,
) -> None:
    """Change a user (``was_admin``: an enabled administrator until now). Disabling or a new
    password ends the user's sessions in the same transaction (their tokens stop at the next
    lookup, which checks ``disabled``)."""
    values: dict[str, Any] = {}
    if role is not None:
        values["role"] = role
    if disabled is not None:
        values["disabled"] = int(disabled)
    if hashed is not None:
        values["password_hash"] = hashed
    try:
        await _update(store, user_id, entry, values, extensions, disabled, hashed, was_admin)
    except _Refused as exc:
        raise InvalidInput(str(exc)) from None


async def _update(
    store: Store,
    user_id: int,
    entry: audit.AuditEntry,
    values: dict[str, Any],
    extensions: Sequence[str] | None,
    disabled: bool | None,
    hashed: str | None,
    was_admin: bool,
) -> None:
    role = values.get("role")
    async with store._transaction() as db:
        cols = "".join(f"{k} = ?, " for k in values)
        await db.execute(
            f"UPDATE users SET {cols}updated_at = ? WHERE id = ? AND account_id = ?",
            (*values.values(), time.time(), user_id, store.account_id),
        )
        if extensions is not None:
            await db.execute("DELETE FROM user_extensions WHERE user_id = ?", (user_id,))
            await db.executemany(
                "INSERT INTO user_extensions (user_id, ext) VALUES (?, ?)",
                [(user_id, e) for e in extensions],
            )
        if disabled or hashed is not None:
            await db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        if was_admin and (role == "user" or disabled):
            await _guard_last_admin(db, store.account_id)
        await audit.write(db, store.account_id, entry)


async def rehash_password(store: Store, user_id: int, hashed: str) -> None:
    """Store a stronger hash of the same password (argon2 parameters grew): no audit row,
    sessions kept, nothing a person changed."""
    async with store._transaction() as db:
        await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hashed, user_id))


async def delete_user(
    store: Store, user_id: int, entry: audit.AuditEntry, *, was_admin: bool = False
) -> None:
    """Remove a user; their extensions, tokens and sessions go with them (ON DELETE CASCADE)."""
    try:
        async with store._transaction() as db:
            await db.execute(
                "DELETE FROM users WHERE id = ? AND account_id = ?", (user_id, store.account_id)
            )
            if was_admin:
                await _guard_last_admin(db, store.account_id)
            await audit.write(db, store.account_id, entry)
    except _Refused as exc:
        raise InvalidInput(str(exc)) from None


#: The columns of a credential that say whose it is: the account (id, name), the superuser flag.
_WHOSE = "u.account_id, a.name, u.superuser"


# -- tokens ------------------------------------------------------------------------------------
_TOKEN_SELECT = (
    "SELECT t.id, t.user_id, u.username, t.name, t.created_at, t.expires_at, t.last_used_at "
    "FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.account_id = ? "
)


def _token(r: Sequence[Any]) -> TokenRow:
    return TokenRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5], r[6])


async def insert_token(
    store: Store,
    user_id: int,
    name: str,
    hashed: str,
    expires_at: float | None,
    entry: audit.AuditEntry,
) -> TokenRow:
    async with store._transaction() as db:
        token_id = await db.insert(
            "INSERT INTO tokens (user_id, name, hash, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (user_id, name, hashed, time.time(), expires_at),
        )
        await audit.write(db, store.account_id, entry)
    found = await get_token(store, token_id)
    assert found is not None
    return found


async def list_tokens(store: Store, user_id: int | None = None) -> list[TokenRow]:
    if user_id is None:
        rows = await store._fetchall(_TOKEN_SELECT + "ORDER BY t.id", (store.account_id,))
    else:
        rows = await store._fetchall(
            _TOKEN_SELECT + "AND t.user_id = ? ORDER BY t.id", (store.account_id, user_id)
        )
    return [_token(r) for r in rows]


async def get_token(store: Store, token_id: int) -> TokenRow | None:
    rows = await store._fetchall(_TOKEN_SELECT + "AND t.id = ?", (store.account_id, token_id))
    return _token(rows[0]) if rows else None


async def delete_token(store: Store, token_id: int, entry: audit.AuditEntry) -> None:
    async with store._transaction() as db:
        await db.execute(
            "DELETE FROM tokens WHERE id = ? AND user_id IN "
            "(SELECT id FROM users WHERE account_id = ?)",
            (token_id, store.account_id),
        )
        await audit.write(db, store.account_id, entry)


async def token_credential(store: Store, hashed: str, now: float) -> Credential | None:
    """The enabled user behind an unexpired token: one indexed read (tokens.hash is UNIQUE)."""
    rows = await store._fetchall(
        "SELECT t.id, u.id, u.username, u.role, t.last_used_at, "
        f"{_user_exts(store.dialect)}, {_WHOSE} FROM tokens t JOIN users u ON u.id = t.user_id "
        "JOIN accounts a ON a.id = u.account_id "
        "WHERE t.hash = ? AND u.disabled = 0 AND (t.expires_at IS NULL OR t.expires_at > ?)",
        (hashed, now),
    )
    if not rows:
        return None
    tid, uid, name, role, used, exts, account_id, account, superuser = rows[0]
    return Credential(
        int(uid),
        str(name),
        str(role),
        frozenset(_exts(exts)),
        token_id=int(tid),
        last_used_at=used,
        account_id=int(account_id),
        account=str(account),
        superuser=bool(superuser),
    )


async def touch_token(store: Store, token_id: int, now: float) -> None:
    async with store._transaction() as db:
        await db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", (now, token_id))


# -- sessions ----------------------------------------------------------------------------------
async def insert_session(
    store: Store,
    hashed: str,
    user_id: int,
    csrf: str,
    expires_at: float,
    ip: str | None,
    entry: audit.AuditEntry | None = None,
) -> None:
    now = time.time()
    async with store._transaction() as db:
        # Expired sessions are dropped as new ones start: the table stays small without a job.
        await db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        await db.execute(
            "INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at, ip) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (hashed, user_id, csrf, now, expires_at, ip),
        )
        if entry is not None:
            await audit.write(db, store.account_id, entry)


async def session_credential(store: Store, hashed: str, now: float) -> Credential | None:
    """The enabled user behind an unexpired session: one indexed read (sessions.hash is the
    primary key)."""
    rows = await store._fetchall(
        "SELECT u.id, u.username, u.role, s.csrf, "
        f"{_user_exts(store.dialect)}, {_WHOSE} FROM sessions s JOIN users u ON u.id = s.user_id "
        "JOIN accounts a ON a.id = u.account_id "
        "WHERE s.hash = ? AND s.expires_at > ? AND u.disabled = 0",
        (hashed, now),
    )
    if not rows:
        return None
    uid, name, role, csrf, exts, account_id, account, superuser = rows[0]
    return Credential(
        int(uid),
        str(name),
        str(role),
        frozenset(_exts(exts)),
        csrf=str(csrf),
        account_id=int(account_id),
        account=str(account),
        superuser=bool(superuser),
    )


async def delete_session(store: Store, hashed: str) -> None:
    async with store._transaction() as db:
        await db.execute("DELETE FROM sessions WHERE hash = ?", (hashed,))
