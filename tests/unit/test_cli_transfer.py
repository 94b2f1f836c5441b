"""``import`` / ``export``: round trips, every bad row reported, nothing written on bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

import pytest

from callscreen import inert, transfer
from callscreen.db.store import NewEntry, Store
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .test_cli import Run


@pytest.fixture
def run(db_url: Path | str, capsys: pytest.CaptureFixture[str]) -> Run:
    """The CLI on a new database, once on SQLite and once on PostgreSQL (tests/pg.py)."""
    return Run(db_url, capsys)  # type: ignore[arg-type]


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_import_csv_with_header_dedupes_and_reports(run: Run, tmp_path: Path) -> None:
    f = write(
        tmp_path / "in.csv",
        'number,note\n303-555-1212,spam\n+1900*,"premium, rate"\n3035551212,again\n\n',
    )
    assert run.json("import", "--ext", "101", f) == {
        "rows": 3,
        "added": 2,
        "updated": 0,
        "already_listed": 0,
        "duplicates": 1,
        "dry_run": False,
    }
    items = run.json("block", "list", "--ext", "101")
    assert [(i["pattern"], i["raw"], i["note"]) for i in items] == [
        ("+13035551212", "303-555-1212", "spam"),
        ("+1900*", "+1900*", "premium, rate"),
    ]
    # Importing again adds nothing: already listed.
    assert run.json("import", "--ext", "101", f)["already_listed"] == 2
    out = run("import", "--ext", "101", f)
    assert "0 added" in out and "2 already listed" in out


def test_plain_file_without_header_and_allowlist(run: Run, tmp_path: Path) -> None:
    f = write(tmp_path / "plain.csv", "3035551212\n# a comment\n+44 20 7123 4567,friend\n")
    run("import", "--account", "--list", "allow", f)
    items = run.json("allow", "list", "--account")
    assert [(i["pattern"], i["note"]) for i in items] == [
        ("+13035551212", ""),
        ("+442071234567", "friend"),
    ]
    assert run.json("block", "list", "--account") == []


def test_export_then_import_round_trips_exactly(run: Run, tmp_path: Path) -> None:
    run("block", "add", "--ext", "101", "303-555-1212", "+1900*", "--note", 'a "quoted", note')
    run("block", "add", "--ext", "101", "+13035550000", "--until", "2099-01-02T03:04:05Z")
    run("allow", "add", "--ext", "102", "720 555 0100")
    run("block", "add", "--account", "+44*", "--note", "line\nbreak")
    run("allow", "add", "--account", "+18005550199")
    for fmt in ("csv", "json"):
        for scope in (["--ext", "101"], ["--account"], ["--all"]):
            exported = run("export", *scope, "--format", fmt)
            f = write(tmp_path / f"x.{fmt}", exported)
            other = Run(tmp_path / f"copy-{fmt}-{scope[-1]}.db", run.capsys)
            summary = other.json("import", *scope, f)
            assert summary["added"] == len(json.loads(run("export", *scope, "--format", "json")))
            assert other("export", *scope, "--format", fmt) == exported, (fmt, scope)


def test_export_formats_and_empty_database(run: Run) -> None:
    assert run("export", "--ext", "101") == "number,note,raw,expires\n"
    assert run("export", "--all") == "scope,ext,kind,number,note,raw,expires\n"
    assert json.loads(run("export", "--account", "--format", "json")) == []
    run("block", "add", "--ext", "101", "3035551212", "--note", "n")
    assert json.loads(run("export", "--all", "--format", "json")) == [
        {
            "scope": "ext",
            "ext": "101",
            "kind": "block",
            "number": "+13035551212",
            "note": "n",
            "raw": "3035551212",
            "expires": None,
        }
    ]
    assert run("export", "--ext", "101").splitlines()[1] == "+13035551212,n,3035551212,"


def test_every_bad_row_reported_with_its_line_and_nothing_written(run: Run, tmp_path: Path) -> None:
    f = write(
        tmp_path / "bad.csv",
        "number,note,expires\n3035551212,ok,\nabc,x,\n\n1-800-FLOWERS,y,\n"
        '+13035550000,"multi\nline",\n12x,,\n7205550100,,not-a-date\n',
    )
    err = run("import", "--ext", "101", f, code=2, lines=5)
    lines = err.splitlines()
    assert [line.split(" line ")[1].split(":")[0] for line in lines[:-1]] == ["3", "5", "8", "9"]
    assert "bad.csv line 3: not a phone number: 'abc'" in lines[0]
    assert "line 5:" in lines[1] and "line 8:" in lines[2] and "line 9:" in lines[3]
    assert "not a date" in lines[3]
    assert lines[-1] == f"callscreen: error: 4 bad rows in {f}: nothing imported"
    assert run.json("block", "list", "--ext", "101") == []
    assert run.json("ext", "list") == []


@pytest.mark.parametrize(
    ("args", "content"),
    [
        (["import", "--ext", "101"], None),  # no file
        (["import", "--ext", "101", "--account", "F"], "3035551212\n"),
        (["import", "F"], "3035551212\n"),
        (["import", "--ext", "10 1", "F"], "3035551212\n"),
        (["import", "--all", "F"], "number,note\n3035551212,x\n"),
        (["import", "--all", "--list", "allow", "F"], "scope,ext,kind,number\n"),
        (["import", "--ext", "101", "F"], "scope,ext,kind,number\next,101,block,3035551212\n"),
        (["import", "--ext", "101", "--format", "json", "F"], "[{]"),
        (["import", "--ext", "101", "--format", "json", "F"], '{"number": "1"}'),
        (["import", "--ext", "101", "F.missing"], None),
        (["export"], None),
        (["export", "--ext", "101", "--all"], None),
        (["export", "--all", "--list", "allow"], None),
        (["export", "--ext", "101", "--format", "xml"], None),
    ],
)
def test_bad_input_is_one_line_exit_2(
    run: Run, tmp_path: Path, args: list[str], content: str | None
) -> None:
    f = tmp_path / "F"
    if content is not None:
        f.write_text(content)
    run(
        *[str(f) if a == "F" else str(tmp_path / a) if a.startswith("F.") else a for a in args],
        code=2,
    )
    assert run.json("block", "list", "--ext", "101") == []


def test_all_lists_file_with_a_bad_scope_row(run: Run, tmp_path: Path) -> None:
    f = write(
        tmp_path / "all.csv",
        "scope,ext,kind,number\next,101,block,3035551212\nplanet,,block,3035551212\n"
        "account,101,block,3035551212\next,,allow,3035551212\next,101,deny,3035551212\n",
    )
    err = run("import", "--all", f, code=2, lines=5)
    assert "line 3: scope must be ext or account" in err
    assert "line 4: an account entry has no extension" in err
    assert "line 5: not an extension: ''" in err
    assert "line 6: kind must be block or allow" in err
    assert json.loads(run("export", "--all", "--format", "json")) == []


def test_dry_run_counts_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    run("block", "add", "--ext", "101", "3035551212")
    f = write(tmp_path / "in.csv", "3035551212\n3035551213\n")
    d = run.json("import", "--ext", "101", "--dry-run", f)
    assert (d["added"], d["already_listed"], d["dry_run"]) == (1, 1, True)
    assert "would import" in run("import", "--ext", "101", "--dry-run", f)
    assert len(run.json("block", "list", "--ext", "101")) == 1


def test_import_from_stdin_and_list_json_reimports(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`block list --json` output names its list: it imports with --all, from stdin too."""
    run("block", "add", "--ext", "101", "3035551212", "+1900*", "--note", "n")
    listed = run("block", "list", "--ext", "101", "--json")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(listed.encode())))
    other = Run(tmp_path / "other.db", run.capsys)
    assert other.json("import", "--all", "--format", "json", "-")["added"] == 2
    assert other("export", "--all") == run("export", "--all")


