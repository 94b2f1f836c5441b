"""The operations layer: validation words (the CLI's), permission, one audit row per change."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callscreen.db.store import CallRecord, NewEntry, Store
from callscreen.numbers import parse_pattern
from callscreen.ops import (
    Actor,
    InvalidInput,
    NotFound,
    NotPermitted,
    Role,
    Source,
    lists,
    settings,
)
from callscreen.ops.actor import ADMIN_ONLY, NOT_YOURS
from callscreen.policy import Kind, Scope

from .test_cli import Run

ADMIN = Actor("root", Role.ADMIN, Source.CLI)
ALICE = Actor("alice", Role.USER, Source.API, frozenset({"101", "105"}), user_id=1, ip="10.0.0.7")


@pytest.fixture
async def store(db_url: Path | str) -> AsyncIterator[Store]:
    """A new store, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    async with await Store.open(db_url) as s:
        yield s


async def cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The CLI's error line for ``args`` (run in a thread: the CLI runs its own event loop)."""
    run = Run(tmp_path / "cli.db", capsys)
    return await asyncio.to_thread(lambda: run(*args, code=2))


async def audit_rows(store: Store) -> list[Any]:
    return await store.audit_log(limit=1000)


async def add(store: Store, actor: Actor, ext: str | None, *numbers: str, **kw: Any) -> Any:
    scope = Scope.EXTENSION if ext else Scope.ACCOUNT
    return await lists.list_add(
        store, actor, scope=scope, ext=ext, kind=Kind.BLOCK, numbers=numbers, **kw
    )


