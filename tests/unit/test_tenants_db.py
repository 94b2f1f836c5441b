"""Accounts (tenants) in the store: two accounts in one database share nothing.

The same extension 101 in ``default`` and in ``acme`` is two extensions: separate settings,
lists, hit counters, call logs, users, tokens and audit logs; every store method reads and
writes only its own account's rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callscreen.db import reports
from callscreen.db import users as udb
from callscreen.db.audit import AuditEntry
from callscreen.db.errors import InvalidInput, UnknownAccount
from callscreen.db.retention import Pruner
from callscreen.db.store import Store
from callscreen.db.validate import check_account_name
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope, Treatment

AUDIT = AuditEntry(actor="root", source="cli", action="test")


@pytest.fixture
async def stores(db_url: Path | str) -> AsyncIterator[tuple[Store, Store]]:
    """(default, acme): two stores on one database, on SQLite and on PostgreSQL (tests/pg.py)."""
    path = db_url
    async with await Store.open(path) as default:
        await default.account_add("acme")
        async with await Store.open(path, "acme") as acme:
            yield default, acme


async def _log_call(store: Store, account_id: int, ext: str, caller: str, when: float) -> None:
    # The call path's recorder writes the account of the call (the lead's part): a row as it
    # would, written directly.
    await store.conn.execute(
        "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, "
        "reason, treatment, entry_id, duration) VALUES (?, ?, ?, ?, ?, 'BLOCKED', "
        "'blocklist', 'busy', NULL, 0.001)",
        (account_id, when, ext, caller, caller),
    )


async def test_open_names_the_account(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    assert (default.account, default.account_id) == ("default", 1)
    assert acme.account == "acme" and acme.account_id != 1
    with pytest.raises(UnknownAccount, match=r"^no account named 'nope' \(see: callscreen"):
        await Store.open(default.path, "nope")


async def test_same_extension_is_two_extensions(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    await default.set_extension("101", enabled=True, treatment=Treatment.VOICEMAIL)
    await acme.set_extension("101", enabled=False, treatment=Treatment.TORTURE)
    await acme.set_account(enabled=True)
    d_acct, d_ext = await default.settings("101")
    a_acct, a_ext = await acme.settings("101")
    assert (d_ext.enabled, d_ext.treatment) == (True, Treatment.VOICEMAIL)
    assert (a_ext.enabled, a_ext.treatment) == (False, Treatment.TORTURE)
    assert (d_acct.enabled, a_acct.enabled) == (False, True)
    await acme.set_extension("202")
    assert [e.ext for e in await default.extensions()] == ["101"]
    assert [e.ext for e in await acme.extensions()] == ["101", "202"]


async def test_lists_and_hits_stay_in_their_account(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    p1, p2 = parse_pattern("+12025550101", "US"), parse_pattern("+12025550202", "US")
    await default.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [p1], "d", audit=AUDIT)
    await acme.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [p2], "a", audit=AUDIT)
    await acme.add_entries(Scope.ACCOUNT, None, Kind.ALLOW, [p1])
    d_list = await default.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    a_list = await acme.list_entries(Scope.EXTENSION, "101", Kind.BLOCK)
    assert [e.entry.value for e in d_list] == ["+12025550101"]
    assert [e.entry.value for e in a_list] == ["+12025550202"]
    assert await default.count_entries(Scope.ACCOUNT, None, Kind.ALLOW) == 0
    assert await acme.count_entries(Scope.ACCOUNT, None, Kind.ALLOW) == 1
    assert await default.count_entries() == 1 and await acme.count_entries() == 2
    assert [e.entry.value async for e in default.iter_entries()] == ["+12025550101"]
    # removing acme's number from default's list removes nothing
    removed, missing = await default.remove_entries(Scope.EXTENSION, "101", Kind.BLOCK, [p2])
    assert (removed, missing) == ([], [p2])
    assert await acme.count_entries(Scope.EXTENSION, "101", Kind.BLOCK) == 1
    # a hit on acme's entry counts on acme's entry only
    await default.write_calls([], {a_list[0].entry.id: (3, time.time())})
    assert (await acme.list_entries(Scope.EXTENSION, "101", Kind.BLOCK))[0].hits == 3
    assert (await default.list_entries(Scope.EXTENSION, "101", Kind.BLOCK))[0].hits == 0
    # the import counts only its own account's rows
    result = await acme.import_entries(Scope.EXTENSION, "101", Kind.BLOCK, [p1, p2])
    assert (result.added, result.unchanged) == (1, 1)
    assert [r.action for r in await default.audit_log()] == ["test"]
    assert [r.action for r in await acme.audit_log()] == ["test"]


async def test_users_tokens_and_calls_stay_in_their_account(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    await udb.insert_user(default, "alice", "h1", "admin", [], AUDIT)
    await udb.insert_user(acme, "alice", "h2", "user", ["101"], AUDIT)  # the same name: fine
    await udb.insert_user(acme, "bob", "h3", "admin", [], AUDIT, superuser=True)
    d_alice, a_alice = await udb.find_user(default, "alice"), await udb.find_user(acme, "alice")
    assert d_alice is not None and a_alice is not None and d_alice.id != a_alice.id
    assert (d_alice.role, a_alice.role, a_alice.extensions) == ("admin", "user", ("101",))
    assert [u.username for u in await udb.list_users(default)] == ["alice"]
    assert [(u.username, u.superuser) for u in await udb.list_users(acme)] == [
        ("alice", False),
        ("bob", True),
    ]
    assert await udb.password_hash(default, "bob") is None
    token = await udb.insert_token(acme, a_alice.id, "t", "hash-a", None, AUDIT)
    assert await udb.list_tokens(default) == [] and await udb.get_token(default, token.id) is None
    await udb.delete_token(default, token.id, AUDIT)  # not default's: nothing happens
    assert [t.id for t in await udb.list_tokens(acme)] == [token.id]
    cred = await udb.token_credential(default, "hash-a", time.time())
    assert cred is not None and (cred.account, cred.account_id) == ("acme", acme.account_id)
    # the user update and delete of another account's user id change nothing
    await udb.delete_user(default, a_alice.id, AUDIT)
    assert await udb.find_user(acme, "alice") is not None
    # call log: each account's own
    path = default.path
    await _log_call(default, 1, "101", "+12025550111", time.time() - 10)
    await _log_call(default, acme.account_id, "101", "+12025550999", time.time() - 5)
    assert [c.caller_raw for c in await default.recent_calls()] == ["+12025550111"]
    assert [c.caller_raw for c in await acme.logged_calls("101")] == ["+12025550999"]
    caller = await acme.last_caller("101")
    assert caller is None  # acme's one call was blocked

    def report() -> None:  # the CLI's synchronous reports (their own loop on PostgreSQL)
        conn = reports.open_db(path)
        try:
            aid = reports.resolve_account(conn, "acme")
            rows = list(reports.recent(conn, account_id=aid))
            assert [c.caller_raw for c in rows] == ["+12025550999"]
            assert reports.stats(conn, account_id=1)["calls"] == 1
            with pytest.raises(UnknownAccount):
                reports.resolve_account(conn, "nope")
        finally:
            conn.close()

    await asyncio.to_thread(report)
    # prune: one account's call log at a time; the server's pruner does every account
    assert await default.count_calls_before(time.time()) == (
        1,
        pytest.approx(time.time() - 10, abs=2),
    )
    assert await acme.prune_calls(time.time(), 100) == 1
    assert (await default.count_calls_before(time.time()))[0] == 1
    await _log_call(default, acme.account_id, "101", "+12025550999", time.time() - 5)
    pruner = Pruner(default, retention=0.0)
    assert await pruner.run_once() == 2
    assert await default.recent_calls() == [] and await acme.recent_calls() == []


async def test_account_add_list_remove(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    rows = await default.account_list()
    assert [(r.name, r.extensions, r.users) for r in rows] == [("acme", 0, 0), ("default", 0, 0)]
    with pytest.raises(InvalidInput, match="account 'acme' already exists"):
        await default.account_add("acme")
    with pytest.raises(InvalidInput, match=r"^not an account name: 'Acme' \(1-63 lowercase"):
        await default.account_add("Acme")
    with pytest.raises(InvalidInput, match="the default account cannot be removed"):
        await acme.account_remove("default", force=True)
    with pytest.raises(UnknownAccount):
        await default.account_remove("nope")
    await acme.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, [parse_pattern("+1202555", "US")])
    await udb.insert_user(acme, "alice", "h", "admin", [], AUDIT)
    await default.set_extension("101")
    with pytest.raises(InvalidInput, match=r"has 1 extension\(s\) and 1 user\(s\)"):
        await default.account_remove("acme", audit=AUDIT)
    assert await acme.count_entries() == 1  # refused: nothing removed
    gone = await default.account_remove("acme", force=True, audit=AUDIT)
    assert (gone.name, gone.extensions, gone.users) == ("acme", 1, 1)
    assert [r.name for r in await default.account_list()] == ["default"]
    assert [e.ext for e in await default.extensions()] == ["101"]  # default's own: kept
    for table in ("entries", "list_sizes", "extensions", "users", "call_log", "audit_log"):
        row = await default.conn.fetchone(
            f"SELECT count(*) FROM {table} WHERE account_id = ?", (acme.account_id,)
        )
        assert row == (0,), table
    audit = await default.audit_log()
    assert audit[0].after == {"extensions": 1, "users": 1, "force": True}
    with pytest.raises(UnknownAccount):
        await acme.account_settings()  # a view of a removed account reads nothing


async def test_scoped_view_shares_the_connection(stores: tuple[Store, Store]) -> None:
    default, acme = stores
    view = default.scoped(acme.account_id, "acme")
    await view.set_extension("303")
    assert [e.ext for e in await acme.extensions()] == ["303"]
    assert view.conn is default.conn
    await view.close()  # a view closes nothing
    assert [e.ext for e in await default.extensions()] == []


@pytest.mark.parametrize("name", ["acme", "a", "0-x.y_z", "a" * 63])
def test_account_names(name: str) -> None:
    assert check_account_name(name) == name


@pytest.mark.parametrize("name", ["", "Acme", "-a", ".a", "a b", "a" * 64, "a@b", "ä"])
def test_not_account_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="not an account name"):
        check_account_name(name)
