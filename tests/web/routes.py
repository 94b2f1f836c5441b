"""A concrete request for every route of the table: the access tests walk these, so a route
added to the table without a sample here fails them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from callscreen.web.api import TABLE
from callscreen.web.openapi import Access, Endpoint

from .conftest import ACCOUNT_BLOCKED, BOB_BLOCKED

NEW_NUMBER = "+13035550177"

#: A valid body per (method, OpenAPI path); the numbers are accepted forms.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/extensions/{ext}"): {"enabled": False, "anonymous": "block"},
    ("POST", "/api/v1/extensions/{ext}/blocklist"): {"numbers": [NEW_NUMBER], "note": "x"},
    ("POST", "/api/v1/extensions/{ext}/allowlist"): {"numbers": [NEW_NUMBER]},
    ("POST", "/api/v1/extensions/{ext}/check"): {"caller": BOB_BLOCKED},
    ("PATCH", "/api/v1/account"): {"enabled": True, "treatment": "voicemail"},
    ("POST", "/api/v1/account/blocklist"): {"numbers": [NEW_NUMBER]},
    ("POST", "/api/v1/extensions/{ext}/blocklist/names"): {"names": ["Scam Likely"]},
    ("POST", "/api/v1/account/blocklist/names"): {"names": ["V*"], "for": "30d"},
    ("POST", "/api/v1/account/allowlist"): {"numbers": [NEW_NUMBER]},
    ("POST", "/api/v1/session"): {"username": "alice", "password": "alice-password"},
    ("POST", "/api/v1/accounts"): {"name": "newco"},
}
#: The account a DELETE /api/v1/accounts/{account} names: one without extensions or users.
EMPTY_ACCOUNT = "empty"

PROTECTED = [ep for ep in TABLE if ep.access is not Access.PUBLIC]
OWNER_ROUTES = [ep for ep in TABLE if ep.access is Access.OWNER]
ADMIN_ROUTES = [ep for ep in TABLE if ep.access is Access.ADMIN]
SUPERUSER_ROUTES = [ep for ep in TABLE if ep.access is Access.SUPERUSER]
UNSAFE = [ep for ep in PROTECTED if ep.method not in ("GET", "HEAD")]


def ident(ep: Endpoint) -> str:
    return f"{ep.method} {ep.openapi_path}"


def request(ep: Endpoint, ext: str = "102") -> tuple[str, str, dict[str, Any] | None]:
    """(method, URL path, JSON body) for ``ep`` on extension ``ext``; a DELETE names the
    number that is listed there (bob's, or the account's), URL-encoded as a client must."""
    number = ACCOUNT_BLOCKED if ep.path.startswith("/api/v1/account") else BOB_BLOCKED
    path = (
        ep.openapi_path.replace("{ext}", quote(ext, safe=""))
        .replace("{number}", quote(number, safe=""))
        .replace("{name}", quote("Scam Likely", safe=""))
        .replace("{account}", EMPTY_ACCOUNT)
    )
    body = BODIES.get((ep.method, ep.openapi_path))
    if ep.body is not None:
        assert body is not None, f"tests/web/routes.py: no sample body for {ident(ep)}"
    return ep.method, path, body
