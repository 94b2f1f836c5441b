"""Headers on every response and a limit on every request body, as one ASGI middleware.

It wraps the whole Starlette app (outside its error handling), so a 404, a 405, a 413 and the
JSON 500 carry the same headers as a normal answer: no response can be framed, sniffed as
HTML, cached by a proxy or leak its URL through ``Referer``.

The body limit is enforced before the application reads past it: a ``Content-Length`` over the
limit is answered 413 without reading a byte, and a body without one (chunked) is counted as it
arrives and cut off at the limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: A blocklist batch of 10,000 numbers with a note is about 250 KB of JSON.
DEFAULT_MAX_BODY = 1024 * 1024

#: The API serves only JSON: nothing may be loaded, run or framed from its responses.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: The portal's pages load only the package's own stylesheet and script (no inline script or
#: style, no CDN: a PBX LAN often has no internet) and post forms only to themselves.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000")


class BodyTooLarge(Exception):
    """Raised by the wrapped ``receive`` when a body grows past the limit."""


def security_headers(path: str, *, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers for a response to ``path`` (also used by the last-resort 500 handler)."""
    api = path.startswith("/api/")
    headers = [
        (b"content-security-policy", (API_CSP if api else PAGE_CSP).encode()),
        # Pages: same-origin, so a browser still tells us where a form came from (with
        # no-referrer, Chromium sends "Origin: null" on every form post); nothing to others.
        (b"referrer-policy", b"no-referrer" if api else b"same-origin"),
        *_COMMON,
    ]
    if not path.startswith("/static/"):
        headers.append(_NO_STORE)  # pages and answers hold a user's lists: never cached
    if https:
        headers.append(_HSTS)
    return headers


def _merge(
    headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``extra`` wins over a header of the same name set by a view (ours are the policy)."""
    names = {name for name, _ in extra}
    return [(n, v) for n, v in headers if n.lower() not in names] + extra


def _too_large_body(limit: int) -> bytes:
    return json.dumps({"error": f"request body over {limit} bytes"}).encode()


class SecurityMiddleware:
    """Security headers on every HTTP response; request bodies capped at ``max_body`` bytes."""

    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY, https: bool = False):
        self.app = app
        self.max_body = max_body
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""), https=self.https)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": _merge(message.get("headers", []), extra)}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._reject(send_with_headers)
            return
        seen = 0

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except BodyTooLarge:
            if not started:
                await self._reject(send_with_headers)

    async def _reject(self, send: Send) -> None:
        body = _too_large_body(self.max_body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not read: the connection cannot be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11, httptools) refuses these before we see them
    return None
