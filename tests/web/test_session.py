"""Sign-in, the session cookie and CSRF; sessions end with logout, expiry, a password change and
disabling; sign-in throttling over HTTP, with one answer for a wrong password and an unknown
user."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

import httpx
import pytest

from callscreen.db.store import Store
from callscreen.ops import users
from callscreen.ops.actor import Actor
from callscreen.web.openapi import Endpoint

from .conftest import PASSWORDS, Web
from .routes import SUPERUSER_ROUTES, UNSAFE, ident, request


def cli_op(web: Web, fn: Callable[[Store], object]) -> None:
    async def go() -> None:
        async with await Store.open(web.db) as store:
            await fn(store)  # type: ignore[misc]

    asyncio.run(go())


def test_sign_in_sets_a_strict_httponly_cookie_and_returns_the_csrf_token(web: Web) -> None:
    c = web.client()
    r = c.post("/api/v1/session", json={"username": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == {
        "user": "alice",
        "role": "user",
        "extensions": ["101"],
        "account": "default",
        "superuser": False,
    }
    assert len(body["csrf"]) >= 32
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("callscreen_session=")
    for part in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert part.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain HTTP: a Secure cookie would never come back
    assert c.get("/api/v1/me").json()["user"] == "alice"


def test_behind_https_the_cookie_is_secure_and_host_prefixed(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(behind_https=True)
    r = web.client().post(
        "/api/v1/session", json={"username": "alice", "password": PASSWORDS["alice"]}
    )
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-callscreen=")
    assert "secure" in cookie.lower()
    assert r.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("who", ["alice", "nobody", "carol"])
def test_a_failed_sign_in_says_the_same_whoever_it_was(web: Web, who: str) -> None:
    """Wrong password, unknown user, disabled user: the same status and the same words."""
    r = web.client().post("/api/v1/session", json={"username": who, "password": "wrong-pass"})
    assert (r.status_code, r.json()) == (401, {"error": "wrong username or password"})
    assert "set-cookie" not in r.headers
    if who == "carol":  # even with her right password
        r = web.client().post("/api/v1/session", json={"username": who, "password": PASSWORDS[who]})
        assert (r.status_code, r.json()) == (401, {"error": "wrong username or password"})


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize("ep", UNSAFE, ids=ident)
def test_a_cookie_change_without_the_csrf_token_is_403_and_writes_nothing(
    web: Web, ep: Endpoint, csrf: str | None
) -> None:
    c, _ = web.login("admin")  # admin: every route would otherwise succeed
    before = web.snapshot()
    method, path, body = request(ep)
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    r = c.request(method, path, json=body, headers=headers)
    assert (r.status_code, r.json()) == (403, {"error": "missing or wrong X-CSRF-Token"})
    assert web.snapshot() == before
    assert c.get("/api/v1/me").status_code == 200  # still signed in


@pytest.mark.parametrize("ep", [ep for ep in UNSAFE if ep not in SUPERUSER_ROUTES], ids=ident)
def test_a_cookie_change_with_the_csrf_token_works(web: Web, ep: Endpoint) -> None:
    """(The superuser's routes: tests/web/test_tenants.py, with a superuser.)"""
    c, csrf = web.login("admin")
    method, path, body = request(ep)
    r = c.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code in (200, 204), (ident(ep), r.text)


def test_another_sessions_csrf_token_does_not_work(web: Web) -> None:
    c, _ = web.login("alice")
    _, other = web.login("alice")
    before = web.snapshot()
    r = c.patch("/api/v1/extensions/101", json={"enabled": False}, headers={"X-CSRF-Token": other})
    assert r.status_code == 403
    assert web.snapshot() == before


def _old_cookie(c: httpx.Client) -> dict[str, str]:
    return {"Cookie": f"callscreen_session={c.cookies['callscreen_session']}"}


def test_logout_ends_the_session_at_once(web: Web) -> None:
    c, csrf = web.login("alice")
    cookie = _old_cookie(c)
    assert c.delete("/api/v1/session").status_code == 403  # CSRF applies to logout too
    r = c.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert "max-age=0" in r.headers["set-cookie"].lower()  # the browser forgets it too
    replay = web.client().get("/api/v1/me", headers=cookie)
    assert replay.status_code == 401


def test_a_token_has_no_session_to_end(web: Web) -> None:
    r = web.client("alice").delete("/api/v1/session")
    assert r.status_code == 400


def test_a_password_change_ends_the_users_sessions(web: Web) -> None:
    c, _ = web.login("alice")
    cli_op(web, lambda s: users.user_passwd(s, Actor.cli(), "alice", "a-new-password"))
    assert c.get("/api/v1/me").status_code == 401
    bob, _ = web.login("bob")  # someone else's session is not touched
    assert bob.get("/api/v1/me").status_code == 200


def test_disabling_ends_sessions_and_tokens_at_once(web: Web) -> None:
    c, _ = web.login("alice")
    token = web.client("alice")
    assert token.get("/api/v1/me").status_code == 200
    cli_op(web, lambda s: users.user_set(s, Actor.cli(), "alice", disabled=True))
    assert c.get("/api/v1/me").status_code == 401
    assert token.get("/api/v1/me").status_code == 401


def test_a_session_expires(make_web: Callable[..., Web]) -> None:
    web = make_web(session_ttl=1.0)
    c, _ = web.login("alice")
    assert c.get("/api/v1/me").status_code == 200
    time.sleep(1.3)
    assert c.get("/api/v1/me").status_code == 401


def _attempt(web: Web, username: str, password: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    r = web.client().post("/api/v1/session", json={"username": username, "password": password})
    return r.status_code, r.json()["error"] if r.status_code != 200 else "", time.monotonic() - t0


def test_failed_sign_ins_slow_down_then_lock_the_same_for_unknown_users(web: Web) -> None:
    """The test throttle: 3 free failures, then 0.05 s doubling to 0.2 s, locked after 6."""
    seen: dict[str, list[tuple[int, str, float]]] = {}
    for who in ("alice", "nobody-by-this-name"):
        seen[who] = [_attempt(web, who, "wrong-password") for _ in range(8)]
    for who, attempts in seen.items():
        statuses = [s for s, _, _ in attempts]
        assert statuses == [401] * 6 + [429] * 2, (who, statuses)
        assert attempts[5][2] >= 0.2  # the 6th waited (0.05, 0.1, then 0.2)
        assert attempts[6][1] == "too many failed sign-ins; try again later"
    # Same answers, word for word, whether the user exists or not.
    assert [(s, e) for s, e, _ in seen["alice"]] == [
        (s, e) for s, e, _ in seen["nobody-by-this-name"]
    ]
    # Locked means locked: the right password does not get in either.
    status, _, _ = _attempt(web, "alice", PASSWORDS["alice"])
    assert status == 429
    # Another user is not locked out by alice's lock.
    assert _attempt(web, "bob", PASSWORDS["bob"])[0] == 200


def test_a_successful_sign_in_clears_the_users_failures(web: Web) -> None:
    for _ in range(5):
        assert _attempt(web, "bob", "wrong-password")[0] == 401
    assert _attempt(web, "bob", PASSWORDS["bob"])[0] == 200
    # Counted afresh: six more failures before a lock (11 in all would have locked at the 7th).
    assert [_attempt(web, "bob", "wrong-password")[0] for _ in range(6)] == [401] * 6


def _audit_ips(web: Web) -> list[str | None]:
    con = sqlite3.connect(web.db)
    try:
        return [r[0] for r in con.execute("SELECT ip FROM audit_log WHERE action = 'user.login'")]
    finally:
        con.close()


def test_x_forwarded_for_is_ignored_unless_behind_a_proxy(make_web: Callable[..., Web]) -> None:
    """Else any client could choose the address that throttling counts and the audit shows."""
    web = make_web()
    forged = {"X-Forwarded-For": "203.0.113.9"}
    body = {"username": "alice", "password": PASSWORDS["alice"]}
    assert web.client().post("/api/v1/session", json=body, headers=forged).status_code == 200
    assert _audit_ips(web) == ["127.0.0.1"]


def test_behind_https_the_local_proxys_x_forwarded_for_is_the_client(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(behind_https=True)
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    body = {"username": "alice", "password": PASSWORDS["alice"]}
    assert web.client().post("/api/v1/session", json=body, headers=forwarded).status_code == 200
    assert _audit_ips(web) == ["203.0.113.9"]
