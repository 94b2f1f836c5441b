"""The administrator's pages over real HTTP: Extensions, Users, Audit, and CSV download and
import of a list. What an admin checks: the pages show the data, every change lands in the
store, a bad input changes nothing and says ops' words next to the field, a user gets 403
everywhere here, and hostile text stays text (also in a spreadsheet).
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from callscreen.cli import cli, main
from callscreen.db.store import NewEntry, Store
from callscreen.numbers import parse_pattern
from callscreen.ops import lists, settings, users
from callscreen.ops.actor import Actor, Role, Source
from callscreen.policy import Kind, Scope

from .conftest import PASSWORDS, Web
from .test_pages import csrf_of, entries, flash, follow, post, sign_in, store_read

FORMULA = '=HYPERLINK("http://evil.example/","click me")'
HOSTILE = "<img src=x onerror=alert(1)>"


def user(web: Web, name: str) -> dict[str, Any]:
    return dict(store_read(web, lambda s, a: users.user_show(s, a, name)))


def can_sign_in(web: Web, name: str, password: str) -> bool:
    r = web.client().post("/login", data={"username": name, "password": password})
    return r.status_code == 303


def run(web: Web, fn: Any) -> Any:
    async def go() -> Any:
        async with await Store.open(web.db) as store:
            return await fn(store, Actor.cli())

    return asyncio.run(go())


def cli_out(web: Web, *args: str) -> bytes:
    r = CliRunner().invoke(cli, ["--db", str(web.db), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout_bytes


def alert(text: str) -> str:
    """The text of the page's one role=alert element (tags dropped, entities decoded)."""
    found = re.findall(r'<(p|div) [^>]*role="alert"[^>]*>(.*?)</\1>', text, re.S)
    assert len(found) == 1, found
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found[0][1])).split())


def table(text: str) -> list[list[str]]:
    """The body rows of the page's (first) table, each cell's text."""
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in cells]
        for cells in (
            re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
        )
    ]


def value_of(text: str, id_: str) -> str:
    """The value of the input with ``id_``, as the browser shows it."""
    m = re.search(rf'<input id="{id_}"[^>]*? value="([^"]*)"', text)
    assert m, id_
    return html.unescape(m.group(1))


def upload(
    c: httpx.Client, path: str, csrf: str, data: bytes, name: str = "numbers.csv"
) -> httpx.Response:
    return c.post(path, data={"csrf": csrf}, files={"file": (name, data, "text/csv")})


# -- Extensions ----------------------------------------------------------------------------------
def test_extensions_lists_every_extension_with_its_state_and_list_sizes(web: Web) -> None:
    run(web, lambda s, a: settings.ext_set(s, a, "103", enabled=False, treatment="torture"))
    run(
        web,
        lambda s, a: lists.list_add(
            s, a, scope=Scope.EXTENSION, ext="103", kind=Kind.ALLOW, numbers=["3035550150"]
        ),
    )
    c, _ = sign_in(web, "admin")
    r = c.get("/extensions")
    assert r.status_code == 200
    assert "<h1>Extensions</h1>" in r.text
    rows = {row[0]: row[1:] for row in table(r.text)}
    assert rows == {
        "101": ["on", "Busy (account default)", "0", "0"],
        "102": ["on", "Busy (account default)", "1", "0"],
        "103": ["off", "Endless ringing", "0", "1"],
    }
    for ext in rows:
        assert f'<a href="/ext/{ext}">{ext}</a>' in r.text
    assert '<label for="open-ext">Extension</label>' in r.text
    assert re.search(r'<button type="submit"[^>]*>Open</button>', r.text)


def test_open_extension_goes_to_its_page_and_a_bad_one_is_an_inline_error(web: Web) -> None:
    c, _ = sign_in(web, "admin")
    r = c.get("/extensions", params={"open": " 104 "})
    assert r.status_code == 303 and r.headers["location"] == "/ext/104"
    assert "Call blocking for extension 104" in c.get("/ext/104").text
    before = web.snapshot()
    r = c.get("/extensions", params={"open": "<b>1</b>"})
    assert r.status_code == 400
    assert "<b>1</b>" not in r.text
    assert 'aria-invalid="true" aria-describedby="open-ext-error"' in r.text
    assert value_of(r.text, "open-ext") == "<b>1</b>"
    assert alert(r.text).startswith("not an extension: '<b>1</b>'")
    assert web.snapshot() == before


