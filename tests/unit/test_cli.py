"""The CLI as an admin uses it: success, --json shapes, one-line errors, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from callscreen.cli import cli, main


class Run:
    def __init__(self, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db, self.capsys = db, capsys

    def __call__(self, *args: str, code: int = 0, lines: int = 1) -> str:
        """Run the CLI; on an error (``code``) expect ``lines`` error lines and no output."""
        exit_code = 0
        try:
            main(["--db", str(self.db), *args])
        except SystemExit as exc:
            exit_code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        assert exit_code == code, (out, err)
        if code:
            assert out == ""
            assert err.count("\n") == lines, err
            assert all(line.startswith("callscreen: error: ") for line in err.splitlines()), err
            return err
        return out

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json"))


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path / "cs.db", capsys)


def test_block_and_check_every_number_form(run: Run) -> None:
    run("block", "add", "--ext", "101", "303-555-1212", "+1900*")
    run("ext", "set", "101", "--enable")
    for form in ("+13035551212", "13035551212", "3035551212", "+1 (303) 555-1212", "303.555.1212"):
        d = run.json("check", "--ext", "101", form)
        assert d["result"] == "BLOCKED" and d["reason"] == "ext-blocklist", form
        assert d["entry"]["pattern"] == "+13035551212" and d["entry"]["raw"] == "303-555-1212"
    d = run.json("check", "--ext", "101", "19005550100")
    assert (d["result"], d["entry"]["pattern"]) == ("BLOCKED", "+1900*")
    d = run.json("check", "--ext", "102", "3035551212")
    assert (d["result"], d["reason"], d["treatment"]) == ("ALLOWED", "blocking-off", None)


def test_check_json_shape(run: Run) -> None:
    d = run.json("check", "--ext", "101", "011 44 20 7123 4567")
    assert set(d) >= {"result", "reason", "treatment", "entry", "caller", "ext"}
    assert d["caller"] == {
        "raw": "011 44 20 7123 4567",
        "e164": "+442071234567",
        "anonymous": False,
        "name": None,
    }


def test_anonymous_and_account_rules_via_check(run: Run) -> None:
    run("ext", "set", "101", "--enable", "--anonymous", "block", "--treatment", "torture")
    for caller in ("anonymous", "", "Restricted"):
        d = run.json("check", "--ext", "101", caller)
        assert (d["result"], d["reason"], d["treatment"]) == ("BLOCKED", "anonymous", "torture")
    d = run.json("check", "--ext", "101", "+13035551212", "--callingpres", "67")
    assert d["reason"] == "anonymous"
    run("block", "add", "--account", "+44*")
    assert run.json("check", "--ext", "999", "+442071234567")["result"] == "ALLOWED"
    run("account", "set", "--enable", "--treatment", "voicemail")
    d = run.json("check", "--ext", "999", "+442071234567")
    assert (d["reason"], d["treatment"], d["mailbox"]) == (
        "account-blocklist",
        "voicemail",
        "999@default",
    )
    run("allow", "add", "--account", "+442071234567")
    assert run.json("check", "--ext", "999", "+442071234567")["reason"] == "allowlist"


def test_challenge_settings_and_what_check_says(run: Run) -> None:
    run("ext", "set", "101", "--enable", "--unknown", "challenge", "--remember", "30d")
    d = run.json("check", "--ext", "101", "+13035551212")
    assert (d["result"], d["reason"], d["treatment"]) == ("CHALLENGED", "not-listed", "challenge")
    assert d["challenge"] == {
        "passed": {"result": "ALLOWED", "reason": "challenge-passed"},
        "failed": {
            "result": "BLOCKED",
            "reason": "challenge-failed",
            "treatment": "busy",
            "mailbox": None,
        },
        "remember": "30d",
    }
    out = run("check", "--ext", "101", "+13035551212")
    assert "CHALLENGED" in out and "challenge-failed busy" in out and "30d" in out
    run("account", "set", "--challenge-fallback", "voicemail", "--remember", "7d")
    show = run.json("ext", "show", "101")
    assert (show["challenge_fallback"], show["challenge_fallback_set"]) == ("voicemail", False)
    assert (show["remember"], show["remember_set"]) == ("30d", True)
    run("ext", "set", "101", "--remember", "account", "--challenge-fallback", "hangup")
    show = run.json("ext", "show", "101")
    assert (show["remember"], show["remember_set"]) == ("7d", False)
    assert (show["challenge_fallback"], show["challenge_fallback_set"]) == ("hangup", True)
    # Anonymous callers: challenged; a blocked number is never offered a way through.
    run("ext", "set", "101", "--anonymous", "challenge")
    assert run.json("check", "--ext", "101", "anonymous")["reason"] == "anonymous"
    run("block", "add", "--ext", "101", "+1303*")
    assert run.json("check", "--ext", "101", "+13035551212")["result"] == "BLOCKED"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--remember", "forever"], "remember: not a duration: 'forever'"),
        (["--remember", "-3d"], "remember: not a duration: '-3d'"),
        (["--unknown", "block"], "'block' is not one of 'allow', 'challenge'"),
        (["--challenge-fallback", "torture"], "'torture' is not one of"),
    ],
)
def test_bad_challenge_settings_are_one_line_and_change_nothing(
    run: Run, args: list[str], words: str
) -> None:
    err = run("ext", "set", "101", "--enable", *args, code=2)
    assert words in err
    assert run.json("ext", "show", "101")["enabled"] is False


def test_list_json_and_remove(run: Run) -> None:
    out = run.json(
        "block", "add", "--ext", "101", "3035551212", "3035551212", "+1303*", "--note", "spam"
    )
    assert out == {"added": ["+13035551212", "+1303*"], "already_listed": []}
    assert run.json("block", "add", "--ext", "101", "+13035551212") == {
        "added": [],
        "already_listed": ["+13035551212"],
    }
    items = run.json("block", "list", "--ext", "101")
    assert isinstance(items, list)
    assert [(i["pattern"], i["raw"], i["note"], i["hits"]) for i in items] == [
        ("+1303*", "+1303*", "spam", 0),
        ("+13035551212", "3035551212", "spam", 0),
    ]
    assert run.json("block", "remove", "--ext", "101", "303-555-1212", "+1999") == {
        "removed": ["+13035551212"],
        "not_listed": ["+1999"],
    }
    assert [i["pattern"] for i in run.json("block", "list", "--ext", "101")] == ["+1303*"]
    assert run.json("block", "list", "--account") == []


def test_ext_and_account_show(run: Run) -> None:
    assert run.json("ext", "show", "777") == {
        "ext": "777",
        "enabled": False,
        "anonymous": "allow",
        "treatment": "busy",
        "treatment_set": False,
        "mailbox": "777@default",
        "unknown": "allow",
        "remember": "0",
        "remember_set": False,
        "challenge_fallback": "busy",
        "challenge_fallback_set": False,
        "blocked_numbers": 0,
        "allowed_numbers": 0,
    }
    run("ext", "set", "101", "--enable", "--mailbox", "5@office", "--treatment", "voicemail")
    assert run.json("ext", "list") == [
        {
            "ext": "101",
            "enabled": True,
            "anonymous": "allow",
            "treatment": "voicemail",
            "treatment_set": True,
            "mailbox": "5@office",
            "unknown": "allow",
            "remember": "0",
            "remember_set": False,
            "challenge_fallback": "busy",
            "challenge_fallback_set": False,
        }
    ]
    assert run.json("account", "show") == {
        "enabled": False,
        "anonymous": "allow",
        "unknown": "allow",
        "treatment": "busy",
        "remember": "0",
        "challenge_fallback": "busy",
    }
    assert "101" in run("ext", "list")  # the table for people


@pytest.mark.parametrize(
    "args",
    [
        ["block", "add", "--ext", "101", "3035551212", "not-a-number"],
        ["block", "add", "3035551212"],
        ["block", "add", "--ext", "101", "--account", "3035551212"],
        ["block", "add", "--ext", "10 1", "3035551212"],
        ["allow", "add", "--ext", "101"],
        ["ext", "set", "101", "--treatment", "shout"],
        ["ext", "set", "101", "--mailbox", "101@default,u"],
        ["ext", "set", "101", "--enable", "--mailbox", "x y"],
        ["check", "--ext", "101", "hello"],
        ["check", "3035551212"],
        ["--region", "XX", "block", "add", "--ext", "101", "3035551212"],
        ["account", "set", "--treatment", "nope"],
        ["serve", "--host", "0.0.0.0"],
        ["serve", "--allow-from", "not-an-ip", "--host", "0.0.0.0"],
        ["nosuchcommand"],
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(run: Run, args: list[str]) -> None:
    run(*args, code=2)
    assert run.json("ext", "list") == []
    assert run.json("block", "list", "--ext", "101") == []
    assert run.json("account", "show")["treatment"] == "busy"


def test_unusable_database_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.db").mkdir()
    Run(tmp_path / "dir.db", capsys)("ext", "list", code=2)  # a usage error: --db is a directory
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    Run(bad, capsys)("ext", "list", code=1)


def test_version(run: Run) -> None:
    from callscreen import __version__

    assert __version__ in run("--version")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
        else:
            out.append((full, cmd))
    return out


@pytest.mark.parametrize(("name", "cmd"), _commands(cli), ids=[n for n, _ in _commands(cli)])
def test_every_command_has_help_and_a_readme_entry(name: str, cmd: click.Command) -> None:
    assert (cmd.help or cmd.short_help or "").strip(), f"{name} has no help text"
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"callscreen {name}" in readme, f"`callscreen {name}` is missing from the README"
