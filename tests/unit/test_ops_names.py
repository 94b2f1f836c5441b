"""ops.lists with caller-name rules: validate -> permit -> store -> audit, the CLI's words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callscreen.db.store import Store
from callscreen.ops import InvalidInput, NotPermitted, lists
from callscreen.ops.actor import ADMIN_ONLY, NOT_YOURS
from callscreen.policy import Kind, Scope

from .test_ops import ADMIN, ALICE


@pytest.fixture
async def store(db_url: Path | str) -> AsyncIterator[Store]:
    """A new store, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    async with await Store.open(db_url) as s:
        yield s


async def add_names(store: Store, actor: Any, ext: str | None, *names: str, **kw: Any) -> Any:
    scope = Scope.EXTENSION if ext else Scope.ACCOUNT
    kind = kw.pop("kind", Kind.BLOCK)
    return await lists.list_add(
        store, actor, scope=scope, ext=ext, kind=kind, numbers=kw.pop("numbers", []),
        names=names, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("names", "kw", "words"),
    [
        (("Scam Likely", "a*b"), {}, "a * may only start or end a caller name: 'a*b'"),
        (("*",), {}, "a caller name needs more than *: '*'"),
        (("",), {}, 'give a caller name (e.g. "Scam Likely", "V*", "*spam*")'),
        (("ok", "bad\u202e"), {}, "a caller name cannot hold control characters"),
        (("V*",), {"numbers": ["3035551212"]}, "give numbers or --name, not both"),
        (
            ("Mum",),
            {"kind": Kind.ALLOW},
            "a caller name can only be blocked: anyone can send any name, so a name never lets"
            " a call through",
        ),
        (("V*",), {"for_": "soon"}, "--for: "),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(
    store: Store, names: tuple[str, ...], kw: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await add_names(store, ADMIN, "101", *names, **kw)
    assert str(exc.value).startswith(words) if words.endswith(": ") else str(exc.value) == words
    assert await store.count_entries() == 0
    assert await store.audit_log(limit=10) == []


async def test_validation_comes_before_permission(store: Store) -> None:
    with pytest.raises(InvalidInput):  # a bad rule on someone else's extension: the rule's error
        await add_names(store, ALICE, "102", "a*b")
    with pytest.raises(NotPermitted) as exc:
        await add_names(store, ALICE, "102", "V*")
    assert str(exc.value) == NOT_YOURS.format(ext="102")
    with pytest.raises(NotPermitted) as exc:
        await add_names(store, ALICE, None, "V*")
    assert str(exc.value) == ADMIN_ONLY
    assert await store.count_entries() == 0


async def test_add_and_remove_write_one_audit_row_each_marked_as_names(store: Store) -> None:
    out = await add_names(store, ALICE, "101", "Scam Likely", "V*", "scam  LIKELY")
    # Typed twice another way: listed once (as numbers typed two ways in one batch are).
    assert out == {"added": ["scam likely", "v*"], "already_listed": ["scam likely"]}
    gone = await lists.list_remove(
        store, ALICE, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, numbers=[],
        names=["SCAM LIKELY", "*nope*"],
    )  # fmt: skip
    assert gone == {"removed": ["scam likely"], "not_listed": ["*nope*"]}
    removed, added = await store.audit_log(limit=10)  # newest first
    assert (added.action, added.target, added.actor) == ("block.add", "ext:101", "alice")
    assert added.after == {
        "added": ["scam likely", "v*"],
        "already_listed": ["scam likely"],
        "field": "name",
    }
    assert removed.action == "block.remove"
    assert removed.after == {"removed": ["scam likely"], "not_listed": ["*nope*"], "field": "name"}
    page = await lists.list_entries(store, ALICE, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK)
    assert [(e["field"], e["pattern"], e["raw"]) for e in page["entries"]] == [("name", "v*", "V*")]
