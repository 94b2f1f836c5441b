"""Who is asking: a bearer token, or the portal's session cookie (and then its CSRF token).

Only the reading of credentials lives here; checking them (hashes, expiry, a disabled user) is
:mod:`callscreen.ops.auth`, and what the actor may do is decided in ops.

CSRF: a cookie is sent by the browser on any request, including one a hostile page makes, so
every cookie-authenticated unsafe method must also carry ``X-CSRF-Token`` equal to the
session's token (which a hostile page cannot read). A bearer token is never sent by a browser
on its own, so bearer requests need none. ``SameSite=Strict`` and the JSON-only bodies (a form
cannot send ``application/json`` across sites without a CORS preflight, which we never grant)
are further walls, not the only one.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..db.connection import DEFAULT_ACCOUNT
from ..db.store import Store
from ..ops import auth as ops_auth
from ..ops.actor import Actor, Source

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
#: ``__Host-``: the browser keeps it only if Secure, Path=/ and no Domain (no subdomain can
#: plant or read one). Without HTTPS a browser refuses the prefix, hence the plain name.
COOKIE_SECURE = "__Host-callscreen"
COOKIE_PLAIN = "callscreen_session"
#: Longer than any token or session id we issue; longer values are refused unread.
MAX_CREDENTIAL = 512


class Unauthorized(Exception):
    """No credentials, or credentials that do not work (401)."""

    def __init__(self, message: str = "valid credentials required") -> None:
        super().__init__(message)


class CsrfFailed(Exception):
    """A cookie-authenticated change without the session's CSRF token (403)."""


class Locked(Exception):
    """Too many failed sign-ins for this username or address (429, ``Retry-After``)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins; try again later")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Credentials:
    actor: Actor
    cookie: str | None = None  # the session cookie, when that is how the caller signed in
    csrf: str | None = None


def cookie_name(https: bool) -> str:
    return COOKIE_SECURE if https else COOKIE_PLAIN


def client_ip(request: Request) -> str | None:
    """The peer address (uvicorn puts the forwarded one here when told to trust the proxy)."""
    return request.client.host if request.client else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_CREDENTIAL:
        raise Unauthorized("expected Authorization: Bearer TOKEN")
    return token


async def authenticate(request: Request, store: Store, *, https: bool) -> Credentials:
    """The caller's actor, or :class:`Unauthorized`; :class:`CsrfFailed` for a cookie-
    authenticated unsafe request whose ``X-CSRF-Token`` is missing or wrong."""
    ip = client_ip(request)
    token = _bearer(request)
    if token is not None:
        actor = await ops_auth.token_actor(store, token, ip=ip)
        if actor is None:
            raise Unauthorized("invalid or expired token")
        return Credentials(actor)
    cookie = request.cookies.get(cookie_name(https))
    if not cookie or len(cookie) > MAX_CREDENTIAL:
        raise Unauthorized()
    found = await ops_auth.session_actor(store, cookie, ip=ip, source=Source.API)
    if found is None:
        raise Unauthorized("session expired or signed out")
    actor, csrf = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise CsrfFailed("missing or wrong X-CSRF-Token")
    return Credentials(actor, cookie, csrf)


def _throttle_key(username: str, account: str) -> str:
    """The throttle's username: the same user (``alice`` of ``acme``) is throttled however
    it signs in; ``alice`` of another account is another user (no "/" is in either name)."""
    return username if account in ("", DEFAULT_ACCOUNT) else f"{account}/{username}"


async def sign_in(
    request: Request, username: str, password: str, account: str = ""
) -> ops_auth.Login:
    """A password login for the API and the sign-in page alike: throttled per username (of
    ``account``; "" is the default account) and address before the password is even looked
    at. Raises :class:`Locked`, or NotPermitted with the one answer for a wrong, unknown or
    disabled user (and for an unknown account)."""
    state = request.app.state
    ip = client_ip(request)
    key = _throttle_key(username, account)
    verdict = state.throttle.begin(key, ip)
    if verdict.locked_for:
        raise Locked(int(verdict.locked_for) + 1)
    if verdict.delay:
        await asyncio.sleep(verdict.delay)
    login = await ops_auth.login(
        state.store,
        username,
        password,
        ip=ip,
        source=Source.PORTAL,
        ttl=state.config.session_ttl,
        account=account,
    )
    state.throttle.succeeded(key, ip)
    return login


def set_session_cookie(response: Response, request: Request, cookie: str) -> None:
    https = bool(request.app.state.config.behind_https)
    response.set_cookie(
        cookie_name(https),
        cookie,
        max_age=int(request.app.state.config.session_ttl),
        path="/",
        secure=https,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    https = bool(request.app.state.config.behind_https)
    response.delete_cookie(
        cookie_name(https), path="/", secure=https, httponly=True, samesite="strict"
    )