# -- Users ---------------------------------------------------------------------------------------
def test_an_added_user_is_stored_and_can_sign_in(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    r = post(c, "/users", csrf, username="dave", password="dave-password", extensions="103, 104 ")
    page = follow(c, r)
    assert flash(page.text) == "Added user dave"
    assert re.search(r'<th scope="row">dave<br><small>user</small>', page.text)
    got = user(web, "dave")
    assert (got["role"], got["extensions"], got["disabled"]) == ("user", ["103", "104"], False)
    assert can_sign_in(web, "dave", "dave-password")

    r = post(c, "/users", csrf, username="erin", password="erin-password", admin="1")
    assert flash(follow(c, r).text) == "Added user erin"
    assert user(web, "erin")["role"] == "admin"


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"username": "dave", "password": "x7Q!", "extensions": "104"}, "password",
         "the password is too short (at least 8 characters)"),
        ({"username": "<b>eve</b>", "password": "long-enough", "extensions": "104"}, "username",
         "not a username: '<b>eve</b>'"),
        ({"username": "alice", "password": "long-enough", "extensions": "104"}, "username",
         "user 'alice' already exists"),
        ({"username": "dave", "password": "long-enough", "extensions": ""}, "extensions",
         "a user needs at least one extension"),
        ({"username": "dave", "password": "long-enough", "extensions": "1 2", "admin": "1"},
         "extensions", "give extensions or admin, not both"),
        ({"username": "dave", "password": "long-enough", "extensions": "10 1'1"}, "extensions",
         "not an extension: \"1'1\""),
    ],
    ids=["short-password", "hostile-name", "exists", "no-extension", "admin-and-exts", "bad-ext"],
)  # fmt: skip
def test_a_bad_new_user_keeps_what_was_typed_and_saves_nothing(
    web: Web, form: dict[str, str], field: str, words: str
) -> None:
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    r = post(c, "/users", csrf, **form)
    assert r.status_code == 400
    assert words in alert(r.text)
    assert f'aria-invalid="true" aria-describedby="add-{field}-error"' in r.text or (
        field == "extensions"
        and 'aria-describedby="add-extensions-hint add-extensions-error"' in r.text
    )
    assert value_of(r.text, "add-username") == form["username"]
    assert value_of(r.text, "add-extensions") == form["extensions"]
    assert form["password"] not in r.text  # never sent back
    assert "<b>" not in r.text
    assert ("checked" in r.text) == ("admin" in form)
    assert web.snapshot() == before


