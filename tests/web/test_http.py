"""HTTP-level behaviour: security headers on every response, the body limit (413 before the
body is read), JSON errors for 404/405/415/500, malformed input as 400 with nothing written,
URL-encoded numbers, and hostile stored text returned exactly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from callscreen.db.store import CallRecord, Store
from callscreen.web import api
from tests.pg import BACKENDS

from .conftest import Web

#: The API and its permission checks, once on SQLite and once on PostgreSQL (tests/pg.py).
pytestmark = pytest.mark.parametrize("web_backend", BACKENDS)

API_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_headers(r: httpx.Response) -> None:
    for name, value in API_HEADERS.items():
        assert r.headers.get(name) == value, (r.request.method, r.request.url, name, r.headers)
    assert "server" not in r.headers


def test_every_kind_of_response_carries_the_security_headers(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = web.client("alice")
    anon = web.client()
    big = b'{"numbers": [' + b'"+13035550100",' * 80_000 + b'"1"]}'

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret detail")

    responses = {
        200: anon.get("/api/v1/openapi.json"),
        401: anon.get("/api/v1/me"),
        403: alice.get("/api/v1/extensions/102"),
        404: anon.get("/api/v1/nowhere"),
        405: anon.put("/api/v1/me"),
        400: alice.post("/api/v1/extensions/101/blocklist", content=b"{", headers=_JSON),
        413: alice.post("/api/v1/extensions/101/blocklist", content=big, headers=_JSON),
        415: alice.post("/api/v1/extensions/101/blocklist", content=b"{}"),
    }
    monkeypatch.setattr(api.settings, "ext_show", broken)
    responses[500] = alice.get("/api/v1/extensions/101")
    for status, r in responses.items():
        assert r.status_code == status, (status, r.text)
        assert_headers(r)
        assert r.headers["content-type"].startswith("application/json")
        if status != 200:
            assert set(r.json()) == {"error"}
    assert responses[500].json() == {"error": "internal error"}
    # One spelling per route: a trailing slash is a 404, not a redirect (with the credentials).
    slash = alice.get("/api/v1/me/")
    assert (slash.status_code, slash.json()) == (404, {"error": "no such route"})
    assert_headers(slash)
    assert set(responses[405].headers["allow"].split(", ")) == {"GET", "HEAD"}


_JSON = {"Content-Type": "application/json"}


def test_a_body_over_the_limit_is_413_and_nothing_is_written(web: Web) -> None:
    before = web.snapshot()
    numbers = [f"+1303555{i:04d}" for i in range(10_000)]
    body = json.dumps({"numbers": numbers, "note": "x" * 500}).encode()
    assert len(body) < 1024 * 1024  # a full batch fits
    pad = json.dumps({"numbers": numbers, "note": "x" * (1024 * 1024)}).encode()
    r = web.client("alice").post("/api/v1/extensions/101/blocklist", content=pad, headers=_JSON)
    assert r.status_code == 413
    assert r.json() == {"error": "request body over 1048576 bytes"}
    assert web.snapshot() == before


def test_a_chunked_body_is_cut_off_at_the_limit(web: Web) -> None:
    """No Content-Length: the body is counted as it arrives and refused past the limit."""
    before = web.snapshot()
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"numbers": ["+13035550100"], "note": "'
        for _ in range(64):  # 4 MiB, unless the server stops listening first
            sent += 65536
            yield b"x" * 65536
        yield b'"}'

    try:
        r = web.client("alice").post(
            "/api/v1/extensions/101/blocklist", content=chunks(), headers=_JSON
        )
        assert r.status_code == 413
    except httpx.TransportError:
        pass  # the server closed the connection after answering: also a refusal
    assert web.snapshot() == before


def test_a_full_batch_of_10000_numbers_is_accepted(web: Web) -> None:
    numbers = [f"+1303555{i:04d}" for i in range(10_000)]
    r = web.client("alice").post("/api/v1/extensions/101/blocklist", json={"numbers": numbers})
    assert r.status_code == 200, r.text
    assert len(r.json()["added"]) == 10_000


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", "request body: not JSON"),
        (b"", "request body: expected a JSON object"),
        (b"[]", "request body: expected a JSON object, got an array"),
        (b'"numbers"', "request body: expected a JSON object, got a string"),
        (b'{"numbers": "+13035550100"}', "numbers: expected an array, got a string"),
        (b'{"numbers": [13035550100]}', "numbers[0]: expected a string, got a number"),
        (b'{"numbers": ["+13035550100"], "notes": "x"}', "unknown field 'notes'"),
        (b'{"numbers": ["+13035550100"], "for": 30}', "for: expected a string, got a number"),
        (b'{"numbers": ["+13035550100", "not a number"]}', None),  # ops' own words
        (b'{"numbers": ["+13035550100"], "for": "forever-ish"}', None),
        (b'{"numbers": ["\\ud800"]}', "numbers[0]: not valid Unicode text"),
        (b'{"numbers": NaN}', "request body: NaN is not JSON"),
        (b"\xff", "request body: not UTF-8"),
    ],
)
def test_bad_input_is_400_with_one_line_and_nothing_written(
    web: Web, body: bytes, error: str | None
) -> None:
    before = web.snapshot()
    r = web.client("alice").post("/api/v1/extensions/101/blocklist", content=body, headers=_JSON)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert "\n" not in message and message
    if error is not None:
        assert message.startswith(error)
    assert web.snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/api/v1/extensions/101", {"enabled": "yes"}),
        ("PATCH", "/api/v1/extensions/101", {"enabled": None}),
        ("PATCH", "/api/v1/extensions/101", {"treatment": "drown"}),
        ("PATCH", "/api/v1/extensions/101", {"anonymous": ["block"]}),
        ("PATCH", "/api/v1/extensions/101", {"ringtone": "x"}),
        ("PATCH", "/api/v1/extensions/101", {"unknown": "block"}),
        ("PATCH", "/api/v1/extensions/101", {"remember": 30}),
        ("PATCH", "/api/v1/extensions/101", {"challenge_fallback": "torture"}),
        ("POST", "/api/v1/extensions/101/check", {}),
        ("POST", "/api/v1/extensions/101/check", {"caller": "+1", "callingpres": 1e3}),
        ("POST", "/api/v1/extensions/101/check", {"caller": "+1", "callingpres": 999}),
        ("GET", "/api/v1/extensions/101/blocklist?limit=abc", None),
        ("GET", "/api/v1/extensions/101/blocklist?limit=0", None),
        ("GET", "/api/v1/extensions/101/blocklist?offset=-1", None),
        ("GET", "/api/v1/extensions/101/blocklist?sort=x", None),
        ("GET", "/api/v1/extensions/101/calls?limit=1&limit=2", None),
    ],
)
def test_wrong_types_unknown_fields_and_bad_queries_are_400(
    web: Web, method: str, path: str, body: Any
) -> None:
    before = web.snapshot()
    r = web.client("alice").request(method, path, json=body)
    assert r.status_code == 400, r.text
    assert web.snapshot() == before


def test_the_challenge_settings_over_the_api(web: Web) -> None:
    alice = web.client("alice")
    r = alice.patch(
        "/api/v1/extensions/101",
        json={"enabled": True, "unknown": "challenge", "remember": "30d"},
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["unknown"], data["remember"], data["remember_set"]) == ("challenge", "30d", True)
    r = alice.post("/api/v1/extensions/101/check", json={"caller": "+13035550123"})
    assert (r.json()["result"], r.json()["challenge"]["remember"]) == ("CHALLENGED", "30d")
    # The account's defaults are an admin's.
    r = alice.patch("/api/v1/account", json={"challenge_fallback": "hangup"})
    assert r.status_code == 403


def test_a_batch_with_one_bad_number_stores_none(web: Web) -> None:
    alice = web.client("alice")
    before = web.snapshot()
    r = alice.post(
        "/api/v1/extensions/101/blocklist",
        json={"numbers": ["+13035550111", "+13035550112", "banana", "+13035550113"]},
    )
    assert r.status_code == 400
    assert "banana" in r.json()["error"]
    assert web.snapshot() == before
    assert alice.get("/api/v1/extensions/101/blocklist").json()["total"] == 0


@pytest.mark.parametrize("typed", ["%2B13035550177", "(303)%20555-0177", "303.555.0177"])
def test_delete_takes_the_number_url_encoded_in_any_accepted_form(web: Web, typed: str) -> None:
    alice = web.client("alice")
    r = alice.post("/api/v1/extensions/101/blocklist", json={"numbers": ["+13035550177"]})
    assert r.status_code == 200
    r = alice.delete(f"/api/v1/extensions/101/blocklist/{typed}")
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == ["+13035550177"]
    assert alice.get("/api/v1/extensions/101/blocklist").json()["total"] == 0


def test_hostile_stored_text_comes_back_exactly_and_inert(web: Web) -> None:
    caller = "<script>alert(1)</script>\x1b[31m\u202e&amp;"

    async def store_call() -> None:
        async with await Store.open(web.db) as store:
            await store.write_calls(
                [
                    CallRecord(
                        time=time.time(),
                        ext="101",
                        caller_raw=caller,
                        caller_e164=None,
                        result="ALLOWED",
                        reason="not-listed",
                        treatment=None,
                        entry_id=None,
                        duration=0.001,
                        caller_name=caller,
                    )
                ],
                {},
            )

    asyncio.run(store_call())
    alice = web.client("alice")
    note = "<img src=x onerror=alert(1)>\x1b]0;owned\x07"
    r = alice.post(
        "/api/v1/extensions/101/blocklist", json={"numbers": ["+13035550155"], "note": note}
    )
    assert r.status_code == 200
    calls = alice.get("/api/v1/extensions/101/calls")
    entries = alice.get("/api/v1/extensions/101/blocklist")
    assert calls.json()[0]["caller_raw"] == caller  # exactly as sent, once parsed
    assert calls.json()[0]["caller_name"] == caller
    assert entries.json()["entries"][0]["note"] == note
    for r in (calls, entries):
        assert r.status_code == 200
        raw = r.content  # and not one byte a browser or a terminal would act on
        assert all(b not in raw for b in (b"<", b">", b"&", b"\x1b", b"\x07"))
        assert raw.isascii()
