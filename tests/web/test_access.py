"""Every route x every role: who gets 401, who gets 403 (the same 403 whether the extension is
someone else's or does not exist), and that a refused request changed nothing at all."""

from __future__ import annotations

import httpx
import pytest

from callscreen.ops.actor import ADMIN_ONLY, NOT_YOURS
from callscreen.web.openapi import Endpoint
from tests.pg import BACKENDS

from .conftest import Web
from .routes import ADMIN_ROUTES, OWNER_ROUTES, PROTECTED, ident, request

#: The API and its permission checks, once on SQLite and once on PostgreSQL (tests/pg.py).
pytestmark = pytest.mark.parametrize("web_backend", BACKENDS)


def send(c: httpx.Client, ep: Endpoint, ext: str = "102") -> httpx.Response:
    method, path, body = request(ep, ext)
    return c.request(method, path, json=body)


BAD_CREDENTIALS = {
    "none": {},
    "unknown token": {"Authorization": "Bearer not-a-token-we-issued"},
    "empty bearer": {"Authorization": "Bearer"},
    "basic auth": {"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="},
    "huge token": {"Authorization": "Bearer " + "x" * 10_000},
    "unknown cookie": {"Cookie": "callscreen_session=forged"},
}


@pytest.mark.parametrize("creds", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
def test_without_valid_credentials_every_route_is_401_and_nothing_changes(
    web: Web, creds: str
) -> None:
    before = web.snapshot()
    c = web.client()
    for ep in PROTECTED:
        method, path, body = request(ep)
        r = c.request(method, path, json=body, headers=BAD_CREDENTIALS[creds])
        assert r.status_code == 401, (ident(ep), r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert set(r.json()) == {"error"}
    assert web.snapshot() == before


def test_a_disabled_users_token_is_401_everywhere(web: Web) -> None:
    before = web.snapshot()
    c = web.client("carol")  # owns 101, disabled
    for ep in PROTECTED:
        for ext in ("101", "102"):
            r = send(c, ep, ext)
            assert r.status_code == 401, (ident(ep), r.text)
    assert web.snapshot() == before


@pytest.mark.parametrize(("who", "other"), [("alice", "102"), ("bob", "101")])
@pytest.mark.parametrize("ep", OWNER_ROUTES, ids=ident)
def test_a_user_gets_the_same_403_for_another_users_extension_and_a_missing_one(
    web: Web, ep: Endpoint, who: str, other: str
) -> None:
    before = web.snapshot()
    c = web.client(who)
    theirs = send(c, ep, other)
    missing = send(c, ep, "999")
    assert (theirs.status_code, theirs.json()) == (403, {"error": NOT_YOURS.format(ext=other)})
    assert (missing.status_code, missing.json()) == (403, {"error": NOT_YOURS.format(ext="999")})
    assert web.snapshot() == before


@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize("ep", ADMIN_ROUTES, ids=ident)
def test_a_user_on_an_admin_route_is_403(web: Web, ep: Endpoint, who: str) -> None:
    before = web.snapshot()
    r = send(web.client(who), ep)
    assert (r.status_code, r.json()) == (403, {"error": ADMIN_ONLY})
    assert web.snapshot() == before


@pytest.mark.parametrize("ep", OWNER_ROUTES, ids=ident)
def test_the_owner_may(web: Web, ep: Endpoint) -> None:
    """The control for the refusals above: the same requests succeed for the owner."""
    r = send(web.client("alice"), ep, "101")
    assert r.status_code in (200, 204), (ident(ep), r.text)


@pytest.mark.parametrize("ep", [*OWNER_ROUTES, *ADMIN_ROUTES], ids=ident)
def test_an_admin_may(web: Web, ep: Endpoint) -> None:
    r = send(web.client("admin"), ep, "102")
    assert r.status_code in (200, 204), (ident(ep), r.text)


def test_a_users_change_lands_on_their_extension_only(web: Web) -> None:
    alice = web.client("alice")
    r = alice.post("/api/v1/extensions/101/blocklist", json={"numbers": ["+13035550166"]})
    assert r.status_code == 200, r.text
    assert r.json()["added"] == ["+13035550166"]
    own = alice.get("/api/v1/extensions/101/blocklist").json()
    assert [e["value"] for e in own["entries"]] == ["+13035550166"]
    bob = web.client("bob").get("/api/v1/extensions/102/blocklist").json()
    assert "+13035550166" not in {e["value"] for e in bob["entries"]}


def test_me_and_extensions_show_only_ones_own(web: Web) -> None:
    me = web.client("alice").get("/api/v1/me").json()
    assert me == {
        "user": "alice",
        "role": "user",
        "extensions": ["101"],
        "account": "default",
        "superuser": False,
    }
    exts = web.client("alice").get("/api/v1/extensions").json()
    assert [e["ext"] for e in exts] == ["101"]
    admin = web.client("admin").get("/api/v1/extensions").json()
    assert {"101", "102"} <= {e["ext"] for e in admin}
