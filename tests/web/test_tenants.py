"""Accounts (tenants) through the API and the portal: an administrator of one account sees and
changes nothing of another, on every route; the same extension and the same username in two
accounts are two; only a superuser manages accounts; sign-in names the account."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest

from callscreen.db.store import CallRecord, Store
from callscreen.ops import accounts, lists, settings, users
from callscreen.ops.actor import SUPERUSER_ONLY, Actor, Role, Source
from callscreen.ops.errors import NotPermitted
from callscreen.policy import Kind, Scope
from callscreen.web.openapi import Endpoint

from .conftest import ACCOUNT_BLOCKED, BOB_BLOCKED, PASSWORDS, Web
from .routes import EMPTY_ACCOUNT, PROTECTED, SUPERUSER_ROUTES, ident, request

ACME_PASSWORDS = {"admin": "acme-admin-pw", "alice": "acme-alice-pw", "acme-bob": "acme-bob-pw"}
ROOT_PASSWORD = "root-password"
#: What only acme has: none of it may reach a user of the default account, and back.
ACME_MARKERS = (
    "+13035550701", "+13035550702", "+13035550799", "+13035550777", "acme-secret", "acme-bob",
    "acme spam",
)  # fmt: skip
DEFAULT_MARKERS = (BOB_BLOCKED, ACCOUNT_BLOCKED, "+13035550111", "carol", "default-secret")


def _build_tenants(web: Web) -> dict[str, str]:
    """Add to the web's database: acme (admin, alice on 101, acme-bob on 102, lists, a call),
    an empty account, a superuser ``root`` of the default account, and a call and a noted
    entry in the default account. Returns the new tokens."""
    cli = Actor.cli()

    async def go() -> dict[str, str]:
        tokens: dict[str, str] = {}
        async with await Store.open(web.db) as default:
            await accounts.account_add(default, cli, "acme")
            await accounts.account_add(default, cli, EMPTY_ACCOUNT)
            await users.user_add(default, cli, "root", ROOT_PASSWORD, admin=True, superuser=True)
            tokens["root"], _ = await users.token_create(default, cli, "root")
            await lists.list_add(default, cli, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK,
                                 numbers=["+13035550112"], note="default-secret")  # fmt: skip
            await default.write_calls([_call("101", "+13035550111")], {})
        async with await Store.open(web.db, "acme") as acme:
            a = cli.in_account(acme.account_id, "acme")
            await acme.set_extension("101", enabled=True)
            await users.user_add(acme, a, "admin", ACME_PASSWORDS["admin"], admin=True)
            await users.user_add(acme, a, "alice", ACME_PASSWORDS["alice"], extensions=["101"])
            await users.user_add(
                acme, a, "acme-bob", ACME_PASSWORDS["acme-bob"], extensions=["102"]
            )
            for name in ("admin", "alice"):
                tokens[f"acme:{name}"], _ = await users.token_create(acme, a, name)
            for ext, number in (("101", "+13035550701"), ("102", "+13035550702")):
                await lists.list_add(acme, a, scope=Scope.EXTENSION, ext=ext, kind=Kind.BLOCK,
                                     numbers=[number], note="acme-secret")  # fmt: skip
            for numbers, names in ((["+13035550799"], []), ([], ["Acme Spam"])):
                await lists.list_add(acme, a, scope=Scope.ACCOUNT, ext=None, kind=Kind.BLOCK,
                                     numbers=numbers, names=names)  # fmt: skip
        # A call of acme's, as the call path will log it (its account on the row).
        with sqlite3.connect(web.db) as conn:
            conn.execute(
                "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, "
                "reason, treatment, entry_id, duration) SELECT id, ?, '101', '+13035550777', "
                "'+13035550777', 'ALLOWED', 'not-listed', NULL, NULL, 0.01 FROM accounts "
                "WHERE name = 'acme'",
                (time.time(),),
            )
        conn.close()
        return tokens

    return asyncio.run(go())


def _call(ext: str, caller: str) -> CallRecord:
    return CallRecord(time.time(), ext, caller, caller, "ALLOWED", "not-listed", None, None, 0.01)


def account_rows(web: Web, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to the account ``name`` (tokens without their last use)."""
    con = sqlite3.connect(web.db)
    try:
        (aid,) = con.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        users_of = "SELECT id FROM users WHERE account_id = ?"
        queries = {
            "accounts": ("SELECT * FROM accounts WHERE id = ?", (aid,)),
            "tokens": (
                "SELECT id, user_id, name, hash, created_at, expires_at FROM tokens "
                f"WHERE user_id IN ({users_of})",
                (aid,),
            ),
            "user_extensions": (
                f"SELECT * FROM user_extensions WHERE user_id IN ({users_of})",
                (aid,),
            ),
        }
        for table in ("extensions", "entries", "list_sizes", "users", "call_log", "audit_log"):
            queries[table] = (f"SELECT * FROM {table} WHERE account_id = ?", (aid,))
        return {t: sorted(con.execute(q, p).fetchall(), key=repr) for t, (q, p) in queries.items()}
    finally:
        con.close()