def test_import_revives_expired_entries(run: Run, tmp_path: Path) -> None:
    run("ext", "set", "101", "--enable")
    f = write(tmp_path / "in.csv", "number,expires\n3035551212,2000-01-01T00:00:00Z\n")
    assert run.json("import", "--ext", "101", f)["added"] == 1
    assert run.json("block", "list", "--ext", "101")[0]["expired"] is True
    assert run.json("check", "--ext", "101", "3035551212")["reason"] == "not-listed"
    g = write(tmp_path / "again.csv", "3035551212\n")
    assert run.json("import", "--ext", "101", g)["updated"] == 1
    item = run.json("block", "list", "--ext", "101")[0]
    assert (item["expired"], item["expires"]) == (False, None)
    assert run.json("check", "--ext", "101", "3035551212")["reason"] == "ext-blocklist"


def test_bulk_api_for_scripts(tmp_path: Path) -> None:
    """Store.import_entries: the bulk path (bench and scripts call it)."""

    async def go() -> None:
        async with await Store.open(tmp_path / "b.db") as s:
            patterns = [parse_pattern(f"+1303555{i:04d}") for i in range(5000)]
            r = await s.import_entries(Scope.EXTENSION, "101", Kind.BLOCK, patterns + patterns[:10])
            assert (r.added, r.unchanged, r.duplicates) == (5000, 0, 10)
            r = await s.import_entries(Scope.ACCOUNT, None, Kind.BLOCK, patterns[:3], note="x")
            assert r.added == 3
            assert await s.count_entries(Scope.EXTENSION, "101", Kind.BLOCK) == 5000
            assert await s.count_entries() == 5003
            rows = [NewEntry(Scope.EXTENSION, "bad ext", Kind.BLOCK, patterns[0])]
            with pytest.raises(ValueError):
                await s.import_rows(rows)
            assert await s.count_entries() == 5003

    asyncio.run(go())


