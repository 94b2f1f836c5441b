"""Who is asking: a password login, a portal session, an API token.

- Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` defaults), off the event
  loop (a hash costs tens of milliseconds and 64 MiB by design). A login whose stored hash was
  made with weaker parameters is rehashed.
- Session cookies and API tokens are ``secrets.token_urlsafe(32)`` (256 bits); the database
  holds only their SHA-256, so a copy of it gives no working credential. (A fast hash is right
  here: these are random, not guessable like a password.)
- A disabled user's sessions and tokens stop at once: every lookup checks ``disabled``, and
  disabling or a new password also deletes the sessions.
- A login that fails says the same words whether the user is unknown, disabled or the password
  is wrong, and costs the same time (an unknown user is verified against a dummy hash).
  Failed logins are not written to the database (anyone could fill the disk); throttling them
  is the web tier's job.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..db import users as db
from ..db.audit import AuditEntry
from ..db.connection import DEFAULT_ACCOUNT
from ..db.store import Store
from .actor import Actor, Role, Source
from .errors import NotPermitted

#: A portal session lasts 12 hours from login, however active (absolute, not sliding): a
#: stolen cookie is useful for a working day at most, and a user signs in once a day.
SESSION_TTL = 12 * 3600.0

#: The one answer to every failed login.
WRONG_LOGIN = "wrong username or password"

#: A token's ``last_used_at`` is written at most this often (a write per API call would
#: serialize every request on the database's write lock).
TOUCH_EVERY = 60.0

_hasher = PasswordHasher()


def hash_secret(value: str) -> str:
    """SHA-256 hex of a token or a session cookie: what the database stores and looks up."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


async def hash_password(password: str) -> str:
    """An argon2id hash (``$argon2id$...``), computed in a thread."""
    return await asyncio.to_thread(_hasher.hash, password)


@functools.cache
def _dummy_hash() -> str:
    # Made with this hasher's own parameters, so verifying against it costs what a real
    # verification costs.
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Login:
    cookie: str  # the session value to set (only its hash is stored)
    csrf: str  # the token every cookie-authenticated change must send
    actor: Actor
    expires_at: float


def _actor(cred: db.Credential, source: Source, ip: str | None) -> Actor:
    return Actor(
        name=cred.username,
        role=Role(cred.role),
        source=source,
        extensions=cred.extensions,
        user_id=cred.user_id,
        ip=ip,
        account_id=cred.account_id,
        account=cred.account,
        superuser=cred.superuser,
    )


async def login(
    store: Store,
    username: str,
    password: str,
    *,
    ip: str | None,
    source: Source = Source.PORTAL,
    ttl: float = SESSION_TTL,
    account: str = DEFAULT_ACCOUNT,
) -> Login:
    """Check a password and start a session; raise ``NotPermitted(WRONG_LOGIN)`` otherwise.

    Usernames are unique per account: ``account`` (a name; "" is the default account) says
    whose ``username`` this is. An unknown account is answered like a wrong password, after
    the same work."""
    await asyncio.to_thread(_dummy_hash)  # made once (in a thread), before timing matters
    account = account or DEFAULT_ACCOUNT
    account_id = await store.account_id_of(account)
    store = store.scoped(account_id or 0, account)  # id 0: no account, no user
    found = await db.password_hash(store, username)
    hashed = found[1] if found else _dummy_hash()
    ok = await asyncio.to_thread(_verify, hashed, password)
    if found is None or found[2] or not ok:
        raise NotPermitted(WRONG_LOGIN)
    user_id = found[0]
    if _hasher.check_needs_rehash(hashed):
        await db.rehash_password(store, user_id, await hash_password(password))
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = time.time() + ttl
    user = await db.find_user(store, username)
    if user is None:  # removed between the two reads
        raise NotPermitted(WRONG_LOGIN)
    entry = AuditEntry(
        actor=user.username,
        source=source.value,
        action="user.login",
        target=f"user:{user.username}",
        ip=ip,
    )
    await db.insert_session(store, hash_secret(cookie), user_id, csrf, expires_at, ip, entry)
    actor = Actor(
        name=user.username,
        role=Role(user.role),
        source=source,
        extensions=frozenset(user.extensions),
        user_id=user_id,
        ip=ip,
        account_id=store.account_id,
        account=store.account,
        superuser=user.superuser,
    )
    return Login(cookie=cookie, csrf=csrf, actor=actor, expires_at=expires_at)


async def session_actor(
    store: Store, cookie: str, *, ip: str | None, source: Source = Source.PORTAL
) -> tuple[Actor, str] | None:
    """(actor, csrf) for a live session cookie; None if unknown, expired or the user is
    disabled."""
    if not cookie:
        return None
    cred = await db.session_credential(store, hash_secret(cookie), time.time())
    return None if cred is None else (_actor(cred, source, ip), cred.csrf)


async def logout(store: Store, cookie: str) -> None:
    """End a session (unknown or expired cookies: nothing to do)."""
    if cookie:
        await db.delete_session(store, hash_secret(cookie))


async def token_actor(store: Store, token: str, *, ip: str | None) -> Actor | None:
    """The actor behind an API token; None if unknown, expired or the user is disabled."""
    if not token:
        return None
    now = time.time()
    cred = await db.token_credential(store, hash_secret(token), now)
    if cred is None:
        return None
    if cred.last_used_at is None or now - cred.last_used_at >= TOUCH_EVERY:
        await db.touch_token(store, cred.token_id, now)
    return _actor(cred, Source.API, ip)