@pytest.fixture
def tenants(web: Web) -> Web:
    web.tokens = {**web.tokens, **_build_tenants(web)}
    return web


def _leaks(text: str, markers: tuple[str, ...]) -> list[str]:
    low = text.lower()
    return [m for m in markers if m.lower() in low]


SIDES = {
    # who asks (a token), whose data must stay unseen and unchanged, and its markers
    "admin of default": ("admin", "acme", ACME_MARKERS),
    "admin of acme": ("acme:admin", "default", DEFAULT_MARKERS),
}


@pytest.mark.parametrize("side", list(SIDES))
@pytest.mark.parametrize("ep", PROTECTED, ids=ident)
def test_an_admin_sees_and_changes_nothing_of_another_account(
    tenants: Web, ep: Endpoint, side: str
) -> None:
    who, other, markers = SIDES[side]
    before = account_rows(tenants, other)
    c = tenants.client(token=tenants.tokens[who])
    for ext in ("101", "102"):
        method, path, body = request(ep, ext)
        r = c.request(method, path, json=body)
        assert r.status_code in (200, 201, 204, 400, 403, 404), (ident(ep), r.text)
        # What the request itself says (a number to remove, a caller to check) may be echoed.
        unsent = tuple(m for m in markers if m.lower() not in f"{unquote(path)} {body}".lower())
        assert not _leaks(r.text, unsent), (ident(ep), r.text)
    assert account_rows(tenants, other) == before, ident(ep)


def test_the_admins_own_account_is_what_they_see(tenants: Web) -> None:
    """The control for the test above: each admin sees their own account's data (so "no
    marker" is not just an empty answer)."""
    acme = tenants.client(token=tenants.tokens["acme:admin"])
    default = tenants.client("admin")
    assert [e["value"] for e in acme.get("/api/v1/extensions/101/blocklist").json()["entries"]] == [
        "+13035550701"
    ]
    assert [
        e["value"] for e in default.get("/api/v1/extensions/101/blocklist").json()["entries"]
    ] == ["+13035550112"]
    assert [c["caller_raw"] for c in acme.get("/api/v1/extensions/101/calls").json()] == [
        "+13035550777"
    ]
    assert [c["caller_raw"] for c in default.get("/api/v1/extensions/101/calls").json()] == [
        "+13035550111"
    ]
    assert [e["ext"] for e in acme.get("/api/v1/extensions").json()] == ["101", "102"]
    acme_audit = acme.get("/api/v1/audit").json()
    assert acme_audit and all("+13035550112" not in str(r) for r in acme_audit)
    assert acme.get("/api/v1/me").json()["account"] == "acme"


def test_the_same_extension_in_two_accounts_is_two_extensions(tenants: Web) -> None:
    acme_alice = tenants.client(token=tenants.tokens["acme:alice"])
    r = acme_alice.post("/api/v1/extensions/101/blocklist", json={"numbers": ["+13035550166"]})
    assert r.status_code == 200 and r.json()["added"] == ["+13035550166"]
    r = acme_alice.patch("/api/v1/extensions/101", json={"treatment": "torture"})
    assert r.status_code == 200, r.text
    alice = tenants.client("alice")  # alice of default, also on 101
    assert "+13035550166" not in alice.get("/api/v1/extensions/101/blocklist").text
    assert alice.get("/api/v1/extensions/101").json()["treatment"] != "torture"
    # acme's alice owns acme's 101 only: 102 there is acme-bob's
    r = acme_alice.get("/api/v1/extensions/102/blocklist")
    assert r.status_code == 403