def test_reader_unit() -> None:
    target = transfer.Target(Scope.EXTENSION, "101", Kind.BLOCK)
    rows, bad = transfer.read_entries(io.StringIO("number\n\n3035551212\nx\n"), "csv", target, "US")
    assert [r.pattern.value for r in rows] == ["+13035551212"]
    assert [str(b) for b in bad] == ["line 4: not a phone number: 'x'"]
    rows, bad = transfer.read_entries(
        io.StringIO('[{"pattern": "+1900*"}, 5, {"number": null}]'), "json", target, "US"
    )
    assert [str(r.pattern) for r in rows] == ["+1900*"]
    assert [b.where for b in bad] == ["item 2", "item 3"]


FORMULA_NOTES = [
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1)",
    "\tx",
    "\rx",
    "'=already quoted",
    "''",
    "'plain quote",
    "plain",
]


def test_csv_export_neutralises_formulas_and_import_restores_them(run: Run, tmp_path: Path) -> None:
    for i, note in enumerate(FORMULA_NOTES):
        run("block", "add", "--ext", "-5", f"+1303555{i:04d}", "--note", note)
    # raw (the number as typed) only comes from a file: anything may be in it
    f = write(tmp_path / "raw.csv", "number,note,raw\n+13035559999,x,=1+1\n+13035559998,y,+1 303\n")
    run("import", "--ext", "-5", f)
    exported = run("export", "--all")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == len(FORMULA_NOTES) + 2
    for row in rows:
        for column in ("note", "raw", "ext"):
            assert row[column][:1] not in inert.FORMULA_START, (column, row)
        assert row["number"].startswith("+1303555")  # E.164 written as it is
        assert row["ext"] == "'-5"
    assert {r["raw"] for r in rows} >= {"'=1+1", "'+1 303"}
    assert {r["note"] for r in rows} >= {"'=cmd|' /C calc'!A0", "''=already quoted", "'plain quote"}
    other = Run(tmp_path / "copy.db", run.capsys)
    other("import", "--all", write(tmp_path / "x.csv", exported))
    assert other("export", "--all") == exported
    original = json.loads(run("export", "--all", "--format", "json"))
    assert json.loads(other("export", "--all", "--format", "json")) == original
    assert sorted(e["note"] for e in original) == sorted([*FORMULA_NOTES, "x", "y"])


def test_import_error_report_shows_hostile_text_inertly(run: Run, tmp_path: Path) -> None:
    f = write(tmp_path / "bad.csv", "number,note\n\x1b[2J[bold]x[/bold]\u202e,n\n")
    err = run("import", "--ext", "101", f, code=2, lines=2)
    assert "\x1b" not in err and "\u202e" not in err
    assert "\\x1b[2J[bold]x[/bold]" in err