# -- validation: the CLI's words -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("numbers", "kw", "cli_args"),
    [
        (["3035551212", "not-a-number"], {}, ["3035551212", "not-a-number"]),
        ([], {}, []),
        (["3035551212"], {"for_": "soon"}, ["3035551212", "--for", "soon"]),
        (["3035551212"], {"until": "2001-01-01"}, ["3035551212", "--until", "2001-01-01"]),
        (
            ["3035551212"],
            {"for_": "1d", "until": "2099-01-01"},
            ["3035551212", "--for", "1d", "--until", "2099-01-01"],
        ),
    ],
)
async def test_list_add_refuses_with_the_cli_words_and_writes_nothing(
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    numbers: list[str],
    kw: dict[str, Any],
    cli_args: list[str],
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await add(store, ADMIN, "101", *numbers, **kw)
    err = await cli_error(tmp_path, capsys, "block", "add", "--ext", "101", *cli_args)
    assert err == f"callscreen: error: {exc.value}\n"
    assert await store.count_entries() == 0
    assert await audit_rows(store) == []


async def test_a_batch_with_one_bad_number_writes_no_entry_and_no_audit_row(store: Store) -> None:
    with pytest.raises(InvalidInput, match="not a phone number"):
        await add(store, ALICE, "101", "3035551212", "+1900*", "hello")
    assert await store.count_entries() == 0
    assert await audit_rows(store) == []


# -- permission ----------------------------------------------------------------------------------
async def test_a_user_manages_their_own_extension(store: Store) -> None:
    assert (await add(store, ALICE, "101", "3035551212"))["added"] == ["+13035551212"]
    page = await lists.list_entries(store, ALICE, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK)
    assert page["total"] == 1 and page["entries"][0]["pattern"] == "+13035551212"
    assert (await settings.ext_set(store, ALICE, "101", enabled=True))["enabled"] is True
    assert (await settings.ext_show(store, ALICE, "101"))["blocked_numbers"] == 1
    (row,) = [r for r in await audit_rows(store) if r.action == "block.add"]
    assert (row.actor, row.source, row.ip, row.target) == ("alice", "api", "10.0.0.7", "ext:101")


async def test_another_extension_and_a_missing_one_are_refused_with_the_same_words(
    store: Store,
) -> None:
    await settings.ext_set(store, ADMIN, "102", enabled=True)  # exists, not alice's
    await add(store, ADMIN, "102", "3035551212")
    before = len(await audit_rows(store))
    words = []
    for ext in ("102", "999"):  # 999 does not exist
        calls = [
            add(store, ALICE, ext, "3035551213"),
            lists.list_remove(
                store,
                ALICE,
                scope=Scope.EXTENSION,
                ext=ext,
                kind=Kind.BLOCK,
                numbers=["3035551212"],
            ),
            lists.list_entries(store, ALICE, scope=Scope.EXTENSION, ext=ext, kind=Kind.ALLOW),
            lists.block_last(store, ALICE, ext),
            settings.ext_show(store, ALICE, ext),
            settings.ext_set(store, ALICE, ext, enabled=False),
            settings.check(store, ALICE, ext, "3035551212"),
            settings.recent_calls(store, ALICE, ext),
        ]
        for call in calls:
            with pytest.raises(NotPermitted) as exc:
                await call
            words.append(str(exc.value).replace(ext, "EXT"))
    assert set(words) == {NOT_YOURS.format(ext="EXT")}
    assert len(await audit_rows(store)) == before
    assert await store.count_entries(Scope.EXTENSION, "102", Kind.BLOCK) == 1


async def test_admin_only_operations_refuse_a_user(store: Store) -> None:
    calls = [
        add(store, ALICE, None, "3035551212"),
        lists.list_entries(store, ALICE, scope=Scope.ACCOUNT, ext=None, kind=Kind.BLOCK),
        settings.account_show(store, ALICE),
        settings.account_set(store, ALICE, enabled=True),
        settings.audit_list(store, ALICE),
        settings.ext_set(store, ALICE, "101", mailbox="7@default"),
        lists.import_rows(store, ALICE, [], scope=None, ext=None),
    ]
    for call in calls:
        with pytest.raises(NotPermitted, match=ADMIN_ONLY):
            await call
    assert await audit_rows(store) == []
    assert (await store.account_settings()).enabled is False


async def test_ext_list_admin_sees_configured_a_user_their_own(store: Store) -> None:
    await settings.ext_set(store, ADMIN, "102", enabled=True)
    assert [e["ext"] for e in await settings.ext_list(store, ADMIN)] == ["102"]
    mine = await settings.ext_list(store, ALICE)
    assert [e["ext"] for e in mine] == ["101", "105"] and mine[0]["enabled"] is False


# -- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"enabled": "yes"}, "enabled: expected true or false"),
        ({"enabled": 1}, "enabled: expected true or false"),
        (
            {"anonymous": "maybe"},
            "unknown anonymous setting 'maybe' (choose allow, challenge, block)",
        ),
        ({"unknown": "block"}, "unknown unknown setting 'block' (choose allow, challenge)"),
        (
            {"remember": "forever"},
            "remember: not a duration: 'forever' (e.g. 30d, 12h, 0 or account)",
        ),
        ({"remember": 30}, "remember: not a duration: 30 (e.g. 30d, 12h, 0 or account)"),
        (
            {"challenge_fallback": "torture"},
            "unknown challenge fallback 'torture' (choose voicemail, busy, hangup)",
        ),
        (
            {"treatment": "challenge"},
            "unknown treatment 'challenge' (choose voicemail, busy, torture)",
        ),
        ({"treatment": "shout"}, "unknown treatment 'shout' (choose voicemail, busy, torture)"),
        ({"mailbox": "x y"}, "not a mailbox: 'x y' (expected BOX@CONTEXT, e.g. 101@default)"),
    ],
)
async def test_ext_set_validates_types_and_values(
    store: Store, kw: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await settings.ext_set(store, ADMIN, "101", **kw)
    assert str(exc.value) == words
    assert await store.extensions() == [] and await audit_rows(store) == []


async def test_ext_set_mailbox_error_is_the_clis(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await settings.ext_set(store, ADMIN, "101", mailbox="101@default,u")
    err = await cli_error(tmp_path, capsys, "ext", "set", "101", "--mailbox", "101@default,u")
    assert err == f"callscreen: error: {exc.value}\n"


async def test_settings_changes_write_one_audit_row_with_before_and_after(store: Store) -> None:
    data = await settings.ext_set(store, ADMIN, "101", enabled=True, treatment="voicemail")
    assert data == {
        "ext": "101",
        "enabled": True,
        "anonymous": "allow",
        "treatment": "voicemail",
        "treatment_set": True,
        "mailbox": "101@default",
        "unknown": "allow",
        "remember": "0",
        "remember_set": False,
        "challenge_fallback": "busy",
        "challenge_fallback_set": False,
    }
    acc = await settings.account_set(store, ADMIN, anonymous="block")
    assert acc == {
        "enabled": False,
        "anonymous": "block",
        "unknown": "allow",
        "treatment": "busy",
        "remember": "0",
        "challenge_fallback": "busy",
    }
    rows = await audit_rows(store)
    assert [(r.action, r.target) for r in rows] == [
        ("account.set", "account"),
        ("ext.set", "ext:101"),
    ]
    account_before = {
        "enabled": False,
        "anonymous": "allow",
        "treatment": "busy",
        "unknown": "allow",
        "remember": 0.0,
        "fallback": "busy",
    }
    assert rows[0].before == account_before
    assert rows[0].after == {**account_before, "anonymous": "block"}
    assert rows[1].before == {
        "enabled": False,
        "anonymous": "allow",
        "treatment": None,
        "mailbox": None,
        "unknown": "allow",
        "remember": None,
        "fallback": None,
    }
    assert rows[1].after["enabled"] is True and rows[1].after["treatment"] == "voicemail"
    assert (rows[1].actor, rows[1].source, rows[1].ip) == ("root", "cli", None)


# -- lists ---------------------------------------------------------------------------------------
async def test_list_changes_write_one_audit_row_each(store: Store) -> None:
    await add(store, ADMIN, "101", "303-555-1212", "+1900*", note="spam")
    removed = await lists.list_remove(
        store,
        ADMIN,
        scope=Scope.EXTENSION,
        ext="101",
        kind=Kind.BLOCK,
        numbers=["3035551212", "3035550000"],
    )
    assert removed == {"removed": ["+13035551212"], "not_listed": ["+13035550000"]}
    await lists.list_add(
        store, ADMIN, scope=Scope.ACCOUNT, ext=None, kind=Kind.ALLOW, numbers=["3035559999"]
    )
    rows = await audit_rows(store)
    assert [(r.action, r.target) for r in rows] == [
        ("allow.add", "account"),
        ("block.remove", "ext:101"),
        ("block.add", "ext:101"),
    ]
    assert rows[1].after == {"removed": ["+13035551212"], "not_listed": ["+13035550000"]}
    assert rows[2].after == {"added": ["+13035551212", "+1900*"], "already_listed": []}


async def test_a_big_batch_is_recorded_compactly(store: Store) -> None:
    numbers = [f"+1303555{i:04d}" for i in range(120)]
    assert len((await add(store, ADMIN, "101", *numbers))["added"]) == 120
    (row,) = await audit_rows(store)
    assert len(row.after["added"]) == 50 and row.after["added_count"] == 120


async def test_list_entries_pages_and_searches(store: Store) -> None:
    await add(store, ADMIN, "101", "303-555-1212", "+1900*", note="telemarketer")
    await add(store, ADMIN, "101", "+442079460000", note="london")

    async def search(q: str | None, **kw: Any) -> dict[str, Any]:
        return await lists.list_entries(
            store, ADMIN, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, q=q, **kw
        )

    page = await search(None, limit=2, offset=1)
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [e["pattern"] for e in page["entries"]] == ["+1900*", "+442079460000"]
    assert [e["pattern"] for e in (await search("(303) 555-1212"))["entries"]] == ["+13035551212"]
    assert (await search("+44"))["total"] == 1
    assert (await search("+1"))["total"] == 2
    assert [e["note"] for e in (await search("LOND"))["entries"]] == ["london"]
    assert (await search("tele"))["total"] == 2
    assert (await search("%"))["total"] == 0  # LIKE wildcards are text
    with pytest.raises(InvalidInput):
        await search(None, limit=0)


async def test_block_last(store: Store) -> None:
    with pytest.raises(NotFound, match="no call to extension 101 got through yet"):
        await lists.block_last(store, ALICE, "101")
    call = CallRecord(time.time(), "101", "303-555-1212", "+13035551212", "ALLOWED", "not-listed",
                      None, None, 0.01)  # fmt: skip
    await store.write_calls([call], {})
    data = await lists.block_last(store, ALICE, "101", for_="1d")
    assert data["number"] == "+13035551212" and data["added"] is True
    assert data["blocking_on"] is False
    (row,) = await audit_rows(store)
    assert (row.action, row.target, row.actor) == ("block.last", "ext:101", "alice")
    calls = await settings.recent_calls(store, ALICE, "101")
    assert calls[0]["caller_raw"] == "303-555-1212" and calls[0]["result"] == "ALLOWED"
    # check reads through the call path's own lookup (SQLite's, or PostgreSQL's PgLookup)
    blocked = await settings.check(store, ALICE, "101", "3035551212")
    assert blocked["reason"] == "blocking-off"  # blocking is off for 101
    await settings.ext_set(store, ALICE, "101", enabled=True)
    assert (await settings.check(store, ALICE, "101", "3035551212"))["result"] == "BLOCKED"


async def test_import_writes_one_audit_row_with_counts(store: Store) -> None:
    rows = [
        NewEntry(Scope.EXTENSION, "101", Kind.BLOCK, parse_pattern(f"+1303555{i:04d}"))
        for i in range(30)
    ]
    await lists.import_rows(store, ALICE, rows, scope=Scope.EXTENSION, ext="101", dry_run=True)
    assert await audit_rows(store) == []  # a dry run changes nothing, records nothing
    result = await lists.import_rows(
        store, ALICE, rows, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK
    )
    assert result.added == 30
    (row,) = await audit_rows(store)
    assert (row.action, row.target) == ("import", "ext:101")
    assert row.after == {
        "list": "block",
        "added": 30,
        "updated": 0,
        "unchanged": 0,
        "duplicates": 0,
    }


async def test_audit_list_newest_first_and_since(store: Store) -> None:
    await add(store, ADMIN, "101", "3035551212")
    await settings.ext_set(store, ADMIN, "101", enabled=True)
    items = await settings.audit_list(store, ADMIN)
    assert [i["action"] for i in items] == ["ext.set", "block.add"]
    assert set(items[0]) == {
        "id", "time", "actor", "source", "ip", "action", "target", "before", "after"
    }  # fmt: skip
    assert len(await settings.audit_list(store, ADMIN, limit=1)) == 1
    assert await settings.audit_list(store, ADMIN, since=time.time() + 60) == []


# -- the CLI's audit rows and the audit command --------------------------------------------------
def test_a_cli_change_is_audited_as_the_os_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(tmp_path / "cs.db", capsys)
    run("block", "add", "--ext", "101", "3035551212", "--note", "\u202eevil")
    run("ext", "set", "101", "--enable")
    run("block", "add", "--ext", "101", "3035551212", "hello", code=2)
    items = run.json("audit")
    assert isinstance(items, list)
    assert [(i["action"], i["source"], i["actor"]) for i in items] == [
        ("ext.set", "cli", Actor.cli().name),
        ("block.add", "cli", Actor.cli().name),
    ]
    table = run("audit", "--since", "1h")
    assert "ext.set" in table and "block.add" in table and Actor.cli().name in table
    assert "\u202e" not in table
    run("audit", "--since", "yesterday-ish", code=2)
    assert run.json("audit", "--limit", "1") == items[:1]


def test_the_call_path_imports_nothing_of_ops() -> None:
    """A call goes fastagi -> screening -> db: users, audit listing and HTTP stay off it."""
    code = (
        "import sys, callscreen.app, callscreen.screening, callscreen.fastagi, "
        "callscreen.blocklast; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('callscreen.ops', 'callscreen.cli'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_cli_import_writes_one_audit_row_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Run(tmp_path / "cs.db", capsys)
    csv = tmp_path / "in.csv"
    csv.write_text("".join(f"+1303555{i:04d},n\n" for i in range(200)))
    run("import", "--ext", "101", "--list", "allow", str(csv))
    run("import", "--ext", "101", str(csv), "--dry-run")
    items = run.json("audit")
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    assert (item["action"], item["target"], item["source"]) == ("import", "ext:101", "cli")
    assert item["after"] == {
        "list": "allow", "added": 200, "updated": 0, "unchanged": 0, "duplicates": 0
    }  # fmt: skip


async def test_keyset_pages_walk_the_whole_list_once_and_sizes_stay_exact(store: Store) -> None:
    numbers = [f"+1303555{i:04d}" for i in range(0, 2000, 7)]
    await add(store, ADMIN, "101", *numbers)
    await add(store, ADMIN, "101", "+1900*")
    await add(store, ADMIN, "102", "+13035550000")  # another list: not counted in 101's
    seen: list[str] = []
    after = None
    while True:
        page = await lists.list_entries(
            store, ADMIN, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, limit=50, after=after
        )
        assert page["total"] == len(numbers) + 1
        seen += [e["pattern"] for e in page["entries"]]
        if page["next"] is None:
            break
        after = page["next"]
    whole = await lists.list_entries(
        store, ADMIN, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK
    )
    assert seen == [e["pattern"] for e in whole["entries"]]  # same order, no gap, no repeat
    assert len(seen) == len(set(seen)) == len(numbers) + 1
    await lists.list_remove(
        store, ADMIN, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, numbers=numbers[:10]
    )
    await add(store, ADMIN, "101", *numbers[:3])  # 3 back, 3 already listed now
    for ext in ("101", "102"):  # the kept sizes agree with a count of the rows
        kept = await store.count_entries(Scope.EXTENSION, ext, Kind.BLOCK)
        row = await store.conn.fetchone(
            "SELECT count(*) FROM entries WHERE scope = 'ext' AND ext = ? AND kind = 'block'",
            (ext,),
        )
        assert row is not None and kept == row[0]
    with pytest.raises(InvalidInput, match="offset or after"):
        await lists.list_entries(
            store, ADMIN, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, offset=5, after=1
        )


async def test_a_setting_that_changes_nothing_writes_no_audit_row(store: Store) -> None:
    await settings.ext_set(store, ADMIN, "101", enabled=True)
    await settings.account_set(store, ADMIN, treatment="busy")  # busy is the default already
    await settings.ext_set(store, ADMIN, "101", enabled=True)  # already on
    rows = await audit_rows(store)
    assert [(r.action, r.target) for r in rows] == [("ext.set", "ext:101")]
