"""Caller-name rules through the JSON API and the Blocking page."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from .conftest import Web
from .test_pages import entries, flash, follow, post, sign_in


def test_api_adds_lists_checks_and_removes_a_name_rule(web: Web) -> None:
    alice = web.client("alice")
    r = alice.post(
        "/api/v1/extensions/101/blocklist/names", json={"names": ["Scam Likely"], "note": "cnam"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"added": ["scam likely"], "already_listed": []}
    page = alice.get("/api/v1/extensions/101/blocklist").json()
    [e] = page["entries"]
    assert (e["field"], e["pattern"], e["raw"], e["note"]) == (
        "name",
        "scam likely",
        "Scam Likely",
        "cnam",
    )
    body = {"caller": "+13035550142", "name": "SCAM LIKELY"}
    d = alice.post("/api/v1/extensions/101/check", json=body).json()
    assert (d["result"], d["reason"], d["entry"]["id"]) == ("BLOCKED", "name-rule", e["id"])
    assert d["entry"]["field"] == "name" and d["caller"]["name"] == "SCAM LIKELY"
    other = alice.post("/api/v1/extensions/101/check", json={**body, "name": "Bob"}).json()
    assert (other["result"], other["reason"]) == ("ALLOWED", "not-listed")
    r = alice.delete("/api/v1/extensions/101/blocklist/names/" + quote("Scam Likely", safe=""))
    assert r.status_code == 200, r.text
    assert r.json() == {"removed": ["scam likely"], "not_listed": []}
    assert alice.get("/api/v1/extensions/101/blocklist").json()["total"] == 0


def test_api_refuses_bad_name_rules_with_the_ops_words_and_writes_nothing(web: Web) -> None:
    alice, admin = web.client("alice"), web.client("admin")
    before = web.snapshot()
    for names, words in [
        (["a*b"], "a * may only start or end a caller name: 'a*b'"),
        (["**"], "a caller name needs more than *: '**'"),
        (["V*", "\x1b[2J"], "a caller name cannot hold control characters"),
    ]:
        r = alice.post("/api/v1/extensions/101/blocklist/names", json={"names": names})
        assert r.status_code == 400 and r.json() == {"error": words}
    # Account rules are an admin's; a user gets 403.
    r = alice.post("/api/v1/account/blocklist/names", json={"names": ["V*"]})
    assert r.status_code == 403
    assert web.snapshot() == before
    r = admin.post("/api/v1/account/blocklist/names", json={"names": ["V*"]})
    assert r.status_code == 200 and r.json()["added"] == ["v*"]


def test_the_allowlist_has_no_name_rules(web: Web) -> None:
    # No names route on the allowlist; the ops function refuses with its own words too.
    admin = web.client("admin")
    r = admin.post("/api/v1/account/allowlist/names", json={"names": ["Mum"]})
    assert r.status_code in (404, 405)


def test_the_blocking_page_adds_shows_and_removes_a_caller_name(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    page = c.get("/ext/101").text
    assert '<label for="block-name">Caller name</label>' in page
    done = follow(c, post(c, "/ext/101/block/name", csrf, name="*SPAM*", note="carrier tag"))
    assert flash(done.text) == "Blocked callers named *spam*"
    assert "Caller name: *spam*" in done.text and "typed: *SPAM*" in done.text
    assert 'aria-label="Remove caller name *spam*"' in done.text
    [e] = entries(web, "101")
    assert (e["field"], e["value"], e["note"]) == ("name", "*spam*", "carrier tag")
    again = follow(c, post(c, "/ext/101/block/name", csrf, name="*spam*"))
    assert flash(again.text) == "Callers named *spam* were already blocked"
    gone = follow(c, post(c, "/ext/101/block/remove", csrf, name="*spam*"))
    assert flash(gone.text) == "Removed *spam*"
    assert entries(web, "101") == []


def test_a_bad_caller_name_on_the_page_keeps_what_was_typed(web: Web) -> None:
    c, csrf = sign_in(web, "alice")
    before = web.snapshot()
    r = post(c, "/ext/101/block/name", csrf, name="Sc*am", note="typed note")
    assert r.status_code == 400
    err = re.search(r'class="field-error" role="alert" id="block-name-error">([^<]*)<', r.text)
    assert err and html.unescape(err.group(1)) == "a * may only start or end a caller name: 'Sc*am'"
    assert 'value="Sc*am"' in r.text and 'value="typed note"' in r.text
    assert web.snapshot() == before
    # Another user's extension: ops' 403, nothing saved.
    r = post(c, "/ext/102/block/name", csrf, name="V*")
    assert r.status_code == 403
    assert web.snapshot() == before
