"""Temporary entries, paging, the config file, completion, doctor, the packaged dialplan."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callscreen import doctor
from callscreen.cli.lists import TABLE_LIMIT
from callscreen.db.store import Store
from callscreen.numbers import parse_pattern
from callscreen.policy import Kind, Scope

from .test_cli import Run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(tmp_path / "cs.db", capsys)


# -- temporary entries --------------------------------------------------------------------------
def test_temporary_entries_expire_and_list_shows_them(run: Run) -> None:
    run("ext", "set", "101", "--enable")
    out = run("block", "add", "--ext", "101", "3035551212", "--for", "30d")
    assert "until" in out
    item = run.json("block", "list", "--ext", "101")[0]
    expires = time.mktime(time.strptime(item["expires"], "%Y-%m-%d %H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 30 * 86400)) < 5 and item["expired"] is False
    assert run.json("check", "--ext", "101", "3035551212")["result"] == "BLOCKED"

    async def expire() -> None:  # the store takes any time; the CLI only future ones
        async with await Store.open(run.db) as s:
            past = time.time() - 1
            p = [parse_pattern("+1900*")]
            await s.add_entries(Scope.EXTENSION, "101", Kind.BLOCK, p, expires_at=past)
            await s.add_entries(Scope.ACCOUNT, None, Kind.ALLOW, p, expires_at=past)

    asyncio.run(expire())
    assert run.json("check", "--ext", "101", "19005550100")["reason"] == "not-listed"
    items = {i["pattern"]: i for i in run.json("block", "list", "--ext", "101")}
    assert items["+1900*"]["expired"] is True
    assert "expired" in run("block", "list", "--ext", "101")
    # Adding it again revives it; an --until later than a temporary entry's extends it.
    assert run.json("block", "add", "--ext", "101", "+1900*")["added"] == ["+1900*"]
    assert run.json("check", "--ext", "101", "19005550100")["reason"] == "ext-blocklist"
    later = run.json("block", "add", "--ext", "101", "3035551212", "--until", "2099-01-01")
    assert later["added"] == ["+13035551212"]
    assert run.json("block", "add", "--ext", "101", "3035551212", "--for", "1d")["added"] == []
    items = {i["pattern"]: i for i in run.json("block", "list", "--ext", "101")}
    assert items["+13035551212"]["expires"] == "2099-01-01 00:00:00Z"
    assert items["+1900*"]["expires"] is None


# -- paging -------------------------------------------------------------------------------------
def test_list_pages_and_streams(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "many.csv"
    f.write_text("".join(f"+1303555{i:04d}\n" for i in range(TABLE_LIMIT + 5)))
    run("import", "--ext", "101", str(f))
    table = run("block", "list", "--ext", "101")
    assert f"showing 1-{TABLE_LIMIT} of {TABLE_LIMIT + 5:,}" in table
    assert "+13035551004" not in table
    page = run.json("block", "list", "--ext", "101", "--limit", "3", "--offset", "1000")
    assert [i["pattern"] for i in page] == ["+13035551000", "+13035551001", "+13035551002"]
    assert len(run.json("block", "list", "--ext", "101")) == TABLE_LIMIT + 5  # all, streamed
    assert "showing 1001-1005 of 1,005" in run("block", "list", "--ext", "101", "--offset", "1000")
    assert run.json("ext", "show", "101")["blocked_numbers"] == TABLE_LIMIT + 5


# -- the config file ----------------------------------------------------------------------------
def settings(run: Run, *args: str) -> dict[str, tuple[object, str]]:
    d = json.loads(run(*args, "serve", "--check-config", "--json"))
    return {k: (v["value"], v["source"]) for k, v in d["settings"].items()}


def test_config_precedence_flag_env_file_default(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("CALLSCREEN_PORT", "CALLSCREEN_REGION", "CALLSCREEN_LOG_FORMAT", "CALLSCREEN_DB"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "callscreen.toml"
    cfg.write_text(
        'region = "GB"\n[serve]\nport = 5000\nlog_format = "json"\ntorture_max = 60\n'
        'allow_from = ["10.0.0.0/8"]\nmetrics_port = 9573\n'
    )
    s = settings(run, "--config", str(cfg))
    assert s["port"] == (5000, "config file")
    assert s["region"] == ("GB", "config file")
    assert s["log_format"] == ("json", "config file")
    assert s["allow_from"] == (["10.0.0.0/8"], "config file")
    assert s["metrics_port"] == (9573, "config file")
    assert s["header_timeout"] == (10.0, "default")
    assert s["db"][1] == "flag"  # Run always passes --db
    monkeypatch.setenv("CALLSCREEN_CONFIG", str(cfg))
    monkeypatch.setenv("CALLSCREEN_PORT", "6000")
    monkeypatch.setenv("CALLSCREEN_REGION", "DE")
    s = settings(run)
    assert (s["port"], s["region"], s["torture_max"]) == (
        (6000, "env"),
        ("DE", "env"),
        (60.0, "config file"),
    )
    d = json.loads(run("--region", "FR", "serve", "--port", "7000", "--check-config", "--json"))
    assert d["settings"]["port"] == {"value": 7000, "source": "flag"}
    assert d["settings"]["region"] == {"value": "FR", "source": "flag"}
    assert d["config_file"] == str(cfg)
    # The file's region applies to every command: 020 is a London number in GB.
    monkeypatch.delenv("CALLSCREEN_REGION")
    assert run.json("check", "--ext", "101", "020 7123 4567")["caller"]["e164"] == "+442071234567"
    assert "config file" in run("serve", "--check-config")


def test_config_file_db_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'db = "{tmp_path / "from-config.db"}"\n')
    from callscreen.cli import main

    main(["--config", str(cfg), "block", "add", "--ext", "101", "3035551212"])
    assert "added +13035551212" in capsys.readouterr().out
    assert (tmp_path / "from-config.db").exists()


@pytest.mark.parametrize(
    "text",
    [
        "port = [",  # not TOML
        "[serve]\nprot = 1\n",  # unknown key
        "colour = 1\n",
        "[serve]\nport = '4573'\n",  # wrong type
        "[serve]\nallow_from = [1]\n",
        "serve = 3\n",
        "[serve]\nport = 70000\n",  # click's range check
        "[serve]\nlog_format = 'xml'\n",
        "[serve]\nhost = '0.0.0.0'\n",  # public bind without allow_from
    ],
)
def test_bad_config_file_is_one_line_exit_2(run: Run, tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    run("--config", str(cfg), "serve", "--check-config", code=2)


def test_missing_config_file(run: Run, tmp_path: Path) -> None:
    err = run("--config", str(tmp_path / "nope.toml"), "ext", "list", code=2)
    assert "cannot read" in err


# -- completion, version ------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_script(shell: str) -> None:
    env = {**os.environ, "_CALLSCREEN_COMPLETE": f"{shell}_source"}
    out = subprocess.run(
        [sys.executable, "-m", "callscreen"], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "_CALLSCREEN_COMPLETE" in out.stdout


def test_completion_of_commands() -> None:
    env = {
        **os.environ,
        "_CALLSCREEN_COMPLETE": "bash_complete",
        "COMP_WORDS": "callscreen im",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "callscreen"], env=env, capture_output=True, text=True, timeout=30
    )
    assert "import" in out.stdout


# -- the shipped dialplan -----------------------------------------------------------------------
def test_packaged_dialplan_is_the_shipped_one_byte_for_byte(run: Run) -> None:
    shipped = (REPO / "dialplan" / "callscreen.conf").read_bytes()
    packaged = (REPO / "callscreen" / "data" / "callscreen.conf").read_bytes()
    assert packaged == shipped, (
        "callscreen/data/callscreen.conf is a copy of dialplan/callscreen.conf: "
        "cp dialplan/callscreen.conf callscreen/data/callscreen.conf"
    )
    assert doctor.shipped_dialplan().encode() == shipped
    assert run("dialplan").encode() == shipped


# -- doctor -------------------------------------------------------------------------------------
def doctor_fails(run: Run, *args: str) -> str:
    """Run doctor expecting a failed check: exit 1, the report on stdout."""
    from callscreen.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--db", str(run.db), "doctor", "--port", str(free_port()), *args])
    assert exc.value.code == 1
    return run.capsys.readouterr().out


def test_doctor_on_a_fresh_database(run: Run, tmp_path: Path) -> None:
    run("ext", "list")  # creates the database
    d = run.json("doctor", "--port", str(free_port()))
    assert d["ok"] is True
    names = [c["name"] for c in d["checks"]]
    assert names[:5] == [
        "config",
        "database integrity",
        "database schema",
        "database WAL",
        "database writable",
    ]
    assert all(set(c) == {"name", "ok", "detail", "hint"} for c in d["checks"])


def test_doctor_missing_database_fails_with_a_hint(run: Run) -> None:
    out = doctor_fails(run)
    assert "FAIL  database: no database at" in out and "fix: any callscreen command" in out
    assert not run.db.exists()  # doctor never creates or changes anything


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_port_in_use_by_something_else(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = doctor.check_port("127.0.0.1", port)
    assert not c.ok and "in use by another program" in c.detail


def test_doctor_dialplan_checks(tmp_path: Path) -> None:
    shipped = doctor.shipped_dialplan()
    ours = tmp_path / "callscreen.conf"
    relaxed = shipped.replace(" same => ", "same=>").replace("; ", ";; ")  # spacing, comments
    ours.write_text(relaxed)
    ext = tmp_path / "extensions.conf"
    ext.write_text(
        "[general]\nstatic=yes\n#include callscreen.conf\n[from-trunk]\nexten => _X.,1,NoOp()\n"
    )
    assert all(c.ok for c in doctor.check_dialplan(ext))
    ours.write_text(shipped.split("[callscreen-block-last]")[0])  # without *32: still ok
    checks = doctor.check_dialplan(ext)
    assert [c.ok for c in checks] == [True, True] and "*32" in checks[1].detail
    ours.write_text(shipped.replace("?blocked)", "?done)"))
    bad = doctor.check_dialplan(ext)[0]
    assert (
        not bad.ok and "differs at statement 13" in bad.detail and "callscreen dialplan" in bad.hint
    )
    ext.write_text("[from-trunk]\nexten => _X.,1,Dial(PJSIP/${EXTEN})\n")
    assert not doctor.check_dialplan(ext)[0].ok
    assert not doctor.check_dialplan(tmp_path / "missing.conf")[0].ok


def test_doctor_voicemail_boxes(run: Run, tmp_path: Path) -> None:
    vm = tmp_path / "voicemail.conf"
    vm.write_text(
        "[general]\nformat=wav\n[default]\n101 => 1234,Alice\n[office](!)\n[office2](office)\n"
        "7 => 1,Bob ; comment\n#tryinclude missing.conf\n"
    )
    run("ext", "set", "101", "--enable", "--treatment", "voicemail")
    run("ext", "set", "102", "--enable", "--treatment", "voicemail", "--mailbox", "7@office2")
    run("ext", "set", "103", "--enable", "--treatment", "busy")
    run("ext", "set", "104", "--treatment", "voicemail")  # blocking off: not needed
    boxes = doctor.voicemail_boxes(run.db)
    assert boxes == {"101": "101@default", "102": "7@office2"}
    assert doctor.check_voicemail(vm, boxes).ok
    run("ext", "set", "105", "--enable", "--treatment", "voicemail")
    c = doctor.check_voicemail(vm, doctor.voicemail_boxes(run.db))
    assert not c.ok and "105 -> 105@default" in c.detail and "voicemail.conf" in c.hint
    # The account's default treatment reaches every extension once account blocking is on.
    run("account", "set", "--enable", "--treatment", "voicemail")
    assert "104" in doctor.voicemail_boxes(run.db)
    assert "FAIL  voicemail boxes" in doctor_fails(run, "--voicemail-conf", str(vm))


def test_doctor_exit_code_and_bad_probe_argument(run: Run) -> None:
    run("ext", "list")
    run("doctor", "--probe", "nohostport", code=2)
    out = doctor_fails(run, "--probe", "127.0.0.1:1")
    assert "FAIL  probe 127.0.0.1:1: cannot connect" in out and "fix: start" in out


def test_doctor_disk_and_health_checks(run: Run, tmp_path: Path) -> None:
    run("ext", "list")  # creates the database
    d = run.json("doctor", "--port", str(free_port()))
    disk = next(c for c in d["checks"] if c["name"] == "disk")
    assert disk["ok"] and "MiB free" in disk["detail"]
    port = free_port()  # nothing serves /health there
    out = doctor_fails(run, "--health", f"127.0.0.1:{port}")
    assert f"FAIL  server health (127.0.0.1:{port})" in out
    assert "is serve running with --metrics-port?" in out


def test_doctor_ami_wants_the_secret_from_the_environment(tmp_path: Path) -> None:
    """The secret never on the command line: without the variable, one line and exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "CALLSCREEN_AMI_SECRET"}
    r = subprocess.run(
        [sys.executable, "-m", "callscreen", "--db", str(tmp_path / "x.db"), "doctor",
         "--ami", "127.0.0.1:5038"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "callscreen: error: --ami: set the AMI secret in the environment variable "
        "CALLSCREEN_AMI_SECRET"
    ]


def test_the_cli_finds_the_config_file_init_wrote(tmp_path: Path) -> None:
    """No --config and no CALLSCREEN_CONFIG: the user's config file is read (init writes it
    there), so a command changes the database the server uses, not one in the home."""
    home = tmp_path / "xdg"
    (home / "callscreen").mkdir(parents=True)
    served = tmp_path / "served.db"
    (home / "callscreen" / "callscreen.toml").write_text(f'db = "{served}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("CALLSCREEN_CONFIG", "CALLSCREEN_DB")}
    env["XDG_CONFIG_HOME"] = str(home)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callscreen", *args],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip

    assert cli("block", "add", "--ext", "101", "+13035550100").returncode == 0
    assert served.exists()
    listed = json.loads(cli("block", "list", "--ext", "101", "--json").stdout)
    assert [e["value"] for e in listed] == ["+13035550100"]
    # --db still beats the file.
    other = tmp_path / "other.db"
    assert cli("--db", str(other), "block", "list", "--ext", "101", "--json").stdout.strip() == "[]"
