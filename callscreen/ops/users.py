"""Users, roles and API tokens: who may sign in, which extensions they manage.

A user owns one or more extensions; an administrator manages every extension, the account and
the users (and has no extension rows). Each function validates, then permits, then writes one
transaction with its audit row. Results are the CLI's ``--json`` shapes; no hash ever leaves.

Permissions: user and token administration is for administrators, except that a user may
change their own password, see themselves, and create, list and revoke their own tokens.
Someone else's user or token is answered like a missing one where the question would
otherwise tell a user which names exist.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from ..db import users as db
from ..db.audit import AuditEntry
from ..db.store import Store, check_ext
from ..timeutil import iso, parse_duration
from .actor import ADMIN_ONLY, Actor, Role, permit_accounts, permit_admin
from .auth import hash_password, hash_secret
from .errors import InvalidInput, NotFound, NotPermitted

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU
MAX_TOKEN_NAME = 100


# -- validation --------------------------------------------------------------------------------
def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise InvalidInput(
            f"not a username: {username!r} (1-64 letters, digits, . _ @ -, "
            "starting with a letter or digit)"
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is too short (at least {MIN_PASSWORD} characters)")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is too long (at most {MAX_PASSWORD} characters)")
    return password


def _check_exts(extensions: Sequence[str]) -> list[str]:
    if isinstance(extensions, str):  # a str is a Sequence: "101" would become 1, 0, 1
        extensions = [extensions]
    return sorted({check_ext(e) for e in extensions})


def _role_and_exts(admin: bool, exts: list[str]) -> str:
    if admin and exts:
        raise InvalidInput("give extensions or admin, not both (an administrator manages all)")
    if not admin and not exts:
        raise InvalidInput("a user needs at least one extension (or make them an administrator)")
    return Role.ADMIN.value if admin else Role.USER.value


# -- shapes ------------------------------------------------------------------------------------
def _user_json(u: db.UserRow, *, tokens: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": u.username,
        "role": u.role,
        "extensions": list(u.extensions),
        "disabled": u.disabled,
        "superuser": u.superuser,
        "created": iso(u.created_at),
        "updated": iso(u.updated_at),
    }
    if tokens:
        data["tokens"] = u.tokens
    return data


def _token_json(t: db.TokenRow) -> dict[str, Any]:
    return {
        "id": t.id,
        "user": t.username,
        "name": t.name,
        "created": iso(t.created_at),
        "expires": iso(t.expires_at),
        "last_used": iso(t.last_used_at),
    }


def _entry(actor: Actor, action: str, target: str, before: Any, after: Any) -> AuditEntry:
    return AuditEntry(
        actor=actor.name,
        source=actor.source.value,
        action=action,
        target=target,
        before=before,
        after=after,
        ip=actor.ip,
    )


def _permit_self(actor: Actor, username: str) -> None:
    """An admin for anyone; a user for themselves only (decided before any lookup, so a user
    learns nothing about other names)."""
    if not actor.is_admin and username.casefold() != actor.name.casefold():
        raise NotPermitted(ADMIN_ONLY)


async def _user(store: Store, username: str) -> db.UserRow:
    user = await db.find_user(store, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def _permit_superuser(actor: Actor, user: db.UserRow) -> None:
    """A superuser (who manages accounts) is changed, given a token or removed only by
    themselves, the CLI operator or another superuser: not by an admin of their account, who
    would otherwise take over the provider's role."""
    if user.superuser and user.username.casefold() != actor.name.casefold():
        permit_accounts(actor)


def _enabled_admin(u: db.UserRow) -> bool:
    return u.role == Role.ADMIN.value and not u.disabled


# -- users -------------------------------------------------------------------------------------
async def user_add(
    store: Store,
    actor: Actor,
    username: str,
    password: str,
    *,
    extensions: Sequence[str] = (),
    admin: bool = False,
    superuser: bool = False,
) -> dict[str, Any]:
    """A new user of the store's account. ``superuser`` (an administrator who also manages
    accounts) is made only by the CLI operator or a superuser."""
    check_username(username)
    check_password(password)
    exts = _check_exts(extensions)
    role = _role_and_exts(admin, exts)
    if superuser and not admin:
        raise InvalidInput("only an administrator can be a superuser (add --admin)")
    permit_admin(actor)
    if superuser:
        permit_accounts(actor)
    if await db.find_user(store, username) is not None:
        raise InvalidInput(f"user {username!r} already exists")
    hashed = await hash_password(password)
    after = {"username": username, "role": role, "extensions": exts, "disabled": False}
    if superuser:
        after["superuser"] = True
    await db.insert_user(
        store,
        username,
        hashed,
        role,
        exts,
        _entry(actor, "user.add", f"user:{username}", None, after),
        superuser=superuser,
    )
    return _user_json(await _user(store, username))


async def user_list(store: Store, actor: Actor) -> list[dict[str, Any]]:
    permit_admin(actor)
    return [_user_json(u) for u in await db.list_users(store)]


