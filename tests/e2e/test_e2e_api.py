"""A change made through the HTTP API applies to the next real call through Asterisk.

`callscreen web` runs as its own process on the database the session's `callscreen serve`
uses; a user who owns extension 240 changes it with their API token (and with their session
cookie and its CSRF token), and each change is checked with a call placed through Asterisk.
"""

from __future__ import annotations

import httpx
import pytest

from ..web.web_process import WebProcess
from .bed import Ami, Cli
from .test_e2e_screening import assert_allowed, assert_blocked

pytestmark = pytest.mark.e2e

EXT = "240"
CALLER = '"Pest" <+13035550240>'
EXT_PATH = f"/api/v1/extensions/{EXT}"


async def test_api_changes_apply_to_the_next_call(cli: Cli, ami: Ami) -> None:
    cli.run("user", "add", "e2e-web", "--ext", EXT, "--password-stdin", input="e2e-password\n")
    token = cli("token", "create", "e2e-web", "--name", "e2e").strip()
    web = WebProcess(cli.db, "web", "--port", "0")
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with (
            httpx.AsyncClient(
                base_url=base,
                headers={"Authorization": f"Bearer {token}"},
            ) as api,
            httpx.AsyncClient(base_url=base) as portal,
        ):
            r = await api.patch(EXT_PATH, json={"enabled": True, "treatment": "busy"})
            assert r.status_code == 200, r.text
            assert_allowed(await ami.call(EXT, CALLER), "not-listed")

            body = {"numbers": ["(303) 555-0240"], "note": "via API"}
            r = await api.post(EXT_PATH + "/blocklist", json=body)
            assert r.json()["added"] == ["+13035550240"], r.text
            assert_blocked(await ami.call(EXT, CALLER), "ext-blocklist")

            # The portal's way: a session cookie, and the CSRF token on every change.
            signed = await portal.post(
                "/api/v1/session", json={"username": "e2e-web", "password": "e2e-password"}
            )
            csrf = {"X-CSRF-Token": signed.json()["csrf"]}
            path = f"/api/v1/extensions/{EXT}/blocklist/%2B13035550240"
            r = await portal.delete(path, headers=csrf)
            assert r.json()["removed"] == ["+13035550240"], r.text
            assert_allowed(await ami.call(EXT, CALLER), "not-listed")

            r = await api.patch(EXT_PATH, json={"enabled": False})
            assert r.status_code == 200, r.text
            await api.post(EXT_PATH + "/blocklist", json=body)
            assert_allowed(await ami.call(EXT, CALLER), "blocking-off")
    finally:
        assert web.stop() == 0, "".join(web.lines)
    audit = cli.json("audit", "--limit", "20")
    assert "e2e-web" in {row["actor"] for row in audit}
