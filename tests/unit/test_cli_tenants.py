"""``callscreen --account NAME ...``: every command that reads or writes an account's data works
in the account named, and only there; ``account add``/``list``/``remove``."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from callscreen.db.store import CallRecord

from .test_cli import Run
from .test_cli_reports import log_calls

PW = "correct horse battery"


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("CALLSCREEN_ACCOUNT", raising=False)
    monkeypatch.setenv("CALLSCREEN_CONFIG", str(tmp_path / "none.toml"))  # no user config
    (tmp_path / "none.toml").write_text("")
    return Run(tmp_path / "cs.db", capsys)


def account_rows(db: Path, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the account ``name`` (tokens without their last use)."""
    with sqlite3.connect(db) as con:
        (aid,) = con.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        out = {
            t: sorted(con.execute(f"SELECT * FROM {t} WHERE account_id = ?", (aid,)), key=repr)
            for t in ("extensions", "entries", "list_sizes", "users", "call_log", "audit_log")
        }
        out["accounts"] = list(con.execute("SELECT * FROM accounts WHERE id = ?", (aid,)))
        out["tokens"] = sorted(
            con.execute(
                "SELECT t.id, t.name, t.hash FROM tokens t JOIN users u ON u.id = t.user_id "
                "WHERE u.account_id = ?",
                (aid,),
            )
        )
    con.close()
    return out


