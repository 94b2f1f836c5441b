"""Every portal page through axe-core (the accessibility engine browsers' dev tools use), in
the real Chromium, at desktop and phone widths: labels, names, contrast, headings, landmarks,
ARIA. A rule axe finds broken on any page fails the test with what and where.

axe-core comes inside the ``axe-playwright-python`` wheel (no CDN, nothing fetched at run
time). Rules that only make sense for a whole site with real content are left as axe runs them
by default; nothing is switched off.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, ViewportSize

from .harness import DESKTOP, PHONE, Portal, sign_in

AXE = Axe()

USER_PAGES = ["/ext/101"]
ADMIN_PAGES = ["/account", "/ext/101", "/extensions", "/users", "/audit"]


def violations(page: Page) -> list[str]:
    result = AXE.run(page)
    out = []
    for v in result.response["violations"]:
        where = "; ".join(" ".join(n["target"]) for n in v["nodes"][:3])
        out.append(f"{v['id']} ({v['impact']}): {v['help']} at {where}")
    return out


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_sign_in_page_has_no_accessibility_violations(
    page: Page, portal: Portal, size: ViewportSize
) -> None:
    page.set_viewport_size(size)
    page.goto(portal.url("/"))
    assert violations(page) == []
    # A failed sign-in: the error is announced and the page still passes.
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").count() == 1
    assert violations(page) == []


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_has_no_accessibility_violations(
    page: Page, portal: Portal, size: ViewportSize
) -> None:
    page.set_viewport_size(size)
    found = {}
    for user, pages in (("alice", USER_PAGES), ("admin", ADMIN_PAGES)):
        sign_in(page, portal.base_url, user, portal.passwords[user])
        for path in pages:
            page.goto(portal.url(path))
            found[f"{user} {path}"] = violations(page)
        page.context.clear_cookies()
    # A rejected number: the inline error, aria-invalid and the kept value.
    sign_in(page, portal.base_url, "alice", portal.passwords["alice"])
    blocked = page.get_by_role("region", name="Blocked Numbers", exact=True)
    blocked.get_by_label("Number", exact=True).fill("12ab")
    blocked.get_by_role("button", name="Add").click()
    page.wait_for_load_state()
    found["alice /ext/101 with an inline error"] = violations(page)
    assert {k: v for k, v in found.items() if v} == {}
