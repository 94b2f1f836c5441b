"""Property tests against the running server: hostile JSON bodies, paths and numbers always get
an answer under 500, and a refused request writes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .conftest import Web

JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    ["numbers", "note", "for", "until", "enabled", "anonymous", "treatment", "mailbox", "caller",
     "callingpres", "username", "password", "x", "__proto__", ""]
)  # fmt: skip
BODIES = st.one_of(JSONISH, st.dictionaries(FIELDS, JSONISH, max_size=5))
HOSTILE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40
) | st.sampled_from(
    ["..", "%2e%2e", "../../etc/passwd", "%00", "\x00", "+", "*", "#", "+1303555*", "%2F",
     "1" * 5000, "<script>", "\u202e101", "１０１", "101\n", "101%0a"]
)  # fmt: skip
TARGETS = [
    ("POST", "/api/v1/extensions/{ext}/blocklist"),
    ("POST", "/api/v1/extensions/{ext}/allowlist"),
    ("PATCH", "/api/v1/extensions/{ext}"),
    ("POST", "/api/v1/extensions/{ext}/check"),
    ("PATCH", "/api/v1/account"),
    ("POST", "/api/v1/account/blocklist"),
    ("POST", "/api/v1/session"),
]


@pytest.fixture
def server(make_web: Callable[..., Web]) -> Iterator[Web]:
    yield make_web()


PROPERTY = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@PROPERTY
@given(body=BODIES, target=st.sampled_from(TARGETS), ext=st.sampled_from(["101", "102"]))
def test_hostile_json_bodies_never_500_and_refusals_write_nothing(
    server: Web, body: Any, target: tuple[str, str], ext: str
) -> None:
    method, path = target
    c = server.client("alice")
    before = server.snapshot()
    r = c.request(method, path.format(ext=ext), json=body)
    assert r.status_code < 500, (method, path, body, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}
        assert server.snapshot() == before
    if ext == "102" or "/account" in path:  # never alice's to change
        assert r.status_code in (400, 401, 403, 415, 429), (r.status_code, r.text)
    c.close()
    server.clients.remove(c)


@PROPERTY
@given(
    ext=HOSTILE_TEXT,
    number=HOSTILE_TEXT,
    method=st.sampled_from(["GET", "DELETE", "POST", "PATCH"]),
    tail=st.sampled_from(["", "/blocklist", "/allowlist", "/calls", "/check", "/blocklist/"]),
)
def test_hostile_paths_and_numbers_never_500(
    server: Web, ext: str, number: str, method: str, tail: str
) -> None:
    # "." and ".." are dot segments: the client resolves them away before sending (".": a
    # request for /api/v1/extensions itself), so the server never sees such an extension.
    assume(ext not in (".", ".."))
    c = server.client("alice")
    before = server.snapshot()
    path = f"/api/v1/extensions/{quote(ext, safe='')}{tail}"
    if tail.endswith("/"):
        path += quote(number, safe="")
    body = {"numbers": [number]} if method == "POST" else None
    try:
        r = c.request(method, path, json=body)
    except httpx.InvalidURL:
        return  # the client refused to send it
    assert r.status_code < 500, (method, path, r.text)
    if ext != "101":
        assert r.status_code >= 400
        assert server.snapshot() == before
    c.close()
    server.clients.remove(c)