async def user_show(store: Store, actor: Actor, username: str) -> dict[str, Any]:
    """A user, for an admin or for themselves."""
    _permit_self(actor, username)
    return _user_json(await _user(store, username))


async def user_set(
    store: Store,
    actor: Actor,
    username: str,
    *,
    extensions: Sequence[str] | None = None,
    admin: bool | None = None,
    disabled: bool | None = None,
) -> dict[str, Any]:
    """Change a user's extensions, role or disabled flag. Making a user an admin drops their
    extension rows; demoting an admin needs extensions. The last enabled administrator cannot
    be disabled or demoted."""
    exts = None if extensions is None else _check_exts(extensions)
    if admin and exts:
        raise InvalidInput("give extensions or admin, not both (an administrator manages all)")
    permit_admin(actor)
    user = await _user(store, username)
    _permit_superuser(actor, user)
    role = user.role if admin is None else (Role.ADMIN.value if admin else Role.USER.value)
    final_exts = list(user.extensions) if exts is None else exts
    if role == Role.ADMIN.value:
        if exts:
            raise InvalidInput("an administrator manages every extension: add --no-admin")
        final_exts = []
    else:
        _role_and_exts(False, final_exts)
    before = _user_json(user, tokens=False)
    after = {
        **before,
        "role": role,
        "extensions": final_exts,
        "disabled": user.disabled if disabled is None else disabled,
    }
    after.pop("updated")
    before.pop("updated")
    if after == before:  # nothing to change: no write, no audit row
        return _user_json(user)
    await db.update_user(
        store,
        user.id,
        _entry(actor, "user.set", f"user:{user.username}", before, after),
        role=role if role != user.role else None,
        disabled=disabled,
        extensions=final_exts if list(user.extensions) != final_exts else None,
        was_admin=_enabled_admin(user),
    )
    return _user_json(await _user(store, username))


async def user_passwd(store: Store, actor: Actor, username: str, password: str) -> None:
    """Set a password (an admin for anyone, a user for themselves); the user's sessions end."""
    check_password(password)
    _permit_self(actor, username)
    user = await _user(store, username)
    _permit_superuser(actor, user)
    hashed = await hash_password(password)
    entry = _entry(actor, "user.passwd", f"user:{user.username}", None, None)
    await db.update_user(store, user.id, entry, hashed=hashed)


async def user_remove(store: Store, actor: Actor, username: str) -> None:
    """Remove a user with their tokens and sessions."""
    permit_admin(actor)
    user = await _user(store, username)
    _permit_superuser(actor, user)
    before = _user_json(user)
    before.pop("updated")
    entry = _entry(actor, "user.remove", f"user:{user.username}", before, None)
    await db.delete_user(store, user.id, entry, was_admin=_enabled_admin(user))


# -- tokens ------------------------------------------------------------------------------------
async def token_create(
    store: Store, actor: Actor, username: str, *, name: str = "", expires: str | None = None
) -> tuple[str, dict[str, Any]]:
    """A new API token for ``username``: (the token, shown this once; its listing row)."""
    if len(name) > MAX_TOKEN_NAME:
        raise InvalidInput(f"the token name is too long (at most {MAX_TOKEN_NAME} characters)")
    try:
        ttl = None if expires is None else parse_duration(expires)
    except ValueError as exc:
        raise InvalidInput(f"expires: {exc}") from None
    _permit_self(actor, username)
    user = await _user(store, username)
    _permit_superuser(actor, user)
    if user.disabled:
        raise InvalidInput(f"user {user.username!r} is disabled")
    token = secrets.token_urlsafe(32)
    expires_at = None if ttl is None else time.time() + ttl
    after = {"name": name, "expires": iso(expires_at)}
    row = await db.insert_token(
        store,
        user.id,
        name,
        hash_secret(token),
        expires_at,
        _entry(actor, "token.create", f"user:{user.username}", None, after),
    )
    return token, _token_json(row)


async def token_list(
    store: Store, actor: Actor, username: str | None = None
) -> list[dict[str, Any]]:
    """Tokens (never the tokens themselves): an admin's of anyone (all by default), a user's
    own."""
    if username is None and not actor.is_admin:
        username = actor.name
    if username is None:
        return [_token_json(t) for t in await db.list_tokens(store)]
    _permit_self(actor, username)
    user = await _user(store, username)
    return [_token_json(t) for t in await db.list_tokens(store, user.id)]


async def token_revoke(store: Store, actor: Actor, token_id: int) -> None:
    """Revoke a token at once. Another user's token is "no token" to a non-admin."""
    token = await db.get_token(store, token_id)
    if token is None or (not actor.is_admin and token.user_id != actor.user_id):
        raise NotFound(f"no token {token_id}")
    before = _token_json(token)
    entry = _entry(actor, "token.revoke", f"user:{token.username}", before, None)
    await db.delete_token(store, token_id, entry)
