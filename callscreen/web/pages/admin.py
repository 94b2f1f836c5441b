"""The administrator's pages: Extensions, Users and Audit.

Like the Blocking page, every change is one small form and one ops call; success comes back
(303) with a one-line confirmation, a refusal comes back (400) with what was typed (never a
password) and ops' words next to the field, and nothing is saved. Whether the actor may is
ops' decision (``permit_admin`` inside each ops function): a user gets ops' 403 page on every
URL here, also for a post whose input is bad, because the page shown with the error is built
from admin-only reads.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ... import inert
from ...ops import settings, users
from ...ops.errors import InvalidInput, NotFound
from .blocking import TREATMENTS
from .common import Page, line, page

#: Audit rows on one page (keyset paging on (time, id): every page costs the same).
AUDIT_PAGE = 100
#: A before/after value longer than this is cut, marked (a big batch names 50 numbers).
MAX_CHANGE = 600
_SEPARATORS = re.compile(r"[\s,]+")


def ext_href(ext: str) -> str:
    """``/ext/EXT`` with EXT escaped (an extension may hold ``#`` or ``+``)."""
    return "/ext/" + quote(ext, safe="")


def split_exts(text: str) -> list[str]:
    """Extensions as typed, "101, 102 103", one by one (ops checks each)."""
    return [e for e in _SEPARATORS.split(text.strip()) if e]


# -- Extensions --------------------------------------------------------------------------------
@page
async def extensions(p: Page) -> Response:
    """The table of extensions; ``?open=EXT`` (the "Open extension" form) goes to its page."""
    rows = await settings.ext_overview(p.store, p.actor)
    typed = p.request.query_params.get("open")
    error = ""
    if typed is not None:
        typed = typed.strip()[:100]
        try:
            state = await settings.ext_show(p.store, p.actor, typed)
        except InvalidInput as exc:
            error = line(exc)
        else:
            return RedirectResponse(ext_href(state["ext"]), status_code=303)
    for r in rows:
        r["href"] = ext_href(r["ext"])
    return p.render(
        "extensions.html",
        400 if error else 200,
        title="Extensions",
        rows=rows,
        treatments={value: label for value, (label, _) in TREATMENTS.items()},
        typed=typed or "",
        error=error,
    )


# -- Users -------------------------------------------------------------------------------------
async def _users(p: Page, status: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("add", {"username": "", "extensions": "", "admin": False})
    ctx.setdefault("add_error", None)  # (field, message)
    ctx.setdefault("row_error", None)  # (username, field, message)
    ctx.setdefault("row_typed", {})  # username -> extensions as typed
    found = await users.user_list(p.store, p.actor)
    for u in found:
        u["href"] = quote(u["username"], safe="")
    return p.render("users.html", status, title="Users", users=found, **ctx)


@page
async def users_page(p: Page) -> Response:
    return await _users(p)


async def _add_field(p: Page, username: str, password: str) -> str:
    """Which field of "Add a user" a refusal is about, asked of ops' own checks in ops'
    order (name, password, an existing name, then the extensions)."""
    checks = (
        ("username", users.check_username, username),
        ("password", users.check_password, password),
    )
    for name, check, value in checks:
        try:
            check(value)
        except InvalidInput:
            return name
    try:
        await users.user_show(p.store, p.actor, username)
    except NotFound:
        return "extensions"
    return "username"  # it exists


@page
async def add_user(p: Page) -> Response:
    username, password = p.field("username").strip(), p.field("password")
    exts, admin = p.field("extensions"), "admin" in p.form
    try:
        await users.user_add(
            p.store, p.actor, username, password, extensions=split_exts(exts), admin=admin
        )
    except InvalidInput as exc:
        where = await _add_field(p, username, password)
        typed = {"username": username, "extensions": exts, "admin": admin}
        return await _users(p, 400, add=typed, add_error=(where, line(exc)))
    return p.done("/users", f"Added user {username}")


def _row_action(name: str, action: Any) -> Any:
    """A POST /users/{name}/... handler: ``action(p, username) -> flash message``; ops'
    refusal is shown on that user's row."""

    @page
    async def endpoint(p: Page) -> Response:
        username = p.request.path_params["name"]
        try:
            message = await action(p, username)
        except InvalidInput as exc:
            typed = {username: p.field("extensions")} if name == "extensions" else {}
            err = (username, name, line(exc))
            return await _users(p, 400, row_error=err, row_typed=typed)
        return p.done("/users", message)

    endpoint.__name__ = f"user_{name}"
    return endpoint


async def _disable(p: Page, username: str) -> str:
    u = await users.user_set(p.store, p.actor, username, disabled=True)
    return f"Disabled {u['username']}"


async def _enable(p: Page, username: str) -> str:
    u = await users.user_set(p.store, p.actor, username, disabled=False)
    return f"Enabled {u['username']}"


async def _password(p: Page, username: str) -> str:
    await users.user_passwd(p.store, p.actor, username, p.field("password"))
    return f"Password set for {username}"


async def _extensions(p: Page, username: str) -> str:
    exts = split_exts(p.field("extensions"))
    u = await users.user_set(p.store, p.actor, username, extensions=exts)
    return f"Saved extensions of {u['username']}"


# -- Audit -------------------------------------------------------------------------------------
def compact(value: Any) -> str:
    """A before/after value as one line of JSON (printed as text by the template)."""
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return inert.bound(text, MAX_CHANGE)


@page
async def audit(p: Page) -> Response:
    raw = p.request.query_params.get("before")
    before = None
    if raw:
        if not raw.isdigit() or len(raw) > 18:
            raise InvalidInput("before: expected an audit row id")
        before = int(raw)
    rows = await settings.audit_list(p.store, p.actor, limit=AUDIT_PAGE + 1, before=before)
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    for r in rows:
        r["before_text"], r["after_text"] = compact(r["before"]), compact(r["after"])
    return p.render(
        "audit.html",
        title="Audit",
        rows=rows,
        next=rows[-1]["id"] if more else None,
        first=before is not None,
    )


def routes() -> list[Route]:
    return [
        Route("/extensions", extensions, methods=["GET"]),
        Route("/users", users_page, methods=["GET"]),
        Route("/users", add_user, methods=["POST"]),
        Route("/users/{name}/disable", _row_action("disable", _disable), methods=["POST"]),
        Route("/users/{name}/enable", _row_action("enable", _enable), methods=["POST"]),
        Route("/users/{name}/password", _row_action("password", _password), methods=["POST"]),
        Route("/users/{name}/extensions", _row_action("extensions", _extensions), methods=["POST"]),
        Route("/audit", audit, methods=["GET"]),
    ]