@pytest.mark.parametrize("who", ["admin", "acme:admin", "alice"])
@pytest.mark.parametrize("ep", SUPERUSER_ROUTES, ids=ident)
def test_only_a_superuser_manages_accounts(tenants: Web, ep: Endpoint, who: str) -> None:
    before = account_rows(tenants, EMPTY_ACCOUNT), account_rows(tenants, "acme")
    method, path, body = request(ep)
    r = tenants.client(token=tenants.tokens[who]).request(method, path, json=body)
    assert (r.status_code, r.json()) == (403, {"error": SUPERUSER_ONLY}), ident(ep)
    assert (account_rows(tenants, EMPTY_ACCOUNT), account_rows(tenants, "acme")) == before
    with pytest.raises(TypeError):  # no account "newco" was made
        account_rows(tenants, "newco")


def test_a_superuser_adds_lists_and_removes_accounts(tenants: Web) -> None:
    root = tenants.client("root")
    names = [a["name"] for a in root.get("/api/v1/accounts").json()]
    assert names == ["acme", "default", EMPTY_ACCOUNT]
    r = root.post("/api/v1/accounts", json={"name": "newco"})
    assert r.status_code == 201 and r.json()["name"] == "newco"
    r = root.post("/api/v1/accounts", json={"name": "New Co"})
    assert r.status_code == 400 and r.json()["error"].startswith("not an account name: 'New Co'")
    r = root.delete("/api/v1/accounts/acme")
    assert r.status_code == 400 and "has 2 extension(s) and 3 user(s)" in r.json()["error"]
    assert tenants.client(token=tenants.tokens["acme:admin"]).get("/api/v1/me").status_code == 200
    r = root.delete("/api/v1/accounts/acme", params={"force": "true"})
    assert r.status_code == 200 and r.json()["users"] == 3
    assert tenants.client(token=tenants.tokens["acme:admin"]).get("/api/v1/me").status_code == 401
    assert root.delete("/api/v1/accounts/default").status_code == 400
    assert root.delete("/api/v1/accounts/nope").status_code == 404
    audit = tenants.client("admin").get("/api/v1/audit").json()
    assert [(a["action"], a["target"]) for a in audit[:2]] == [
        ("account.remove", "account:acme"),
        ("account.add", "account:newco"),
    ]
    # the superuser is an admin of their own account, and no more elsewhere
    assert root.get("/api/v1/account").status_code == 200