def test_disable_enable_password_and_extensions_per_user(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    page = c.get("/users").text
    for label in (
        'Disable<span class="sr-only"> bob</span>',
        'New password<span class="sr-only"> for bob</span>',
        'Set password<span class="sr-only"> for bob</span>',
        'Extensions<span class="sr-only"> of bob</span>',
        'Save extensions<span class="sr-only"> of bob</span>',
        'Enable<span class="sr-only"> carol</span>',  # carol is disabled
    ):
        assert page.count(label) == 1, label
    ids = re.findall(r' id="([^"]+)"', page)
    assert len(ids) == len(set(ids))

    assert flash(follow(c, post(c, "/users/bob/disable", csrf)).text) == "Disabled bob"
    assert user(web, "bob")["disabled"] is True
    assert not can_sign_in(web, "bob", PASSWORDS["bob"])
    assert flash(follow(c, post(c, "/users/bob/enable", csrf)).text) == "Enabled bob"
    assert can_sign_in(web, "bob", PASSWORDS["bob"])

    r = post(c, "/users/bob/password", csrf, password="bob-new-password")
    assert flash(follow(c, r).text) == "Password set for bob"
    assert can_sign_in(web, "bob", "bob-new-password")
    assert not can_sign_in(web, "bob", PASSWORDS["bob"])

    r = post(c, "/users/bob/extensions", csrf, extensions="102,105")
    page = follow(c, r).text
    assert flash(page) == "Saved extensions of bob"
    assert user(web, "bob")["extensions"] == ["102", "105"]
    assert 'value="102, 105"' in page


@pytest.mark.parametrize(
    ("path", "fields", "words", "described"),
    [
        ("/users/bob/password", {"password": "x7Q!"}, "the password is too short", "password"),
        ("/users/bob/extensions", {"extensions": "102 <x>"}, "not an extension: '<x>'",
         "extensions"),
        ("/users/bob/extensions", {"extensions": " "}, "a user needs at least one extension",
         "extensions"),
        ("/users/admin/disable", {},
         "the last enabled administrator cannot be disabled, demoted or removed", "disable"),
    ],
    ids=["short-password", "bad-ext", "no-ext", "last-admin"],
)  # fmt: skip
def test_a_refused_row_change_shows_ops_words_on_that_row_and_saves_nothing(
    web: Web, path: str, fields: dict[str, str], words: str, described: str
) -> None:
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    r = post(c, path, csrf, **fields)
    assert r.status_code == 400
    assert words in alert(r.text)
    assert re.search(rf'aria-describedby="u\d-{described}-error"', r.text)
    if "extensions" in fields:
        bobs = re.search(r'<label for="([^"]+)">Extensions<span class="sr-only"> of bob<', r.text)
        assert bobs and value_of(r.text, bobs.group(1)) == fields["extensions"]  # as typed
    assert "<x>" not in r.text and "x7Q!" not in r.text
    assert web.snapshot() == before


def test_an_unknown_user_is_a_404_page(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    r = post(c, "/users/nobody/disable", csrf)
    assert r.status_code == 404 and "no user &#39;nobody&#39;" in r.text
    assert web.snapshot() == before


# -- Audit ---------------------------------------------------------------------------------------
def test_audit_shows_who_did_what_newest_first_with_hostile_values_as_text(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    follow(c, post(c, "/ext/101/block", csrf, number="303 555 0177"))
    follow(c, post(c, "/users/bob/disable", csrf))
    hostile = Actor(name=HOSTILE, role=Role.ADMIN, source=Source.CLI)  # an OS user name
    asyncio.run(_as(web, hostile, lambda s, a: settings.ext_set(s, a, "101", enabled=False)))
    r = c.get("/audit")
    assert r.status_code == 200 and "<h1>Audit</h1>" in r.text
    rows = table(r.text)
    assert rows[0][:5] == [rows[0][0], HOSTILE, "cli", "ext.set", "ext:101"]
    assert '"enabled":true' in rows[0][5] and '"enabled":false' in rows[0][5]
    assert rows[1][1:5] == ["admin", "portal 127.0.0.1", "user.set", "user:bob"]
    assert '"disabled":false' in rows[1][5] and '"disabled":true' in rows[1][5]
    assert rows[2][1:5] == ["admin", "portal 127.0.0.1", "block.add", "ext:101"]
    assert '"added":["+13035550177"]' in rows[2][5]
    assert rows[-1][3] == "user.add"  # the oldest: the template's users
    assert "<img" not in r.text and "&lt;img src=x" in r.text


async def _as(web: Web, actor: Actor, fn: Any) -> Any:
    async with await Store.open(web.db) as store:
        return await fn(store, actor)


def test_audit_pages_by_100_without_gaps_or_repeats(web: Web) -> None:
    async def many(s: Store, a: Actor) -> None:
        for i in range(150):
            await lists.list_add(
                s, a, scope=Scope.EXTENSION, ext="101", kind=Kind.BLOCK, numbers=[f"+1303555{i:04}"]
            )

    run(web, many)
    c, _ = sign_in(web, "admin")
    total = len(store_read(web, lambda s, a: s.audit_log(limit=10_000)))
    seen: list[str] = []
    path: str | None = "/audit"
    while path:
        page = c.get(path).text
        rows = [" ".join(row) for row in table(page)]
        assert len(rows) <= 100
        seen += rows
        m = re.search(r'<a href="(/audit\?before=\d+)">Next page</a>', page)
        path = html.unescape(m.group(1)) if m else None
        if path:
            assert len(rows) == 100
    assert len(seen) == total and len(set(seen)) == total
    added = [re.findall(r"\+1303555\d{4}", row) for row in seen if "block.add" in row]
    assert added[:150] == [[f"+1303555{i:04}"] for i in reversed(range(150))]


# -- CSV -----------------------------------------------------------------------------------------
def _fill(web: Web, ext: str, n: int) -> None:
    rows = [
        NewEntry(
            Scope.EXTENSION, ext, Kind.BLOCK, parse_pattern(f"+1720555{i:04}", "US"), f"note {i}"
        )
        for i in range(n)
    ]
    run(web, lambda s, a: lists.import_rows(s, a, rows, scope=Scope.EXTENSION, ext=ext))


def test_the_download_is_the_cli_export_byte_for_byte_and_formulas_are_inert(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    follow(c, post(c, "/ext/101/block", csrf, number="(303) 555-0101", note=FORMULA))
    follow(c, post(c, "/ext/101/block", csrf, number="+1900*", note="-1+1", days30="1"))
    follow(c, post(c, "/ext/101/block", csrf, number="3035550103", note="line\r\nbreak, é"))
    r = c.get("/ext/101/block.csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="callscreen-ext-101-block.csv"'
    assert r.content == cli_out(web, "export", "--ext", "101", "--list", "block")
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert rows[0]["number"] == "+13035550101" and rows[0]["note"] == "'" + FORMULA
    assert rows[0]["raw"] == "(303) 555-0101"
    assert rows[2]["note"] == "'-1+1" and rows[2]["expires"]
    # The file imports back exactly: the same numbers, notes (the ' dropped) and expiry.
    page = follow(c, upload(c, "/ext/103/block/import", csrf, r.content))
    assert flash(page.text) == "Imported 3 numbers (0 already listed)"
    keys = ("pattern", "raw", "note", "expires")
    assert [[e[k] for k in keys] for e in entries(web, "103")] == [
        [e[k] for k in keys] for e in entries(web, "101")
    ]
    assert entries(web, "103")[0]["note"] == FORMULA
    page = follow(c, upload(c, "/ext/103/block/import", csrf, r.content))
    assert flash(page.text) == "Imported 0 numbers (3 already listed)"


def test_a_long_list_streams_in_chunks_the_same_as_the_cli(web: Web) -> None:
    _fill(web, "101", 6000)
    c, _ = sign_in(web, "admin")
    with c.stream("GET", "/ext/101/block.csv") as r:
        chunks = list(r.iter_raw())
    assert len(chunks) > 1
    assert b"".join(chunks) == cli_out(web, "export", "--ext", "101")
    empty = c.get("/account/allow.csv")
    assert empty.content == b"number,note,raw,expires\n"
    assert 'filename="callscreen-account-allow.csv"' in empty.headers["content-disposition"]


def test_a_bad_file_lists_every_bad_row_in_the_cli_words_and_imports_nothing(
    web: Web, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = b"number,note\n3035550111,ok\n12ab,bad\n3035550112,ok too\nzz,bad too\n"
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    r = upload(c, "/ext/101/block/import", csrf, bad)
    assert r.status_code == 400
    assert "Call blocking for extension 101" in r.text  # the Blocking page, with the error
    shown = alert(r.text)
    assert 'aria-invalid="true" aria-describedby="block-csv-error"' in r.text
    assert '<details class="transfer" open>' in r.text
    assert web.snapshot() == before
    # The same words as `callscreen import` (run from where the file is called numbers.csv).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "numbers.csv").write_bytes(bad)
    with pytest.raises(SystemExit) as exit_:
        main(["--db", str(web.db), "import", "--ext", "101", "numbers.csv"])
    assert exit_.value.code == 2
    lines = [ln.removeprefix("callscreen: error: ") for ln in capsys.readouterr().err.splitlines()]
    assert len(lines) == 3 and lines[-1] == "2 bad rows in numbers.csv: nothing imported"
    assert "line 3" in lines[0] and "line 5" in lines[1]
    for ln in lines:
        assert " ".join(ln.split()) in " ".join(shown.split())
    assert web.snapshot() == before


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"scope,ext,kind,number\next,101,block,3035550111\n", "all.csv",
         "all.csv: the file has scope/ext/kind columns (an export --all file): use --all"),
        (b"\xff\xfe3035550111\n", "<b>x</b>.csv", "<b>x</b>.csv: not UTF-8 text"),
        (b"", "", "choose a file to import"),
    ],
    ids=["export-all-file", "not-utf8-hostile-name", "no-file"],
)  # fmt: skip
def test_a_file_that_does_not_fit_is_refused_whole(
    web: Web, data: bytes, name: str, words: str
) -> None:
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    if name:
        r = upload(c, "/account/block/import", csrf, data, name)
    else:  # the form sent without a file chosen
        r = c.post("/account/block/import", data={"csrf": csrf}, files={"file": ("", b"")})
    assert r.status_code == 400
    assert words in alert(r.text)
    assert "<b>x</b>" not in r.text
    assert web.snapshot() == before


def test_the_account_lists_import_and_export(web: Web) -> None:
    c, csrf = sign_in(web, "admin")
    data = b"3035550160,friend\n+1 303 555 0161\n3035550160,again\n"
    page = follow(c, upload(c, "/account/allow/import", csrf, data))
    assert flash(page.text) == "Imported 2 numbers (0 already listed, 1 repeated in the file)"
    assert [e["pattern"] for e in entries(web, None, Kind.ALLOW)] == [
        "+13035550160",
        "+13035550161",
    ]
    r = c.get("/account/allow.csv")
    assert r.content == cli_out(web, "export", "--account", "--list", "allow")
    audit = store_read(web, lambda s, a: s.audit_log(limit=1))[0]
    assert (audit.action, audit.target, audit.actor) == ("import", "account", "admin")


# -- who may -------------------------------------------------------------------------------------
ADMIN_GETS = [
    "/extensions",
    "/extensions?open=101",
    "/users",
    "/audit",
    "/ext/101/block.csv",  # alice's own extension: export is an admin's
    "/ext/101/allow.csv",
    "/account/block.csv",
    "/account/allow.csv",
]
ADMIN_POSTS: list[tuple[str, dict[str, str]]] = [
    ("/users", {"username": "mallory", "password": "long-enough", "extensions": "101"}),
    ("/users", {"username": "<x>", "password": "x7Q!", "extensions": ""}),  # bad input too
    ("/users/bob/disable", {}),
    ("/users/carol/enable", {}),
    ("/users/bob/password", {"password": "taken-over!"}),
    ("/users/bob/extensions", {"extensions": "101 102"}),
    ("/users/alice/extensions", {"extensions": "101 102"}),  # her own
    ("/users/alice/extensions", {"extensions": "<x>"}),
]
IMPORTS = ["/ext/101/block/import", "/ext/101/allow/import", "/account/block/import"]


def test_a_user_gets_403_on_every_admin_url(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    before = web.snapshot()
    for path in ADMIN_GETS:
        r = c.get(path)
        assert r.status_code == 403, path
        assert "only an administrator may do this" in r.text, path
    for path, fields in ADMIN_POSTS:
        r = post(c, path, csrf, **fields)
        assert r.status_code == 403, path
        assert "only an administrator may do this" in r.text, path
    for path in IMPORTS:
        for data in (b"3035550111\n", b"zz\n"):
            r = upload(c, path, csrf, data)
            assert r.status_code == 403, path
            assert "only an administrator may do this" in r.text, path
    assert web.snapshot() == before
    assert 'href="/ext/101/block.csv"' not in c.get("/ext/101").text
    # Her own password is hers to set (ops' rule, as in the API): that signs her out.
    r = post(c, "/users/alice/password", csrf, password="alice-new-password")
    assert r.status_code == 303
    assert c.get("/ext/101").headers["location"] == "/"
    assert can_sign_in(web, "alice", "alice-new-password")


@pytest.mark.parametrize("token", [None, "forged"])
def test_an_admin_post_without_the_csrf_token_is_403_and_changes_nothing(
    web: Web, token: str | None
) -> None:
    c, csrf = sign_in(web, "admin")
    before = web.snapshot()
    extra = {} if token is None else {"csrf": token}
    for path, fields in ADMIN_POSTS[:1] + ADMIN_POSTS[2:7]:
        r = c.post(path, data={**fields, **extra})
        assert r.status_code == 403, path
        assert "this form is out of date" in r.text
    for path in IMPORTS:
        r = c.post(path, data=extra, files={"file": ("n.csv", b"3035550111\n", "text/csv")})
        assert r.status_code == 403, path
    assert web.snapshot() == before
    assert csrf_of(c.get("/users").text) == csrf  # still signed in, same session