@pytest.fixture
def two(run: Run, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Accounts default and acme, each with ext 101 (a number, a user, a token, a call)."""
    run("account", "add", "acme")
    for account, number, allowed, user in (
        ("default", "+13035550101", "+13035550109", "dora"),
        ("acme", "+13035550202", "+13035550209", "ace"),
    ):
        a = ["--account", account]
        run(*a, "ext", "set", "101", "--enable")
        run(*a, "block", "add", "--ext", "101", number, "--note", f"{user}-note")
        run(*a, "allow", "add", "--account", allowed)
        monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
        run(*a, "user", "add", user, "--ext", "101", "--password-stdin")
        run(*a, "token", "create", user, "--name", f"{user}-token")
    log_calls(run.db, CallRecord(time.time() - 60, "101", "+13035550155", "+13035550155",
                                 "ALLOWED", "not-listed", None, None, 0.01))  # fmt: skip
    return run


#: default's data, none of which a command of acme may print.
DEFAULT_MARKERS = ("+13035550101", "+13035550109", "dora", "+13035550155")

#: Every command that reads or writes an account's data, as run inside acme.
COMMANDS: list[tuple[str, ...]] = [
    ("ext", "show", "101", "--json"),
    ("ext", "list", "--json"),
    ("ext", "set", "101", "--treatment", "torture"),
    ("block", "list", "--ext", "101", "--json"),
    ("block", "list", "--account", "--json"),
    ("block", "add", "--ext", "101", "+13035550303"),
    ("block", "remove", "--ext", "101", "+13035550101"),  # default's number: not acme's
    ("block", "add", "--account", "+13035550304"),
    ("block", "last", "--ext", "101"),  # default's call is not acme's: none
    ("allow", "list", "--account", "--json"),
    ("allow", "add", "--ext", "101", "+13035550305"),
    ("allow", "remove", "--account", "+13035550109"),
    ("account", "show", "--json"),
    ("account", "set", "--disable", "--treatment", "busy"),
    ("check", "--ext", "101", "+13035550101", "--json"),
    ("export", "--all"),
    ("log", "--json"),
    ("log", "prune", "--before", "1d"),
    ("stats", "--json"),
    ("audit", "--json"),
    ("user", "list", "--json"),
    ("user", "show", "dora"),
    ("user", "set", "dora", "--disable"),
    ("user", "remove", "dora"),
    ("token", "list", "--json"),
    ("token", "create", "dora"),
    ("token", "revoke", "1"),  # default's (dora's) token
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_stays_in_its_account(two: Run, args: tuple[str, ...]) -> None:
    before = account_rows(two.db, "default")
    exit_code = 0
    try:
        from callscreen.cli import main

        main(["--db", str(two.db), "--account", "acme", *args])
    except SystemExit as exc:
        exit_code = int(exc.code or 0)
    out, err = two.capsys.readouterr()
    assert exit_code in (0, 1, 2), (out, err)
    leaked = [m for m in DEFAULT_MARKERS if m in out + err and m not in args]
    assert not leaked, (out, err)
    assert account_rows(two.db, "default") == before


def test_each_account_shows_its_own(two: Run) -> None:
    """The control for the test above: acme's commands do show acme's data."""
    listed = two.json("--account", "acme", "block", "list", "--ext", "101")
    assert [e["value"] for e in listed] == ["+13035550202"]  # type: ignore[index]
    assert [e["value"] for e in two.json("block", "list", "--ext", "101")] == [  # type: ignore[index]
        "+13035550101"
    ]
    assert [u["username"] for u in two.json("--account", "acme", "user", "list")] == ["ace"]  # type: ignore[index]
    assert [c["caller_raw"] for c in two.json("log")] == ["+13035550155"]  # type: ignore[index]
    assert two.json("--account", "acme", "log") == []
    assert two.json("--account", "acme", "stats")["calls"] == 0  # type: ignore[index]
    assert "ace-token" in two("--account", "acme", "token", "list")
    assert "+13035550202" in two("--account", "acme", "export", "--all")
    # check reads the account's own lists: acme's number is blocked in acme only
    acme_check = two.json("--account", "acme", "check", "--ext", "101", "+13035550202")
    assert acme_check["result"] == "BLOCKED"  # type: ignore[index]
    assert acme_check["entry"]["note"] == "ace-note"  # type: ignore[index]
    assert two.json("check", "--ext", "101", "+13035550202")["result"] == "ALLOWED"  # type: ignore[index]
    default_number = two.json("--account", "acme", "check", "--ext", "101", "+13035550101")
    assert default_number["result"] == "ALLOWED"  # type: ignore[index]


def test_block_add_in_acme_is_not_in_default(run: Run) -> None:
    run("account", "add", "acme")
    run("--account", "acme", "block", "add", "--ext", "101", "+13035551212")
    assert run.json("block", "list", "--ext", "101") == []
    listed = run.json("--account", "acme", "block", "list", "--ext", "101")
    assert [e["value"] for e in listed] == ["+13035551212"]  # type: ignore[index]


def test_the_account_from_env_and_config(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run("account", "add", "acme")
    monkeypatch.setenv("CALLSCREEN_ACCOUNT", "acme")
    run("block", "add", "--ext", "101", "+13035551212")
    monkeypatch.delenv("CALLSCREEN_ACCOUNT")
    assert run.json("block", "list", "--ext", "101") == []
    cfg = tmp_path / "acme.toml"
    cfg.write_text('account = "acme"\n')
    listed = run.json("--config", str(cfg), "block", "list", "--ext", "101")
    assert [e["value"] for e in listed] == ["+13035551212"]  # type: ignore[index]
    # the flag beats the file
    assert run.json("--config", str(cfg), "--account", "default", "block", "list",
                    "--ext", "101") == []  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("block", "add", "--ext", "101", "+13035551212"),
        ("ext", "set", "101", "--enable"),
        ("log",),
        ("stats",),
        ("user", "list"),
    ],
    ids=" ".join,
)
def test_an_unknown_account_is_one_line_exit_2_and_writes_nothing(
    run: Run, args: tuple[str, ...]
) -> None:
    run("ext", "list")  # the database exists
    with sqlite3.connect(run.db) as con:
        before = con.execute("SELECT count(*) FROM extensions").fetchone()
    con.close()
    err = run("--account", "acme", *args, code=2)
    assert err == "callscreen: error: no account named 'acme' (see: callscreen account list)\n"
    with sqlite3.connect(run.db) as con:
        assert con.execute("SELECT count(*) FROM extensions").fetchone() == before
        assert con.execute("SELECT count(*) FROM entries").fetchone() == (0,)
    con.close()


def test_account_add_list_remove(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "added account acme" in run("account", "add", "acme")
    assert run("account", "add", "acme", code=2) == (
        "callscreen: error: account 'acme' already exists\n"
    )
    assert "not an account name: 'Acme'" in run("account", "add", "Acme", code=2)
    listed = run.json("account", "list")
    assert [(a["name"], a["extensions"], a["users"]) for a in listed] == [  # type: ignore[index,union-attr]
        ("acme", 0, 0),
        ("default", 0, 0),
    ]
    run("--account", "acme", "ext", "set", "101", "--enable")
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    run("--account", "acme", "user", "add", "boss", "--admin", "--password-stdin")
    err = run("account", "remove", "acme", code=2)
    assert "account 'acme' has 1 extension(s) and 1 user(s)" in err and "--force" in err
    assert [a["name"] for a in run.json("account", "list")] == ["acme", "default"]  # type: ignore[index]
    assert run("account", "remove", "default", "--force", code=2) == (
        "callscreen: error: the default account cannot be removed\n"
    )
    assert "removed account acme" in run("account", "remove", "acme", "--force")
    assert [a["name"] for a in run.json("account", "list")] == ["default"]  # type: ignore[index]
    assert "no account named 'acme'" in run("account", "remove", "acme", code=2)
    # works whatever --account says (also one just removed); audited in the default account
    run("--account", "acme", "account", "add", "acme2")
    actions = [(a["action"], a["target"]) for a in run.json("audit")]  # type: ignore[index]
    assert actions[:3] == [
        ("account.add", "account:acme2"),
        ("account.remove", "account:acme"),
        ("account.add", "account:acme"),
    ]


def test_user_add_superuser(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    err = run("user", "add", "root", "--superuser", "--ext", "101", "--password-stdin", code=2)
    assert "only an administrator can be a superuser" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(PW + "\n"))
    assert "added superuser root" in run("user", "add", "root", "--admin", "--superuser",
                                         "--password-stdin")  # fmt: skip
    (user,) = run.json("user", "list")  # type: ignore[misc]
    assert user["superuser"] is True and user["role"] == "admin"
    assert "superuser" in run("user", "list")


def test_import_and_export_stay_in_their_account(
    two: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))  # a real one again
    csv = tmp_path / "numbers.csv"
    csv.write_text("number,note\n+13035550404,imported\n")
    before = account_rows(two.db, "default")
    two("--account", "acme", "import", "--ext", "101", str(csv))
    assert account_rows(two.db, "default") == before
    assert "+13035550404" in two("--account", "acme", "export", "--ext", "101")
    default_export = two("export", "--all")
    assert "+13035550404" not in default_export and "+13035550202" not in default_export


def test_check_decides_with_the_accounts_own_lists(two: Run) -> None:
    """``check`` reads through the call path's lookup for the account it is given."""
    two("--account", "acme", "ext", "set", "101", "--enable")
    two("ext", "set", "101", "--enable")
    default = two.json("check", "--ext", "101", "+13035550101")
    acme = two.json("--account", "acme", "check", "--ext", "101", "+13035550101")
    assert (default["result"], default["reason"]) == ("BLOCKED", "ext-blocklist")  # type: ignore[index]
    assert (acme["result"], acme["reason"]) == ("ALLOWED", "not-listed")  # type: ignore[index]
    # acme's own number is on acme's list of 101: blocked there.
    acme_own = two.json("--account", "acme", "check", "--ext", "101", "+13035550202")
    assert (acme_own["result"], acme_own["reason"]) == ("BLOCKED", "ext-blocklist")  # type: ignore[index]


#: Commands that hold no account's data, or that are tested on their own above.
NOT_PER_ACCOUNT = {
    "serve": "every account, by the call's AGI argument",
    "web": "every account, by the signed-in user",
    "init": "the first admin of the default account",
    "db backup": "the whole database",
    "db restore": "the whole database",
    "dialplan": "no data",
    "doctor": "the whole database (and --account's mailboxes)",
    "account add": "over every account",
    "account list": "over every account",
    "account remove": "over every account",
    "import": "test_import_and_export_stay_in_their_account",
    "user add": "test_user_add_superuser and the fixture",
    "user passwd": "a password on stdin: test_cli_users, scoped by the same store",
    "db copy": "the whole database",
}


def test_every_command_is_checked_for_its_account() -> None:
    """A command added later fails here until it joins COMMANDS (or says why not)."""
    from callscreen.cli import cli

    from .test_cli import _commands

    covered = {" ".join(a for a in args if not a.startswith(("-", "+")) and not a.isdigit())
               for args in COMMANDS}  # fmt: skip
    for name, _ in _commands(cli):
        if name in NOT_PER_ACCOUNT:
            continue
        assert any(c == name or c.startswith(name + " ") for c in covered), name
