"""The JSON API: each route parses its JSON, calls one ops function and returns its result.

No SQL and no permission decision here: ops decides who may do what (a user's extension, an
admin-only change) and refuses with the same words the CLI prints. This module only maps those
refusals to status codes:

    InvalidInput -> 400   NotPermitted / CSRF -> 403   NotFound -> 404   no credentials -> 401
    anything else -> 500 {"error": "internal error"} (the detail goes to the log only)

The route table at the bottom (:data:`TABLE`) builds the routes and the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..db.store import Store
from ..ops import accounts as ops_accounts
from ..ops import auth as ops_auth
from ..ops import lists, settings
from ..ops.actor import Actor
from ..ops.errors import InvalidInput, NotFound, NotPermitted
from ..policy import Kind, Scope
from ..timeutil import parse_since
from . import schema as s
from .auth import (
    Credentials,
    CsrfFailed,
    Locked,
    Unauthorized,
    authenticate,
    clear_session_cookie,
    set_session_cookie,
    sign_in,
)
from .openapi import Access, Endpoint, document
from .security import BodyTooLarge

log = logging.getLogger("callscreen.web")

JSON_TYPES = ("application/json",)


class JSON(Response):
    """JSON as ASCII with ``<``, ``>`` and ``&`` escaped too: the exact values once parsed, and
    no byte that a browser sniffing (or a page pasting it into HTML) could take as markup."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": message}, status_code=status, headers=headers)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the open store, who asks, and the parsed request."""

    store: Store
    actor: Actor | None  # None on public routes
    creds: Credentials | None
    params: dict[str, str]
    body: dict[str, Any]
    query: dict[str, Any]
    request: Request

    @property
    def who(self) -> Actor:
        assert self.actor is not None, "a public route asked for the actor"
        return self.actor

    @property
    def region(self) -> str:
        return str(self.request.app.state.config.region)


async def _body(ep: Endpoint, request: Request) -> dict[str, Any]:
    if ep.body is None:
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in JSON_TYPES:
        raise _Unsupported
    raw = await request.body()
    if not raw.strip():
        raise InvalidInput("request body: expected a JSON object")
    value = s.check(ep.body, s.parse_json(raw), "request body")
    assert isinstance(value, dict)
    return value


class _Unsupported(Exception):
    pass


async def dispatch(ep: Endpoint, request: Request) -> Response:
    """Run one endpoint: credentials, query, body, the handler; every error is one JSON line."""
    state = request.app.state
    try:
        creds = None
        if ep.access is not Access.PUBLIC:
            creds = await authenticate(request, state.store, https=state.config.behind_https)
        query = s.check_query(ep.query, request.query_params.multi_items())
        body = await _body(ep, request)
        store = state.store
        if creds is not None:  # the one place: every handler works in the caller's account
            store = store.scoped(creds.actor.account_id, creds.actor.account)
        call = Call(
            store=store,
            actor=creds.actor if creds else None,
            creds=creds,
            params=dict(request.path_params),
            body=body,
            query=query,
            request=request,
        )
        result = await ep.handler(call)
    except Unauthorized as exc:
        return error(401, str(exc), {"WWW-Authenticate": "Bearer"})
    except CsrfFailed as exc:
        return error(403, str(exc))
    except _Unsupported:
        return error(415, "expected Content-Type: application/json")
    except InvalidInput as exc:
        return error(400, _line(exc))
    except NotPermitted as exc:
        return error(403, _line(exc))
    except NotFound as exc:
        return error(404, _line(exc))
    except BodyTooLarge:
        raise  # answered 413 by the app's handler
    except Exception:
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, "internal error")
    if isinstance(result, Response):
        return result
    if ep.status == 204:
        return Response(status_code=204)
    return JSON(result, status_code=ep.status)


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- handlers ----------------------------------------------------------------------------------
def _me(actor: Actor) -> dict[str, Any]:
    return {
        "user": actor.name,
        "role": actor.role.value,
        "extensions": sorted(actor.extensions),
        "account": actor.account,
        "superuser": actor.superuser,
    }


async def me(c: Call) -> Any:
    return _me(c.who)


async def extensions(c: Call) -> Any:
    return await settings.ext_list(c.store, c.who)


async def ext_get(c: Call) -> Any:
    return await settings.ext_show(c.store, c.who, c.params["ext"])


async def ext_patch(c: Call) -> Any:
    b = c.body
    return await settings.ext_set(
        c.store,
        c.who,
        c.params["ext"],
        enabled=b.get("enabled"),
        anonymous=b.get("anonymous"),
        treatment=b.get("treatment"),
        mailbox=b.get("mailbox"),
        unknown=b.get("unknown"),
        remember=b.get("remember"),
        challenge_fallback=b.get("challenge_fallback"),
    )


async def calls(c: Call) -> Any:
    return await settings.recent_calls(
        c.store, c.who, c.params["ext"], limit=c.query.get("limit", 50)
    )


async def check(c: Call) -> Any:
    return await settings.check(
        c.store,
        c.who,
        c.params["ext"],
        c.body["caller"],
        callingpres=c.body.get("callingpres"),
        region=c.region,
        name=c.body.get("name"),
    )


async def account_get(c: Call) -> Any:
    return await settings.account_show(c.store, c.who)


async def account_patch(c: Call) -> Any:
    b = c.body
    return await settings.account_set(
        c.store,
        c.who,
        enabled=b.get("enabled"),
        anonymous=b.get("anonymous"),
        treatment=b.get("treatment"),
        unknown=b.get("unknown"),
        remember=b.get("remember"),
        challenge_fallback=b.get("challenge_fallback"),
    )


async def audit(c: Call) -> Any:
    since = c.query.get("since")
    try:
        since_ts = None if since is None else parse_since(since)
    except ValueError as exc:  # the CLI's words for --since
        raise InvalidInput(f"since: {exc}") from None
    return await settings.audit_list(
        c.store, c.who, since=since_ts, limit=c.query.get("limit", 100)
    )


async def openapi_json(c: Call) -> Any:
    return OPENAPI


def _list_handlers(scope: Scope, kind: Kind) -> tuple[Any, Any, Any, Any, Any]:
    """GET (page), POST (add a batch) and DELETE (one number) for one list; POST and DELETE
    of caller-name rules (the blocklist's)."""

    def ext(c: Call) -> str | None:
        return c.params["ext"] if scope is Scope.EXTENSION else None

    async def get(c: Call) -> Any:
        q = c.query
        return await lists.list_entries(
            c.store,
            c.who,
            scope=scope,
            ext=ext(c),
            kind=kind,
            limit=q.get("limit", 100),
            offset=q.get("offset", 0),
            q=q.get("q"),
            region=c.region,
            after=q.get("after"),
        )

    async def add(c: Call) -> Any:
        b = c.body
        return await lists.list_add(
            c.store,
            c.who,
            scope=scope,
            ext=ext(c),
            kind=kind,
            numbers=b["numbers"],
            note=b.get("note", ""),
            for_=b.get("for"),
            until=b.get("until"),
            region=c.region,
        )

    async def remove(c: Call) -> Any:
        return await lists.list_remove(
            c.store,
            c.who,
            scope=scope,
            ext=ext(c),
            kind=kind,
            numbers=[c.params["number"]],
            region=c.region,
        )

    async def add_names(c: Call) -> Any:
        b = c.body
        return await lists.list_add(
            c.store,
            c.who,
            scope=scope,
            ext=ext(c),
            kind=kind,
            numbers=[],
            names=b["names"],
            note=b.get("note", ""),
            for_=b.get("for"),
            until=b.get("until"),
        )

    async def remove_name(c: Call) -> Any:
        return await lists.list_remove(
            c.store, c.who, scope=scope, ext=ext(c), kind=kind, numbers=[], names=[c.params["name"]]
        )

    return get, add, remove, add_names, remove_name


async def session_create(c: Call) -> Any:
    """Sign in: throttled per username and address before the password is even looked at."""
    try:
        login = await sign_in(
            c.request, c.body["username"], c.body["password"], c.body.get("account", "")
        )
    except Locked as exc:
        return error(429, str(exc), {"Retry-After": str(exc.retry_after)})
    except NotPermitted as exc:  # wrong, unknown or disabled: one answer for all three
        return error(401, _line(exc), {"WWW-Authenticate": "Bearer"})
    response = JSON({"csrf": login.csrf, "user": _me(login.actor), "expires": login.expires_at})
    set_session_cookie(response, c.request, login.cookie)
    return response


async def accounts_list(c: Call) -> Any:
    return await ops_accounts.account_list(c.store, c.who)


async def accounts_add(c: Call) -> Any:
    return await ops_accounts.account_add(c.store, c.who, c.body["name"])


async def accounts_remove(c: Call) -> Any:
    force = c.query.get("force", "false") == "true"
    return await ops_accounts.account_remove(c.store, c.who, c.params["account"], force=force)


async def session_delete(c: Call) -> Any:
    if c.creds is None or c.creds.cookie is None:
        raise InvalidInput("signed in with a token: no session to end (revoke the token instead)")
    await ops_auth.logout(c.store, c.creds.cookie)
    response = Response(status_code=204)
    clear_session_cookie(response, c.request)
    return response


# -- the route table ---------------------------------------------------------------------------
V1 = "/api/v1"
_EXT = V1 + "/extensions/{ext}"
_LIMIT = s.integer(1, 1000, "entries per page")
_LIST_QUERY = {
    "limit": _LIMIT,
    "offset": s.integer(0, 10**9),
    "after": s.integer(1, 2**62, "an entry id (the previous page's next): keyset paging"),
    "q": s.string(200, "a number or prefix typed any way, or text of the note"),
}
_ADD_OPTIONS = {
    "note": s.string(500),
    "for": s.string(20, "how long, e.g. 30d, 12h (default: for good)"),
    "until": s.string(40, "until a date or time, e.g. 2026-12-31"),
}
_ADD_BODY = s.obj({"numbers": s.NUMBERS, **_ADD_OPTIONS}, required=["numbers"])
_ADD_NAMES_BODY = s.obj({"names": s.NAMES, **_ADD_OPTIONS}, required=["names"])
_ANONYMOUS = s.choice("allow", "block", "challenge")
_UNKNOWN = s.choice("allow", "challenge")
_TREATMENT = s.choice("voicemail", "busy", "torture")
_REMEMBER = s.string(20, "how long a caller who passed the challenge stays allowed: 30d, 0")
_FALLBACK = s.choice("voicemail", "busy", "hangup")


def _list_routes(base: str, scope: Scope, access: Access) -> list[Endpoint]:
    out = []
    for kind, name in ((Kind.BLOCK, "blocklist"), (Kind.ALLOW, "allowlist")):
        get, add, remove, add_names, remove_name = _list_handlers(scope, kind)
        where = "the extension's" if scope is Scope.EXTENSION else "the account's"
        out += [
            Endpoint(
                "GET", f"{base}/{name}", get, f"a page of {where} {name}", access, query=_LIST_QUERY
            ),
            Endpoint(
                "POST",
                f"{base}/{name}",
                add,
                f"add numbers to {where} {name} (all or none)",
                access,
                body=_ADD_BODY,
            ),
        ]
        if kind is Kind.BLOCK:  # before {number:path}, which would take names/... too
            out += [
                Endpoint("POST", f"{base}/{name}/names", add_names,
                         f"add caller-name rules to {where} {name} (all or none)", access,
                         body=_ADD_NAMES_BODY),
                Endpoint("DELETE", f"{base}/{name}/names/{{name:path}}", remove_name,
                         f"remove one caller-name rule (URL-encoded, as typed or as listed)"
                         f" from {where} {name}", access),
            ]  # fmt: skip
        out.append(
            Endpoint("DELETE", f"{base}/{name}/{{number:path}}", remove,
                     f"remove one number (URL-encoded, any accepted form) from {where} {name}",
                     access))  # fmt: skip
    return out


TABLE: list[Endpoint] = [
    Endpoint("GET", V1 + "/openapi.json", openapi_json, "this document", Access.PUBLIC),
    Endpoint("POST", V1 + "/session", session_create,
             "sign in: sets the session cookie, returns the CSRF token", Access.PUBLIC,
             body=s.obj({"username": s.string(200), "password": s.string(1024),
                         "account": s.string(63, "the user's account (default: default)")},
                        required=["username", "password"])),
    Endpoint("DELETE", V1 + "/session", session_delete, "sign out", Access.ANY, status=204),
    Endpoint("GET", V1 + "/me", me, "who you are: user, role, extensions", Access.ANY),
    Endpoint("GET", V1 + "/extensions", extensions, "the extensions you may manage", Access.ANY),
    Endpoint("GET", _EXT, ext_get, "an extension's settings", Access.OWNER),
    Endpoint("PATCH", _EXT, ext_patch, "change an extension's settings", Access.OWNER,
             body=s.obj({"enabled": s.BOOLEAN, "anonymous": _ANONYMOUS, "treatment": _TREATMENT,
                         "mailbox": s.string(200, "BOX@CONTEXT (admins only)"),
                         "unknown": _UNKNOWN,
                         "remember": s.string(20, "30d, 0, or account: the account's"),
                         "challenge_fallback": s.choice("voicemail", "busy", "hangup",
                                                        "account")})),
    *_list_routes(_EXT, Scope.EXTENSION, Access.OWNER),
    Endpoint("GET", _EXT + "/calls", calls, "recent screened calls, newest first", Access.OWNER,
             query={"limit": _LIMIT}),
    Endpoint("POST", _EXT + "/check", check, "what a call from this caller would get",
             Access.OWNER,
             body=s.obj({"caller": s.string(200), "callingpres": s.integer(0, 255),
                         "name": s.string(200, "the caller's name (agi_calleridname)")},
                        required=["caller"])),
    Endpoint("GET", V1 + "/account", account_get, "account-wide settings", Access.ADMIN),
    Endpoint("PATCH", V1 + "/account", account_patch, "change account-wide settings",
             Access.ADMIN,
             body=s.obj({"enabled": s.BOOLEAN, "anonymous": _ANONYMOUS,
                         "treatment": _TREATMENT, "unknown": _UNKNOWN, "remember": _REMEMBER,
                         "challenge_fallback": _FALLBACK})),
    *_list_routes(V1 + "/account", Scope.ACCOUNT, Access.ADMIN),
    Endpoint("GET", V1 + "/audit", audit, "the audit log, newest first", Access.ADMIN,
             query={"since": s.string(40, "e.g. 7d, 2026-12-01"),
                    "limit": s.integer(1, 10_000)}),
    Endpoint("GET", V1 + "/accounts", accounts_list,
             "every account (tenant) with its extension and user counts", Access.SUPERUSER),
    Endpoint("POST", V1 + "/accounts", accounts_add, "add an account (tenant)",
             Access.SUPERUSER, body=s.obj({"name": s.string(63, "1-63 lowercase letters, "
                                                           "digits, . _ -")}, required=["name"]),
             status=201),
    Endpoint("DELETE", V1 + "/accounts/{account}", accounts_remove,
             "remove an account; refused while it has extensions or users unless force=true",
             Access.SUPERUSER, query={"force": s.choice("true", "false")}),
]  # fmt: skip

OPENAPI = document(TABLE)