@pytest.mark.parametrize("ep", [ep for ep in SUPERUSER_ROUTES if ep.method != "GET"], ids=ident)
def test_a_superusers_cookie_change_needs_the_csrf_token(tenants: Web, ep: Endpoint) -> None:
    c = tenants.client()
    r = c.post("/api/v1/session", json={"username": "root", "password": ROOT_PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf"]
    method, path, body = request(ep)
    refused = c.request(method, path, json=body)
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "missing or wrong X-CSRF-Token"},
    )
    r = c.request(method, path, json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code in (200, 201), (ident(ep), r.text)


def test_an_admin_cannot_make_or_take_over_a_superuser(tenants: Web) -> None:
    """A plain admin of the superuser's own account may not make one, nor set the password
    of, give a token to, or remove the existing one (that would be the provider's role)."""
    api_admin = Actor("admin", Role.ADMIN, Source.API)

    async def attempt(fn: Callable[[Store, Actor], Any]) -> None:
        async with await Store.open(tenants.db) as store:
            with pytest.raises(NotPermitted, match=SUPERUSER_ONLY):
                await fn(store, api_admin)

    before = account_rows(tenants, "default")
    asyncio.run(attempt(lambda s, a: users.user_add(s, a, "evil", "long-enough", admin=True,
                                                     superuser=True)))  # fmt: skip
    asyncio.run(attempt(lambda s, a: users.user_passwd(s, a, "root", "taken-over!")))
    asyncio.run(attempt(lambda s, a: users.token_create(s, a, "root")))
    asyncio.run(attempt(lambda s, a: users.user_remove(s, a, "root")))
    assert account_rows(tenants, "default") == before


# -- signing in -----------------------------------------------------------------------------------
def test_alice_of_acme_is_not_alice_of_default(tenants: Web) -> None:
    c = tenants.client()
    r = c.post("/api/v1/session", json={"username": "alice", "password": ACME_PASSWORDS["alice"],
                                        "account": "acme"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["user"]["account"] == "acme"
    assert "+13035550701" in c.get("/api/v1/extensions/101/blocklist").text
    for body in (
        {"username": "alice", "password": ACME_PASSWORDS["alice"]},  # default's alice
        {"username": "alice", "password": PASSWORDS["alice"], "account": "acme"},
        {"username": "alice", "password": PASSWORDS["alice"], "account": "nope"},
    ):
        r = tenants.client().post("/api/v1/session", json=body)
        assert (r.status_code, r.json()) == (401, {"error": "wrong username or password"}), body
    r = tenants.client().post("/api/v1/session", json={"username": "alice",
                                                       "password": PASSWORDS["alice"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["user"]["account"] == "default"


def test_the_sign_in_form_has_an_account_field(tenants: Web) -> None:
    page = tenants.client().get("/").text
    assert '<label for="account">Account' in page and 'name="account"' in page
    c = tenants.client()
    r = c.post("/login", data={"username": "alice", "password": ACME_PASSWORDS["alice"],
                               "account": "acme"})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/ext/101"
    ext_page = c.get("/ext/101").text
    assert "+13035550701" in ext_page and "+13035550112" not in ext_page
    assert '<span class="who">alice (acme)</span>' in ext_page  # whose page this is
    wrong = tenants.client().post("/login", data={"username": "alice", "account": "acme",
                                                  "password": PASSWORDS["alice"]})  # fmt: skip
    assert wrong.status_code == 400 and "wrong username or password" in wrong.text
    assert 'value="acme"' in wrong.text  # the account typed is kept, like the username


PAGES = ["/account", "/extensions", "/users", "/audit", "/ext/101", "/ext/102",
         "/account/block.csv", "/account/allow.csv", "/ext/101/block.csv",
         "/ext/102/block.csv"]  # fmt: skip


@pytest.mark.parametrize(
    ("who", "password", "account", "markers"),
    [
        ("admin", PASSWORDS["admin"], "", ACME_MARKERS),
        ("admin", ACME_PASSWORDS["admin"], "acme", DEFAULT_MARKERS),
    ],
    ids=["admin of default", "admin of acme"],
)
def test_portal_pages_show_nothing_of_another_account(
    tenants: Web, who: str, password: str, account: str, markers: tuple[str, ...]
) -> None:
    c = tenants.client()
    r = c.post("/login", data={"username": who, "password": password, "account": account})
    assert r.status_code == 303, r.text
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert not _leaks(r.text, markers), (path, _leaks(r.text, markers))
    users_page = c.get("/users").text
    assert ("acme-bob" in users_page) == (account == "acme")  # the control: one's own shows


def test_portal_changes_stay_in_the_account(tenants: Web) -> None:
    before = account_rows(tenants, "default")
    c = tenants.client()
    c.post("/login", data={"username": "admin", "password": ACME_PASSWORDS["admin"],
                           "account": "acme"})  # fmt: skip
    page = c.get("/ext/101").text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m
    csrf = m.group(1)
    for path, form in (
        ("/ext/101/block", {"number": "+13035550188"}),
        ("/ext/101/settings", {"enabled": "off"}),
        ("/account/block", {"number": "+13035550189"}),
        ("/users/alice/disable", {}),
        ("/users/bob/disable", {}),  # default's bob: not a user of acme
    ):
        r = c.post(path, data={"csrf": csrf, **form})
        errors = re.findall(r"error[^>]*>([^<]+)", r.text)
        assert r.status_code in (303, 404), (path, r.status_code, errors)
    assert account_rows(tenants, "default") == before
    r = tenants.client().post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert r.status_code == 303  # default's alice still signs in
    assert "+13035550188" in c.get("/ext/101").text  # acme's own change landed


def test_ops_settings_are_scoped_by_the_store(tenants: Web) -> None:
    async def go() -> tuple[Any, Any]:
        async with (
            await Store.open(tenants.db, "acme") as acme,
            await Store.open(tenants.db) as default,
        ):
            cli = Actor.cli()
            return await settings.ext_list(acme, cli), await settings.ext_list(default, cli)

    acme_exts, default_exts = asyncio.run(go())
    assert [e["ext"] for e in acme_exts] == ["101", "102"]
    assert "+13035550701" not in str(default_exts)
