"""``block add/list/remove --name`` and ``check --name``: caller-name rules from the CLI."""

from __future__ import annotations

import sqlite3

from .test_cli import Run, run  # noqa: F401  (the fixture)


def test_block_a_caller_name_and_check_it(run: Run) -> None:  # noqa: F811
    out = run("block", "add", "--ext", "101", "--name", "Scam Likely", "--name", "V*")
    assert out.splitlines() == [
        "added name rule scam likely (Scam Likely) to the block list of extension 101",
        "added name rule v* (V*) to the block list of extension 101",
    ]
    assert "already listed: name rule scam likely" in run(
        "block", "add", "--ext", "101", "--name", "SCAM LIKELY"
    )
    run("ext", "set", "101", "--enable")
    d = run.json("check", "--ext", "101", "3035551212", "--name", "scam  LIKELY")
    assert (d["result"], d["reason"], d["treatment"]) == ("BLOCKED", "name-rule", "busy")
    assert (d["entry"]["field"], d["entry"]["pattern"]) == ("name", "scam likely")
    assert d["caller"]["name"] == "scam  LIKELY"
    table = run("check", "--ext", "101", "3035551212", "--name", "V0042")
    assert "name-rule" in table and "name rule v* (V*) on the extension block list" in table
    d = run.json("check", "--ext", "101", "3035551212", "--name", "Bob")
    assert (d["result"], d["reason"]) == ("ALLOWED", "not-listed")
    d = run.json("check", "--ext", "101", "3035551212")  # no name: no rule matches
    assert d["reason"] == "not-listed"


def test_block_list_shows_name_rules_apart_and_remove_takes_them(run: Run) -> None:  # noqa: F811
    run("block", "add", "--ext", "101", "--name", "*SPAM*", "--note", "carrier")
    run("block", "add", "--ext", "101", "3035551212")
    listed = run("block", "list", "--ext", "101")
    assert "name: *spam*" in listed and "+13035551212" in listed
    rows = run.json("block", "list", "--ext", "101")
    assert isinstance(rows, list)
    assert sorted((e["field"], e["pattern"]) for e in rows) == [
        ("name", "*spam*"),
        ("number", "+13035551212"),
    ]
    assert (
        run("block", "remove", "--ext", "101", "--name", "*Spam*") == "removed name rule *spam*\n"
    )
    assert run("block", "remove", "--ext", "101", "--name", "*spam*") == ""
    assert [e["field"] for e in run.json("block", "list", "--ext", "101")] == ["number"]  # type: ignore[union-attr]


def test_account_name_rules_are_account_wide(run: Run) -> None:  # noqa: F811
    run("block", "add", "--account", "--name", "*likely")
    run("account", "set", "--enable")
    d = run.json("check", "--ext", "555", "3035551212", "--name", "Scam Likely")
    assert (d["result"], d["reason"], d["entry"]["scope"]) == ("BLOCKED", "name-rule", "account")


def test_bad_name_rules_are_one_line_errors_and_write_nothing(run: Run) -> None:  # noqa: F811
    run("ext", "set", "101", "--enable")
    for args, words in [
        (["--name", "a*b"], "a * may only start or end a caller name: 'a*b'"),
        (["--name", "*"], "a caller name needs more than *: '*'"),
        (["--name", "**"], "a caller name needs more than *: '**'"),
        (["--name", ""], 'give a caller name (e.g. "Scam Likely", "V*", "*spam*")'),
        (["--name", "V*", "--name", "\x1b[2J"], "a caller name cannot hold control characters"),
        (["--name", "V*", "3035551212"], "give numbers or --name, not both"),
    ]:
        err = run("block", "add", "--ext", "101", *args, code=2)
        assert err == f"callscreen: error: {words}\n"
    err = run("allow", "add", "--ext", "101", "--name", "Mum", code=2)
    assert err == (
        "callscreen: error: a caller name can only be blocked: anyone can send any name, so a"
        " name never lets a call through\n"
    )
    with sqlite3.connect(run.db) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone() == (0,)


def test_export_and_import_carry_name_rules(run: Run, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    run("block", "add", "--ext", "101", "--name", "Scam Likely", "--note", "n1")
    run("block", "add", "--ext", "101", "+13035551212")
    exported = run("export", "--ext", "101")
    assert exported.splitlines()[1:] == [
        "+13035551212,,'+13035551212,",
        "name:scam likely,n1,Scam Likely,",
    ]
    path = tmp_path / "list.csv"
    path.write_text(exported)
    run("block", "remove", "--ext", "101", "--name", "Scam Likely")
    run("import", str(path), "--ext", "102")
    rows = run.json("block", "list", "--ext", "102")
    assert sorted((e["field"], e["pattern"], e["raw"]) for e in rows) == [  # type: ignore[union-attr]
        ("name", "scam likely", "Scam Likely"),
        ("number", "+13035551212", "+13035551212"),
    ]
    bad = tmp_path / "allow.csv"
    bad.write_text("number\nname:Mum\n")
    err = run("import", str(bad), "--ext", "101", "--list", "allow", code=2, lines=2)
    assert "a caller name can only be blocked" in err


def test_stats_marks_a_name_rule(run: Run) -> None:  # noqa: F811
    run("block", "add", "--ext", "101", "--name", "V*")
    out = run("stats")
    assert "name: v*" in out
    [never] = run.json("stats")["never_matched"]["oldest"]  # type: ignore[index]
    assert never["pattern"] == "name: v*"
