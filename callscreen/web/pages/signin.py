"""Signing in and out of the portal, and where a signed-in person lands.

The sign-in form posts the password once; the session is the same cookie the API uses
(``HttpOnly``, ``SameSite=Strict``, 12 hours), throttled by the same table as the API's login.
The form has no session yet, so its CSRF defence is the browser's ``Origin`` header: a post from
another site is refused (no one can be signed in to an account of an attacker's choosing).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...ops import auth as ops_auth
from ...ops.actor import Actor
from ...ops.errors import InvalidInput, NotPermitted
from ..auth import Locked, clear_session_cookie, cookie_name, set_session_cookie, sign_in
from .common import Page, error_page, line, page, read_form, render, signed_in

MAX_USERNAME = 200
MAX_PASSWORD = 1024
MAX_ACCOUNT = 63


def home(actor: Actor) -> str:
    """An admin starts on the account; a user on their (first) extension."""
    if actor.is_admin:
        return "/account"
    if actor.extensions:
        return f"/ext/{sorted(actor.extensions)[0]}"
    return "/welcome"


def _same_origin(request: Request) -> bool:
    """True unless the browser says the form came from another site: ``Sec-Fetch-Site``
    where the browser sends it, else ``Origin`` (a client that sends neither is no browser
    and cannot be made to sign in by a hostile page)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or privacy-stripped origin; refuse it
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def signin_page(request: Request) -> Response:
    found = await signed_in(request)
    if found is not None:
        return RedirectResponse(home(found[0]), status_code=303)
    return render(request, "signin.html", title="Sign in", username="", account="", error="")


async def login(request: Request) -> Response:
    if not _same_origin(request):
        return error_page(request, 403, "Not allowed", "sign-in from another site refused")
    try:
        form = await read_form(request)
    except InvalidInput as exc:
        return render(
            request, "signin.html", 400, title="Sign in", username="", account="", error=line(exc)
        )
    username = form.get("username", "")
    password = form.get("password", "")
    account = form.get("account", "")
    if not isinstance(username, str) or not isinstance(password, str):
        username, password = "", ""
    if not isinstance(account, str):
        account = ""
    username, account = username[:MAX_USERNAME], account.strip().lower()[:MAX_ACCOUNT]
    shown = {"title": "Sign in", "username": username, "account": account}
    try:
        if not username or not password:
            raise NotPermitted("enter your username and password")
        done = await sign_in(request, username, password[:MAX_PASSWORD], account)
    except Locked as exc:
        locked = render(request, "signin.html", 429, error=str(exc), **shown)
        locked.headers["Retry-After"] = str(exc.retry_after)
        return locked
    except NotPermitted as exc:
        return render(request, "signin.html", 400, error=line(exc), **shown)
    response = RedirectResponse(home(done.actor), status_code=303)
    set_session_cookie(response, request, done.cookie)
    return response


async def logout(request: Request) -> Response:
    """Sign out: ends the session in the database (the cookie alone would be a half-measure)."""
    found = await signed_in(request)
    if found is not None:
        form = await read_form(request)
        sent = form.get("csrf", "")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), found[1].encode()):
            return error_page(
                request, 403, "Form expired", "reload the page and sign out again", found[0]
            )
        cookie = request.cookies.get(cookie_name(bool(request.app.state.config.behind_https)))
        await ops_auth.logout(request.app.state.store, cookie or "")
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response, request)
    return response


@page
async def welcome(p: Page) -> Response:
    """A user without an extension yet: nothing to manage until an admin assigns one."""
    return p.render("welcome.html", title="Welcome")


def routes() -> list[Route]:
    return [
        Route("/", signin_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/welcome", welcome, methods=["GET"]),
    ]
