"""A number blocked in the portal, in a real browser, gets Busy on the next real call through
Asterisk; removed in the browser, the next call reaches Dial.

`callscreen web` runs as its own process on the database the session's `callscreen serve`
uses (as in test_e2e_api.py); headless chromium (tests/browser/harness.py) signs in as a user
who owns extension 241 and clicks what a person clicks. The test is async (AMI calls), so it
drives the browser with Playwright's async API.
"""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Page, expect

from ..browser.harness import TIMEOUT_MS, async_browser
from ..web.web_process import WebProcess
from .bed import Ami, Cli
from .test_e2e_screening import assert_allowed, assert_blocked

pytestmark = pytest.mark.e2e

EXT = "241"
NUMBER = "+13035550241"
CALLER = f'"Pest" <{NUMBER}>'
USER, PASSWORD = "e2e-portal", "e2e-portal-password"


async def see_flash(page: Page, text: str) -> None:
    await expect(page.locator("#flash")).to_have_text(text, timeout=TIMEOUT_MS)


async def test_blocked_in_the_browser_busy_on_the_next_real_call(cli: Cli, ami: Ami) -> None:
    cli.run("user", "add", USER, "--ext", EXT, "--password-stdin", input=PASSWORD + "\n")
    web = WebProcess(cli.db, "web", "--port", "0")
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with async_browser() as browser:
            context = await browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()

            await page.goto(base + "/")
            await page.get_by_label("Username").fill(USER)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page).to_have_url(f"{base}/ext/{EXT}", timeout=TIMEOUT_MS)

            await page.get_by_role("button", name="Turn On Call Blocking").click()
            await see_flash(page, "Call blocking is on")
            treatment = page.get_by_role("region", name="When blocking calls")
            await treatment.get_by_role("button", name="Voicemail", exact=True).click()
            await see_flash(page, "Saved: blocked callers hear voicemail")
            await treatment.get_by_role("button", name="Busy", exact=True).click()
            await see_flash(page, "Saved: blocked callers hear busy")
            assert_allowed(await ami.call(EXT, CALLER), "not-listed")

            blocked = page.get_by_role("region", name="Blocked Numbers", exact=True)
            await blocked.get_by_label("Number", exact=True).fill("(303) 555-0241")
            await blocked.get_by_role("button", name="Add", exact=True).click()
            await see_flash(page, f"Blocked {NUMBER}")
            assert_blocked(await ami.call(EXT, CALLER), "ext-blocklist", "busy")

            # The blocked call shows in Recent calls once the server's writer has logged it.
            calls = page.get_by_role("region", name="Recent calls", exact=True)
            unblock = calls.get_by_role("button", name=f"Unblock {NUMBER}")
            deadline = time.monotonic() + 10
            while not await unblock.count() and time.monotonic() < deadline:
                await page.wait_for_timeout(250)
                await page.reload()
            await expect(unblock.first).to_be_visible(timeout=TIMEOUT_MS)

            await blocked.get_by_role("button", name=f"Remove {NUMBER}").click()
            await see_flash(page, f"Removed {NUMBER}")
            await expect(blocked.get_by_role("button", name=f"Remove {NUMBER}")).to_have_count(0)
            assert_allowed(await ami.call(EXT, CALLER), "not-listed")
            await context.close()
    finally:
        assert web.stop() == 0, "".join(web.lines)
    audit = cli.json("audit", "--limit", "20")
    assert USER in {row["actor"] for row in audit}
