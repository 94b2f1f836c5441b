"""The portal's sign-in and Blocking pages over real HTTP (no browser: tests/browser drives
Chromium): what a user sees, what lands in the database, and what must change nothing.

Every change is a form post with the session's CSRF token in the field ``csrf``; a success
answers 303 back to the page, which then shows the confirmation once.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from typing import Any

import httpx
import pytest

from callscreen.db.calllog import CallRecord
from callscreen.db.store import Store
from callscreen.ops import lists, settings
from callscreen.ops.actor import Actor
from callscreen.policy import Kind, Scope

from .conftest import BOB_BLOCKED, PASSWORDS, Web


def sign_in(web: Web, who: str) -> tuple[httpx.Client, str]:
    """A client signed in through the sign-in form, and the CSRF token of its pages."""
    c = web.client()
    r = c.post("/login", data={"username": who, "password": PASSWORDS[who]})
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert page.status_code == 200, page.text
    return c, csrf_of(page.text)


def csrf_of(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m, "no CSRF field on the page"
    return m.group(1)


def flash(text: str) -> str | None:
    m = re.search(r'id="flash"[^>]*>([^<]*)<', text)
    return html.unescape(m.group(1)) if m else None


def post(c: httpx.Client, path: str, csrf: str, **fields: str) -> httpx.Response:
    return c.post(path, data={"csrf": csrf, **fields})


def follow(c: httpx.Client, r: httpx.Response) -> httpx.Response:
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return c.get(r.headers["location"])


def store_read(web: Web, fn: Any) -> Any:
    async def go() -> Any:
        async with await Store.open(web.db) as store:
            return await fn(store, Actor.cli())

    return asyncio.run(go())


def entries(web: Web, ext: str | None, kind: Kind = Kind.BLOCK) -> list[dict[str, Any]]:
    scope = Scope.EXTENSION if ext else Scope.ACCOUNT
    out = store_read(web, lambda s, a: lists.list_entries(s, a, scope=scope, ext=ext, kind=kind))
    return list(out["entries"])


# -- signing in ------------------------------------------------------------------------------
def test_the_sign_in_page_has_labelled_fields_and_works_without_a_session(web: Web) -> None:
    r = web.client().get("/")
    assert r.status_code == 200
    assert "<h1>Sign in</h1>" in r.text
    assert '<label for="username">Username</label>' in r.text
    assert '<label for="password">Password</label>' in r.text
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', r.text)
    assert r.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("who", "home"), [("alice", "/ext/101"), ("admin", "/account")])
def test_signing_in_lands_on_the_home_page(web: Web, who: str, home: str) -> None:
    c = web.client()
    r = c.post("/login", data={"username": who, "password": PASSWORDS[who]})
    assert r.status_code == 303 and r.headers["location"] == home
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    # Signed in, the sign-in page sends one home.
    again = c.get("/")
    assert again.status_code == 303 and again.headers["location"] == home


@pytest.mark.parametrize(
    "form",
    [
        {"username": "alice", "password": "Xq7-not-it"},
        {"username": "nobody", "password": "Xq7-not-it"},
        {"username": "carol", "password": PASSWORDS["carol"]},  # disabled
    ],
)
def test_a_failed_sign_in_says_one_thing_and_sets_no_cookie(web: Web, form: dict[str, str]) -> None:
    r = web.client().post("/login", data=form)
    assert r.status_code == 400
    assert "wrong username or password" in r.text
    assert "set-cookie" not in r.headers
    assert f'value="{form["username"]}"' in r.text  # the username is kept, never the password
    assert form["password"] not in r.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1"},
    ],
)
def test_a_sign_in_form_posted_from_another_site_is_refused(
    web: Web, headers: dict[str, str]
) -> None:
    before = web.snapshot()
    r = web.client().post(
        "/login", data={"username": "alice", "password": PASSWORDS["alice"]}, headers=headers
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    assert web.snapshot() == before


def test_pages_tell_the_browser_where_forms_come_from(web: Web) -> None:
    """``same-origin``: the browser sends our Origin on our own form posts (with
    ``no-referrer`` Chromium sends ``Origin: null``) and no Referer to other sites."""
    r = web.client().get("/")
    assert r.headers["referrer-policy"] == "same-origin"
    same = web.client().post(
        "/login",
        data={"username": "alice", "password": PASSWORDS["alice"]},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": web.url},
    )
    assert same.status_code == 303


def test_a_page_without_a_session_sends_to_sign_in(web: Web) -> None:
    c = web.client()
    for path in ("/ext/101", "/account"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/"
    before = web.snapshot()
    r = c.post("/ext/101/block", data={"number": "+13035550123"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert web.snapshot() == before


def test_signing_out_ends_the_session_for_good(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    cookie = c.cookies.get("callscreen_session")
    r = post(c, "/logout", csrf)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # The old cookie, replayed, no longer works.
    replay = web.client()
    replay.cookies.set("callscreen_session", str(cookie))
    assert replay.get("/ext/101").headers["location"] == "/"


# -- the Blocking page -------------------------------------------------------------------------
def test_turning_blocking_on_and_off(web: Web) -> None:
    c, csrf = sign_in(web, "bob")
    page = c.get("/ext/102").text
    assert "<h1>Call blocking for extension 102</h1>" in page
    assert "Call blocking is on" in page and "Turn Off Call Blocking" in page
    done = follow(c, post(c, "/ext/102/settings", csrf, enabled="off"))
    assert flash(done.text) == "Call blocking is off"
    assert "Turn On Call Blocking" in done.text
    assert "These numbers are blocked once call blocking is on." in done.text
    show = store_read(web, lambda s, a: settings.ext_show(s, a, "102"))
    assert show["enabled"] is False
    # The confirmation is shown once.
    assert flash(c.get("/ext/102").text) is None
    follow(c, post(c, "/ext/102/settings", csrf, enabled="on"))
    assert store_read(web, lambda s, a: settings.ext_show(s, a, "102"))["enabled"] is True


def test_adding_a_number_stores_it_normalized_with_its_note(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    done = follow(c, post(c, "/ext/101/block", csrf, number="(303) 555-0101", note="car warranty"))
    assert flash(done.text) == "Blocked +13035550101"
    assert 'aria-label="Remove +13035550101"' in done.text
    assert "typed: (303) 555-0101" in done.text and "car warranty" in done.text
    [e] = entries(web, "101")
    assert (e["value"], e["raw"], e["note"], e["expires"]) == (
        "+13035550101",
        "(303) 555-0101",
        "car warranty",
        None,
    )
    again = follow(c, post(c, "/ext/101/block", csrf, number="+1 303 555 0101"))
    assert flash(again.text) == "+13035550101 was already listed"


def test_block_for_30_days_sets_an_expiry(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    follow(c, post(c, "/ext/101/block", csrf, number="+13035550130", days30="1"))
    [e] = entries(web, "101")
    expires = time.mktime(time.strptime(e["expires"], "%Y-%m-%d %H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 30 * 86400)) < 120


def test_a_bad_number_keeps_what_was_typed_and_saves_nothing(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    before = web.snapshot()
    r = post(c, "/ext/101/block", csrf, number="12ab", note="typed note")
    assert r.status_code == 400
    err = re.search(r'class="field-error" role="alert" id="block-number-error">([^<]*)<', r.text)
    assert err and html.unescape(err.group(1)).startswith("not a phone number: '12ab'")
    assert 'value="12ab"' in r.text and 'value="typed note"' in r.text
    assert 'aria-invalid="true" aria-describedby="block-number-error"' in r.text
    assert web.snapshot() == before


def test_the_anonymous_rule_and_the_treatment_are_buttons_that_save(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    done = follow(c, post(c, "/ext/101/settings", csrf, anonymous="block"))
    assert flash(done.text) == "Saved: callers without caller ID are blocked"
    assert re.search(r'value="block" aria-pressed="true"', done.text)
    done = follow(c, post(c, "/ext/101/settings", csrf, treatment="torture"))
    assert flash(done.text) == "Saved: blocked callers hear endless ringing"
    assert re.search(r'value="torture" aria-pressed="true"', done.text)
    show = store_read(web, lambda s, a: settings.ext_show(s, a, "101"))
    assert (show["anonymous"], show["treatment"]) == ("block", "torture")


def test_the_challenge_settings_are_buttons_that_save(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    done = follow(c, post(c, "/ext/101/settings", csrf, anonymous="challenge"))
    assert flash(done.text) == "Saved: callers without caller ID must press a digit"
    done = follow(c, post(c, "/ext/101/settings", csrf, unknown="challenge"))
    assert flash(done.text) == "Saved: callers not on a list must press a digit"
    assert re.search(r'name="unknown" value="challenge" aria-pressed="true"', done.text)
    done = follow(c, post(c, "/ext/101/settings", csrf, challenge_fallback="voicemail"))
    assert flash(done.text) == "Saved: callers who fail the challenge get voicemail"
    done = follow(c, post(c, "/ext/101/settings", csrf, remember="30d"))
    assert flash(done.text) == "Saved: callers who pass the challenge are allowed for 30 days"
    assert re.search(r'name="remember" value="30d" aria-pressed="true"', done.text)
    show = store_read(web, lambda s, a: settings.ext_show(s, a, "101"))
    assert (show["anonymous"], show["unknown"]) == ("challenge", "challenge")
    assert (show["challenge_fallback"], show["remember"]) == ("voicemail", "30d")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"enabled": "yes"}, "enabled: expected on or off"),
        ({"unknown": "block"}, "unknown unknown setting 'block' (choose allow, challenge)"),
        ({"remember": "soon"}, "remember: not a duration: 'soon'"),
        ({"treatment": "hangup"}, "unknown treatment"),
        ({"anonymous": "maybe"}, "anonymous"),
        ({}, "nothing to change"),
    ],
)
def test_a_bad_setting_is_a_400_page_with_the_ops_words(
    web: Web, fields: dict[str, str], words: str
) -> None:
    c, csrf = sign_in(web, "alice")
    before = web.snapshot()
    r = post(c, "/ext/101/settings", csrf, **fields)
    assert r.status_code == 400 and words in html.unescape(r.text)
    assert web.snapshot() == before


def test_removing_a_number(web: Web) -> None:
    c, csrf = sign_in(web, "bob")
    assert [e["value"] for e in entries(web, "102")] == [BOB_BLOCKED]
    done = follow(c, post(c, "/ext/102/block/remove", csrf, number=BOB_BLOCKED))
    assert flash(done.text) == f"Removed {BOB_BLOCKED}"
    assert entries(web, "102") == []
    assert "No blocked numbers yet." in done.text


def test_the_allowlist_has_the_same_controls(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    done = follow(c, post(c, "/ext/101/allow", csrf, number="303-555-0177", note="mum"))
    assert flash(done.text) == "Allowed +13035550177"
    assert [e["value"] for e in entries(web, "101", Kind.ALLOW)] == ["+13035550177"]
    follow(c, post(c, "/ext/101/allow/remove", csrf, number="+13035550177"))
    assert entries(web, "101", Kind.ALLOW) == []


def test_a_long_list_pages_and_searches(web: Web) -> None:
    numbers = [f"+1303555{i:04d}" for i in range(120)]
    store_read(
        web,
        lambda s, a: lists.list_add(
            s, a, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, numbers=numbers
        ),
    )
    c, _ = sign_in(web, "alice")
    first = c.get("/ext/101").text
    shown = re.findall(r'aria-label="Remove (\+\d+)"', first)
    assert shown == numbers[:50]
    assert "120 numbers" in first
    nxt = re.search(r'href="([^"]*block_after=\d+)[^"]*">Next page', first)
    assert nxt
    second = c.get(html.unescape(nxt.group(1))).text
    assert re.findall(r'aria-label="Remove (\+\d+)"', second) == numbers[50:100]
    assert "First page" in second
    found = c.get("/ext/101", params={"block_q": "(303) 555-011"}).text
    assert re.findall(r'aria-label="Remove (\+\d+)"', found) == numbers[110:120]
    assert "10 numbers match" in found


# -- permissions and CSRF ------------------------------------------------------------------------
def test_another_users_extension_is_a_403_page_also_by_url(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    before = web.snapshot()
    for path in ("/ext/102", "/ext/999"):
        r = c.get(path)
        assert r.status_code == 403
        assert "<h1>Not allowed</h1>" in r.text
        assert f"you may not manage extension {path[5:]}" in r.text
    for path, fields in [
        ("/ext/102/block", {"number": "+13035550155"}),
        ("/ext/102/block/remove", {"number": BOB_BLOCKED}),
        ("/ext/102/settings", {"enabled": "off"}),
        ("/account/block", {"number": "+13035550155"}),
        ("/account/settings", {"enabled": "on"}),
    ]:
        r = post(c, path, csrf, **fields)
        assert r.status_code == 403, path
    r = c.get("/account")
    assert r.status_code == 403 and "only an administrator may do this" in r.text
    assert web.snapshot() == before


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_a_change_without_the_csrf_token_changes_nothing(web: Web, token: str | None) -> None:
    c, _ = sign_in(web, "bob")
    before = web.snapshot()
    for path, fields in [
        ("/ext/102/block", {"number": "+13035550155"}),
        ("/ext/102/block/remove", {"number": BOB_BLOCKED}),
        ("/ext/102/settings", {"enabled": "off"}),
        ("/logout", {}),
    ]:
        data = fields if token is None else {**fields, "csrf": token}
        r = c.post(path, data=data)
        assert r.status_code == 403, path
    assert web.snapshot() == before
    assert c.get("/ext/102").status_code == 200  # still signed in


def test_a_json_body_is_not_a_form(web: Web) -> None:
    c, csrf = sign_in(web, "bob")
    before = web.snapshot()
    r = c.post("/ext/102/settings", json={"csrf": csrf, "enabled": "off"})
    assert r.status_code == 403
    assert web.snapshot() == before


# -- recent calls --------------------------------------------------------------------------------
def _log_calls(web: Web, calls: list[CallRecord]) -> None:
    async def go() -> None:
        async with await Store.open(web.db) as store:
            await store.write_calls(calls, {})

    asyncio.run(go())


def test_recent_calls_offer_block_and_unblock_and_show_hostile_names_as_text(web: Web) -> None:
    now = time.time()
    hostile = "<img src=x onerror=alert(1)>\x1b[31m\u202e"
    _log_calls(
        web,
        [
            CallRecord(now - 60, "102", "+13035550161", "+13035550161", "ALLOWED",
                       "not-listed", None, None, 0.01, caller_name=hostile),
            CallRecord(now - 30, "102", BOB_BLOCKED, BOB_BLOCKED, "BLOCKED", "ext-blocklist",
                       "busy", None, 0.01),
            CallRecord(now - 10, "102", "anonymous", None, "ALLOWED", "not-listed", None, None,
                       0.01),
        ],
    )  # fmt: skip
    c, csrf = sign_in(web, "bob")
    page = c.get("/ext/102").text
    assert "<img" not in page and "\x1b" not in page and "\u202e" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;\\x1b[31m\\u202e" in page
    assert 'aria-label="Block +13035550161"' in page
    assert f'aria-label="Unblock {BOB_BLOCKED}"' in page
    assert page.count('aria-label="Block ') == 1  # nothing to block for the anonymous caller
    done = follow(c, post(c, "/ext/102/block", csrf, number="+13035550161"))
    assert flash(done.text) == "Blocked +13035550161"
    assert "+13035550161" in [e["value"] for e in entries(web, "102")]
    # Now on the list: the same row offers Unblock.
    assert 'aria-label="Unblock +13035550161"' in done.text
    assert 'aria-label="Block +13035550161"' not in done.text
    follow(c, post(c, "/ext/102/block/remove", csrf, number=BOB_BLOCKED))
    assert BOB_BLOCKED not in [e["value"] for e in entries(web, "102")]


def test_a_hostile_note_is_text_on_the_page(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    follow(c, post(c, "/ext/101/block", csrf, number="+13035550199", note="<script>x()</script>"))
    page = c.get("/ext/101").text
    assert "<script>x()" not in page and "&lt;script&gt;x()&lt;/script&gt;" in page


# -- the account page (admins) -----------------------------------------------------------------
def test_an_admin_manages_the_account_wide_list_and_settings(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    page = c.get("/account").text
    assert "<h1>Account</h1>" in page and "Account-wide blocking is off" in page
    done = follow(c, post(c, "/account/settings", csrf, enabled="on"))
    assert flash(done.text) == "Account-wide blocking is on"
    done = follow(c, post(c, "/account/block", csrf, number="+13035550188"))
    assert flash(done.text) == "Blocked +13035550188"
    assert "+13035550188" in [e["value"] for e in entries(web, None)]
    assert store_read(web, lambda s, a: settings.account_show(s, a))["enabled"] is True
    # An admin opens any extension's page.
    assert c.get("/ext/102").status_code == 200


def test_unknown_pages_and_static_files(web: Web) -> None:
    c = web.client()
    r = c.get("/no/such/page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    css = c.get("/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "cache-control" not in css.headers
    assert c.get("/api/v1/nope").headers["content-type"] == "application/json"
