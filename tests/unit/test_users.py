"""Users, roles, tokens, sessions and login: the operations the CLI, the API and the portal use."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callscreen.db.store import Store
from callscreen.ops import Actor, InvalidInput, NotFound, NotPermitted, Role, Source, auth, users
from callscreen.ops.auth import WRONG_LOGIN

PW = "correct horse battery"
ADMIN = Actor(name="root", role=Role.ADMIN, source=Source.CLI)


@pytest.fixture
async def store(db_url: Path | str) -> AsyncIterator[Store]:
    """A new store, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    async with await Store.open(db_url) as s:
        yield s


async def audit(store: Store) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in await store._fetchall(
            "SELECT action, actor, source, ip, target FROM audit_log ORDER BY id"
        )
    ]


async def count(store: Store, table: str) -> int:
    return int((await store._fetchall(f"SELECT count(*) FROM {table}"))[0][0])


async def alice(store: Store) -> Actor:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101", "102"])
    return (await auth.login(store, "alice", PW, ip="10.0.0.1")).actor


# -- hashing and storage ------------------------------------------------------------------------
async def test_passwords_are_argon2id_and_no_secret_is_in_the_file(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    (hashed,) = (await store._fetchall("SELECT password_hash FROM users"))[0]
    assert hashed.startswith("$argon2id$")
    token, _ = await users.token_create(store, ADMIN, "alice", name="ci")
    login = await auth.login(store, "alice", PW, ip=None)
    await store.close()
    if store.dialect.name == "postgresql":
        return  # no file to read: the SQL above is the same on both backends
    assert isinstance(store.path, Path)
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    for secret in (PW, token, login.cookie):
        assert secret.encode() not in raw, secret
    assert auth.hash_secret(token).encode() in raw  # what is stored instead


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("username", "password", "kwargs", "words"),
    [
        ("alice", "short", {"extensions": ["101"]}, "too short"),
        ("-alice", PW, {"extensions": ["101"]}, "not a username"),
        ("al ice", PW, {"extensions": ["101"]}, "not a username"),
        ("a" * 65, PW, {"extensions": ["101"]}, "not a username"),
        ("alice", PW, {"extensions": ["10,1"]}, "not an extension"),
        ("alice", PW, {}, "at least one extension"),
        ("alice", PW, {"extensions": ["101"], "admin": True}, "not both"),
    ],
)
async def test_user_add_refuses_bad_input_and_writes_nothing(
    store: Store, username: str, password: str, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as exc:
        await users.user_add(store, ADMIN, username, password, **kwargs)
    assert "\n" not in str(exc.value)
    assert await count(store, "users") == 0 and await audit(store) == []


async def test_duplicate_username_is_refused_case_insensitively(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    with pytest.raises(InvalidInput, match="already exists"):
        await users.user_add(store, ADMIN, "ALICE", PW, extensions=["102"])
    assert await count(store, "users") == 1 and len(await audit(store)) == 1


async def test_unknown_user_is_not_found(store: Store) -> None:
    for call in (
        users.user_show(store, ADMIN, "nobody"),
        users.user_set(store, ADMIN, "nobody", disabled=True),
        users.user_passwd(store, ADMIN, "nobody", PW),
        users.user_remove(store, ADMIN, "nobody"),
        users.token_create(store, ADMIN, "nobody"),
        users.token_revoke(store, ADMIN, 42),
    ):
        with pytest.raises(NotFound):
            await call
    assert await audit(store) == []


# -- login ----------------------------------------------------------------------------------------
async def test_login_right_password_and_identical_refusals(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    await users.user_add(store, ADMIN, "bob", PW, extensions=["102"])
    await users.user_set(store, ADMIN, "bob", disabled=True)
    ok = await auth.login(store, "Alice", PW, ip="10.0.0.1")
    assert ok.actor.name == "alice" and ok.actor.extensions == {"101"}
    assert ok.actor.role is Role.USER and ok.actor.ip == "10.0.0.1"
    assert ok.expires_at == pytest.approx(time.time() + auth.SESSION_TTL, abs=5)
    messages = set()
    for name, pw in (("alice", PW + "x"), ("nobody", PW), ("bob", PW), ("alice", "")):
        with pytest.raises(NotPermitted) as exc:
            await auth.login(store, name, pw, ip=None)
        messages.add(str(exc.value))
    assert messages == {WRONG_LOGIN}
    logins = [a for a in await audit(store) if a[0] == "user.login"]
    assert logins == [("user.login", "alice", "portal", "10.0.0.1", "user:alice")]


async def test_unknown_user_login_takes_as_long_as_a_wrong_password(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])

    async def timed(name: str) -> float:
        t0 = time.perf_counter()
        with pytest.raises(NotPermitted):
            await auth.login(store, name, "wrong password", ip=None)
        return time.perf_counter() - t0

    known = statistics.median([await timed("alice") for _ in range(5)])
    unknown = statistics.median([await timed("nobody") for _ in range(5)])
    assert known > 0.005  # a real argon2 verification ran
    assert 0.5 < unknown / known < 2.0, (known, unknown)


async def test_old_parameters_are_rehashed_on_login(store: Store) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PW)
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    async with store._transaction() as db:
        await db.execute("UPDATE users SET password_hash = ?", (weak,))
    await auth.login(store, "alice", PW, ip=None)
    (hashed,) = (await store._fetchall("SELECT password_hash FROM users"))[0]
    assert hashed != weak and not auth._hasher.check_needs_rehash(hashed)


# -- sessions -------------------------------------------------------------------------------------
async def test_session_lookup_expiry_and_logout(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    login = await auth.login(store, "alice", PW, ip=None)
    found = await auth.session_actor(store, login.cookie, ip="10.0.0.2")
    assert found is not None
    actor, csrf = found
    assert (actor.name, actor.source, actor.ip, csrf) == (
        "alice",
        Source.PORTAL,
        "10.0.0.2",
        login.csrf,
    )
    assert await auth.session_actor(store, login.cookie + "x", ip=None) is None
    assert await auth.session_actor(store, "", ip=None) is None
    await auth.logout(store, login.cookie)
    assert await auth.session_actor(store, login.cookie, ip=None) is None

    short = await auth.login(store, "alice", PW, ip=None, ttl=0.2)
    assert await auth.session_actor(store, short.cookie, ip=None) is not None
    await asyncio.sleep(0.3)
    assert await auth.session_actor(store, short.cookie, ip=None) is None


@pytest.mark.parametrize("change", ["passwd", "disable", "remove"])
async def test_password_change_disable_and_remove_end_sessions_at_once(
    store: Store, change: str
) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    login = await auth.login(store, "alice", PW, ip=None)
    token, _ = await users.token_create(store, ADMIN, "alice")
    if change == "passwd":
        await users.user_passwd(store, login.actor, "alice", "a new password")
    elif change == "disable":
        await users.user_set(store, ADMIN, "alice", disabled=True)
    else:
        await users.user_remove(store, ADMIN, "alice")
    assert await auth.session_actor(store, login.cookie, ip=None) is None
    assert await count(store, "sessions") == 0
    if change != "passwd":
        assert await auth.token_actor(store, token, ip=None) is None
    else:
        assert await auth.token_actor(store, token, ip=None) is not None  # tokens survive
    if change == "remove":
        assert await count(store, "tokens") == 0 and await count(store, "user_extensions") == 0


async def test_enable_restores_tokens_but_not_sessions(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    login = await auth.login(store, "alice", PW, ip=None)
    token, _ = await users.token_create(store, ADMIN, "alice")
    await users.user_set(store, ADMIN, "alice", disabled=True)
    with pytest.raises(NotPermitted, match=WRONG_LOGIN):
        await auth.login(store, "alice", PW, ip=None)
    await users.user_set(store, ADMIN, "alice", disabled=False)
    assert await auth.token_actor(store, token, ip=None) is not None
    assert await auth.session_actor(store, login.cookie, ip=None) is None


# -- tokens ---------------------------------------------------------------------------------------
async def test_token_lifecycle(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    token, row = await users.token_create(store, ADMIN, "alice", name="ci", expires="90d")
    assert set(row) == {"id", "user", "name", "created", "expires", "last_used"}
    assert (row["user"], row["name"], row["last_used"]) == ("alice", "ci", None)
    assert token not in str(await users.token_list(store, ADMIN))
    actor = await auth.token_actor(store, token, ip="10.0.0.3")
    assert actor is not None
    assert (actor.name, actor.source, actor.ip, actor.extensions) == (
        "alice",
        Source.API,
        "10.0.0.3",
        {"101"},
    )
    assert (await users.token_list(store, ADMIN, "alice"))[0]["last_used"] is not None
    assert await auth.token_actor(store, token[:-1], ip=None) is None
    await users.token_revoke(store, ADMIN, row["id"])
    assert await auth.token_actor(store, token, ip=None) is None
    assert await users.token_list(store, ADMIN) == []


async def test_token_expires(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    token, _ = await users.token_create(store, ADMIN, "alice", expires="1s")
    assert await auth.token_actor(store, token, ip=None) is not None
    await asyncio.sleep(1.1)
    assert await auth.token_actor(store, token, ip=None) is None


async def test_token_create_refuses_bad_input(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    before = await audit(store)
    for kwargs in ({"expires": "soon"}, {"expires": "0d"}, {"name": "x" * 101}):
        with pytest.raises(InvalidInput):
            await users.token_create(store, ADMIN, "alice", **kwargs)
    assert await count(store, "tokens") == 0 and await audit(store) == before


# -- permissions ----------------------------------------------------------------------------------
async def test_a_user_cannot_administer_users_or_others_tokens(store: Store) -> None:
    me = await alice(store)
    await users.user_add(store, ADMIN, "bob", PW, extensions=["103"])
    bob_token, bob_row = await users.token_create(store, ADMIN, "bob")
    before = await audit(store)
    for call in (
        users.user_add(store, me, "eve", PW, extensions=["101"]),
        users.user_list(store, me),
        users.user_show(store, me, "bob"),
        users.user_set(store, me, "alice", extensions=["103"]),
        users.user_set(store, me, "alice", admin=True),
        users.user_passwd(store, me, "bob", "hijacked password"),
        users.user_remove(store, me, "bob"),
        users.token_create(store, me, "bob"),
        users.token_list(store, me, "bob"),
    ):
        with pytest.raises(NotPermitted):
            await call
    with pytest.raises(NotFound):  # another's token is "no token", as a missing one
        await users.token_revoke(store, me, bob_row["id"])
    assert await audit(store) == before
    assert await auth.token_actor(store, bob_token, ip=None) is not None
    with pytest.raises(NotPermitted):
        await auth.login(store, "bob", "hijacked password", ip=None)


async def test_a_user_manages_their_own_password_and_tokens(store: Store) -> None:
    me = await alice(store)
    assert (await users.user_show(store, me, "alice"))["extensions"] == ["101", "102"]
    token, row = await users.token_create(store, me, "alice", name="mine")
    assert [t["id"] for t in await users.token_list(store, me)] == [row["id"]]
    await users.token_revoke(store, me, row["id"])
    assert await auth.token_actor(store, token, ip=None) is None
    await users.user_passwd(store, me, "alice", "another password")
    await auth.login(store, "alice", "another password", ip=None)
    who = [(a[0], a[1], a[2], a[3]) for a in await audit(store)][-4:]
    assert who == [
        ("token.create", "alice", "portal", "10.0.0.1"),
        ("token.revoke", "alice", "portal", "10.0.0.1"),
        ("user.passwd", "alice", "portal", "10.0.0.1"),
        ("user.login", "alice", "portal", None),
    ]


# -- user_set and the last admin ------------------------------------------------------------------
async def test_user_set_role_and_extensions(store: Store) -> None:
    await users.user_add(store, ADMIN, "root", PW, admin=True)
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    d = await users.user_set(store, ADMIN, "alice", extensions=["102", "103"])
    assert (d["role"], d["extensions"]) == ("user", ["102", "103"])
    d = await users.user_set(store, ADMIN, "alice", admin=True)
    assert (d["role"], d["extensions"]) == ("admin", [])
    with pytest.raises(InvalidInput, match="at least one extension"):
        await users.user_set(store, ADMIN, "alice", admin=False)
    with pytest.raises(InvalidInput, match="--no-admin"):
        await users.user_set(store, ADMIN, "alice", extensions=["101"])
    d = await users.user_set(store, ADMIN, "alice", admin=False, extensions=["101"])
    assert (d["role"], d["extensions"]) == ("user", ["101"])
    assert (await auth.login(store, "alice", PW, ip=None)).actor.extensions == {"101"}
    actions = [a[0] for a in await audit(store)]
    assert actions.count("user.set") == 3


async def test_the_last_enabled_admin_stays(store: Store) -> None:
    await users.user_add(store, ADMIN, "root", PW, admin=True)
    for change in (
        users.user_set(store, ADMIN, "root", disabled=True),
        users.user_set(store, ADMIN, "root", admin=False, extensions=["101"]),
        users.user_remove(store, ADMIN, "root"),
    ):
        with pytest.raises(InvalidInput, match="last enabled administrator"):
            await change
    assert (await users.user_show(store, ADMIN, "root"))["role"] == "admin"
    await users.user_add(store, ADMIN, "root2", PW, admin=True)
    await users.user_remove(store, ADMIN, "root")
    assert [u["username"] for u in await users.user_list(store, ADMIN)] == ["root2"]


async def test_shapes_hold_no_hash(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    await users.token_create(store, ADMIN, "alice")
    d = await users.user_show(store, ADMIN, "alice")
    assert set(d) == {
        "username",
        "role",
        "extensions",
        "disabled",
        "superuser",
        "created",
        "updated",
        "tokens",
    }
    assert d["tokens"] == 1
    rows = await store._fetchall("SELECT before, after FROM audit_log")
    assert "argon2" not in str(rows) and "hash" not in str(rows)


async def test_lookups_check_disabled_themselves(store: Store) -> None:
    """Not only the deletion at disable time: a row flipped by another writer counts too."""
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    login = await auth.login(store, "alice", PW, ip=None)
    token, _ = await users.token_create(store, ADMIN, "alice")
    async with store._transaction() as db:
        await db.execute("UPDATE users SET disabled = 1")
    assert await auth.session_actor(store, login.cookie, ip=None) is None
    assert await auth.token_actor(store, token, ip=None) is None


async def test_user_set_without_a_change_writes_nothing(store: Store) -> None:
    await users.user_add(store, ADMIN, "alice", PW, extensions=["101"])
    before = await audit(store)
    d = await users.user_set(store, ADMIN, "alice", extensions=["101"], admin=False, disabled=False)
    assert d["extensions"] == ["101"] and await audit(store) == before
