"""The route table's type, and the two things built from one table: the Starlette routes and
the OpenAPI 3.1 document.

Both are derived from the same :class:`Endpoint` list, and the body and query schemas in it are
the ones :mod:`callscreen.web.schema` enforces, so the published document cannot drift from
what the server routes and accepts (a test compares the document with ``app.routes``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from .schema import Schema


class Access(enum.Enum):
    """Who may call a route; the decision itself is made in ops (this is for the document,
    and for whether credentials are read at all)."""

    PUBLIC = "anyone, no credentials"
    ANY = "any signed-in user"
    OWNER = "the extension's owner, or an admin"
    ADMIN = "admins only"
    SUPERUSER = "superusers only (the provider's role: accounts)"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Starlette syntax: /api/v1/extensions/{ext}/blocklist/{number:path}
    handler: Callable[..., Awaitable[Any]]
    summary: str
    access: Access
    body: Schema | None = None
    query: dict[str, Schema] = field(default_factory=dict)
    status: int = 200  # on success

    @property
    def openapi_path(self) -> str:
        return openapi_path(self.path)


Dispatch = Callable[[Endpoint, Request], Awaitable[Response]]

_CONVERTOR = re.compile(r"\{(\w+)(?::\w+)?\}")
_WORDS = re.compile(r"\W+")


def openapi_path(path: str) -> str:
    """``/x/{number:path}`` -> ``/x/{number}`` (OpenAPI has no convertors)."""
    return _CONVERTOR.sub(r"{\1}", path)


def routes(table: Sequence[Endpoint], dispatch: Dispatch) -> list[Route]:
    """One Starlette route per path, its methods those of the table (so a wrong method on a
    known path is a 405 with the right ``Allow``)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in table:
        methods = by_path.setdefault(ep.path, {})
        assert ep.method not in methods, f"{ep.method} {ep.path} twice in the route table"
        methods[ep.method] = ep
    out = []
    for path, methods in by_path.items():

        async def endpoint(request: Request, methods: dict[str, Endpoint] = methods) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await dispatch(methods[method], request)

        out.append(Route(path, endpoint, methods=list(methods), include_in_schema=False))
    return out


_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            }
        }
    },
}

_RESPONSES_BY_ACCESS: dict[Access, dict[str, str]] = {
    Access.PUBLIC: {},
    Access.ANY: {"401": "no or invalid credentials"},
    Access.OWNER: {
        "401": "no or invalid credentials",
        "403": "not your extension (also when it does not exist), or a missing CSRF token",
    },
    Access.ADMIN: {
        "401": "no or invalid credentials",
        "403": "not an admin, or a missing CSRF token",
    },
    Access.SUPERUSER: {
        "401": "no or invalid credentials",
        "403": "not a superuser, or a missing CSRF token",
    },
}


def _operation(ep: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": ep.method.lower() + "_" + _WORDS.sub("_", ep.openapi_path).strip("_"),
        "description": f"Who: {ep.access.value}.",
        "responses": {
            str(ep.status): {
                "description": "success",
                **({"content": {"application/json": {}}} if ep.status != 204 else {}),
            },
        },
    }
    if ep.access is not Access.PUBLIC:
        op["security"] = [{"bearer": []}, {"session": []}]
    else:
        op["security"] = []
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _CONVERTOR.findall(ep.path)
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in ep.query.items()
    ]
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ep.body}},
        }
    errors = {"400": "bad input (one line)", **_RESPONSES_BY_ACCESS[ep.access]}
    if ep.body is not None:
        errors["413"] = "request body too large"
        errors["415"] = "the body is not application/json"
    for code, text in errors.items():
        op["responses"][code] = {**_ERROR, "description": text}
    return op


def document(table: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``table``."""
    paths: dict[str, dict[str, Any]] = {}
    for ep in table:
        paths.setdefault(ep.openapi_path, {})[ep.method.lower()] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callscreen API",
            "version": __version__,
            "description": "Call blocking per extension and for the account. Authenticate with "
            "`Authorization: Bearer TOKEN` (`callscreen token create`), or with the session "
            "cookie from `POST /api/v1/session` plus `X-CSRF-Token` on every change.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "callscreen_session",
                    "description": "from POST /api/v1/session; named __Host-callscreen when "
                    "the site is behind HTTPS. Changes also need the X-CSRF-Token header.",
                },
            }
        },
    }
