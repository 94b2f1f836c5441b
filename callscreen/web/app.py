"""The web tier's ASGI app: ``create_app(config)`` -> Starlette, one Store for its lifetime.

It runs in its own process (``callscreen web``): a busy or broken web tier shares no event
loop, no store connection and no memory with call screening. SQLite in WAL mode lets the
screening server read while this process writes; each change is one short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from ..db.store import Store
from ..db.url import Database, display
from ..numbers import DEFAULT_REGION
from ..ops.auth import SESSION_TTL
from . import pages
from .api import JSON, TABLE, dispatch, error
from .openapi import routes
from .pages.common import error_page
from .security import DEFAULT_MAX_BODY, BodyTooLarge, SecurityMiddleware, security_headers
from .throttle import Throttle, ThrottleConfig

log = logging.getLogger("callscreen.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@dataclass
class WebConfig:
    db: Database  # a SQLite path or a PostgreSQL URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    region: str = DEFAULT_REGION
    #: The site is reached over HTTPS (a reverse proxy terminates TLS): Secure cookies, HSTS.
    behind_https: bool = False
    #: Proxies whose X-Forwarded-For/-Proto are believed (uvicorn's forwarded_allow_ips);
    #: none, or loopback when ``behind_https`` and none are named.
    forwarded_allow_ips: tuple[str, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    session_ttl: float = SESSION_TTL
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such route) and 405 (wrong method): JSON under /api/, else a
    page."""
    assert isinstance(exc, HTTPException)
    if not _is_api(request):
        title = {404: "Not found", 405: "Not allowed"}.get(exc.status_code, "Error")
        words = {404: "there is no such page", 405: "this page does not take that request"}
        response = error_page(
            request, exc.status_code, title, words.get(exc.status_code, str(exc.detail))
        )
        response.headers.update(dict(exc.headers or {}))
        return response
    message = {404: "no such route", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    return error(exc.status_code, message, dict(exc.headers or {}))


async def _too_large(request: Request, exc: Exception) -> Response:
    limit = request.app.state.config.max_body
    return JSON(
        {"error": f"request body over {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},
    )


async def _internal(request: Request, exc: Exception) -> Response:
    """Last resort (outside the security middleware, so it sets the headers itself)."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if _is_api(request):
        response: Response = error(500, "internal error")
    else:
        response = error_page(
            request, 500, "Something went wrong", "nothing was changed; try again in a moment"
        )
    https = request.app.state.config.behind_https
    for name, value in security_headers(request.url.path, https=https):
        response.headers[name.decode()] = value.decode()
    return response


def create_app(config: WebConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.store = await Store.open(config.db)
        log.info("web: database %s", display(config.db))
        try:
            yield
        finally:
            await app.state.store.close()

    app = Starlette(
        routes=[*pages.routes(), *routes(TABLE, dispatch)],
        middleware=[
            Middleware(SecurityMiddleware, max_body=config.max_body, https=config.behind_https)
        ],
        exception_handlers={
            HTTPException: _http_error,
            BodyTooLarge: _too_large,
            Exception: _internal,
        },
        lifespan=lifespan,
    )
    # A trailing slash is a 404, not a redirect: one spelling per route, no 307 that a client
    # would follow with its credentials and body to another path.
    app.router.redirect_slashes = False
    app.state.config = config
    app.state.throttle = Throttle(config.throttle)
    return app
