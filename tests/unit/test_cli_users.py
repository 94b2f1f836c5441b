"""``callscreen user`` and ``callscreen token``: passwords from stdin, one-line errors, exit 2,
nothing written, the token printed once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from callscreen.db.backends import open_conn
from callscreen.db.store import Store
from callscreen.ops import auth

from .test_cli import Run

PW = "correct horse battery"


@pytest.fixture
def run(db_url: Path | str, capsys: pytest.CaptureFixture[str]) -> Run:
    """The CLI on a new database, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    return Run(db_url, capsys)  # type: ignore[arg-type]


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return monkeypatch


def feed(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def rows(db: Path | str, sql: str) -> list[tuple[object, ...]]:
    async def read() -> list[tuple[object, ...]]:
        conn = await open_conn(db)
        try:
            return await conn.fetchall(sql)
        finally:
            await conn.close()

    return asyncio.run(read())


def test_user_add_list_show_set(run: Run, stdin: pytest.MonkeyPatch) -> None:
    feed(stdin, PW + "\n")
    assert "added user alice" in run("user", "add", "alice", "--ext", "101", "--password-stdin")
    feed(stdin, PW + "\r\n")
    run("user", "add", "root", "--admin", "--password-stdin")
    users = run.json("user", "list")
    assert [(u["username"], u["role"], u["extensions"]) for u in users] == [
        ("alice", "user", ["101"]),
        ("root", "admin", []),
    ]
    d = run.json("user", "set", "alice", "--ext", "102", "--ext", "103", "--disable")
    assert d == {**d, "extensions": ["102", "103"], "disabled": True}
    assert run.json("user", "show", "alice")["disabled"] is True
    assert PW not in run("user", "list")
    audit = rows(run.db, "SELECT action, source, target FROM audit_log ORDER BY id")
    assert audit == [
        ("user.add", "cli", "user:alice"),
        ("user.add", "cli", "user:root"),
        ("user.set", "cli", "user:alice"),
    ]


def test_password_stdin_strips_only_the_newline(run: Run, stdin: pytest.MonkeyPatch) -> None:
    feed(stdin, "  spaced pw  \n")
    run("user", "add", "alice", "--ext", "101", "--password-stdin")

    async def go() -> None:
        async with await Store.open(run.db) as s:
            await auth.login(s, "alice", "  spaced pw  ", ip=None)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("args", "stdin_text", "words"),
    [
        (["user", "add", "alice", "--ext", "101", "--password-stdin"], "short\n", "too short"),
        (["user", "add", "alice", "--ext", "101"], PW + "\n", "--password-stdin"),
        (["user", "add", "bad name", "--ext", "101", "--password-stdin"], PW + "\n", "username"),
        (["user", "add", "alice", "--ext", "1 0", "--password-stdin"], PW + "\n", "extension"),
        (["user", "add", "alice", "--password-stdin"], PW + "\n", "at least one extension"),
        (["user", "add", "alice", "--ext", "1", "--admin", "--password-stdin"], PW + "\n", "both"),
        (["user", "add", "Bob", "--ext", "101", "--password-stdin"], PW + "\n", "already exists"),
        (["user", "show", "nobody"], "", "no user"),
        (["user", "set", "nobody", "--disable"], "", "no user"),
        (["user", "set", "bob", "--admin", "--ext", "101"], "", "both"),
        (["user", "passwd", "bob", "--password-stdin"], "1234567\n", "too short"),
        (["user", "passwd", "nobody", "--password-stdin"], PW + "\n", "no user"),
        (["user", "remove", "nobody"], "", "no user"),
        (["token", "create", "bob", "--expires", "forever"], "", "not a duration"),
        (["token", "create", "nobody"], "", "no user"),
        (["token", "list", "nobody"], "", "no user"),
        (["token", "revoke", "99"], "", "no token"),
        (["token", "revoke", "x"], "", "ID"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    run: Run, stdin: pytest.MonkeyPatch, args: list[str], stdin_text: str, words: str
) -> None:
    feed(stdin, PW + "\n")
    run("user", "add", "bob", "--ext", "100", "--password-stdin")
    before = rows(run.db, "SELECT * FROM users"), rows(run.db, "SELECT * FROM audit_log")
    feed(stdin, stdin_text)
    err = run(*args, code=2)
    assert words in err
    after = rows(run.db, "SELECT * FROM users"), rows(run.db, "SELECT * FROM audit_log")
    assert after == before
    assert rows(run.db, "SELECT count(*) FROM tokens") == [(0,)]


def test_token_is_printed_once_and_only_its_hash_stored(
    run: Run, stdin: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed(stdin, PW + "\n")
    run("user", "add", "alice", "--ext", "101", "--password-stdin")
    from callscreen.cli import main

    main(["--db", str(run.db), "token", "create", "alice", "--name", "ci", "--expires", "90d"])
    out, err = capsys.readouterr()
    token = out.strip()
    assert len(token) >= 43 and "shown this once" in err
    assert rows(run.db, "SELECT hash FROM tokens") == [(auth.hash_secret(token),)]
    listing = run.json("token", "list")
    assert token not in str(listing) and listing[0]["name"] == "ci"
    assert token not in run("token", "list", "alice")
    created = run.json("token", "create", "alice")
    assert set(created) == {"token", "id", "user", "name", "created", "expires", "last_used"}
    run("token", "revoke", str(listing[0]["id"]))
    assert [t["id"] for t in run.json("token", "list", "alice")] == [created["id"]]
    actions = [a for (a,) in rows(run.db, "SELECT action FROM audit_log")]
    assert actions == ["user.add", "token.create", "token.create", "token.revoke"]


def test_passwd_and_remove(run: Run, stdin: pytest.MonkeyPatch) -> None:
    feed(stdin, PW + "\n")
    run("user", "add", "alice", "--ext", "101", "--password-stdin")
    feed(stdin, "a new password\n")
    assert "password changed" in run("user", "passwd", "alice", "--password-stdin")
    run("token", "create", "alice")
    run("user", "remove", "alice")
    assert rows(run.db, "SELECT count(*) FROM users") == [(0,)]
    assert rows(run.db, "SELECT count(*) FROM tokens") == [(0,)]
