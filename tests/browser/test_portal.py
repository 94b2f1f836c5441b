"""The self-service portal in a real browser (issue 10, "How we will know").

Headless chromium signs in and clicks like a person; each test asserts what the person sees
(from the DOM: roles, labels, the flash) and that the database really changed (the CLI, or a
read-only query). Written against /work/portal-contract.md: URLs, labels, button names and
flash texts are the contract's.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    Dialog,
    FilePayload,
    Locator,
    Page,
    Response,
    expect,
)

from .harness import BOB_LIST, GOOD_CALLER, HOSTILE, PHONE, Portal, run_cli, sign_in


# -- helpers -------------------------------------------------------------------------------------
def region(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=name, exact=True)


def flash(page: Page) -> Locator:
    return page.locator("#flash")


def as_user(page: Page, portal: Portal, user: str) -> None:
    """Signed in as ``user`` (a session made with the template; the form is tested below)."""
    portal.enter(page, user)


def with_form(page: Page, portal: Portal, user: str) -> None:
    """Signed in through the sign-in form, as a person does."""
    sign_in(page, portal.base_url, user, portal.passwords[user])


def post_of(page: Page, click: Callable[[], None]) -> Response:
    """Do ``click`` and return the response to the POST it sends (before any redirect)."""
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        click()
    page.wait_for_load_state()
    return info.value


def add(page: Page, section: str, number: str, note: str = "") -> Response:
    r = region(page, section)
    r.get_by_label("Number", exact=True).fill(number)
    if note:
        r.get_by_label("Note", exact=True).fill(note)
    return post_of(page, r.get_by_role("button", name="Add", exact=True).click)


def search_field(section: Locator, kind: str = "block") -> Locator:
    """The search input (its form is named the same: the input is the one with the field name)."""
    field = section.locator(f"input[name={kind}_q]")
    name = "Search blocked numbers" if kind == "block" else "Search allowed numbers"
    expect(field).to_have_accessible_name(name)
    return field


def import_export(section: Locator) -> Locator:
    """The section, with its import/export controls shown (a closed disclosure is opened)."""
    closed = section.locator("details:not([open])").filter(
        has=section.page.locator("input[type=file]")
    )
    if closed.count():
        closed.locator("summary").click()
    return section


def remove_buttons(page: Page, section: str = "Blocked Numbers") -> Locator:
    return region(page, section).get_by_role("button", name=re.compile(r"^Remove \+"))


# -- signing in and out --------------------------------------------------------------------------
def test_a_user_signs_in_and_lands_on_their_extension(page: Page, portal: Portal) -> None:
    page.goto(portal.url("/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    with_form(page, portal, "alice")
    expect(page).to_have_url(portal.url("/ext/101"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Call blocking for extension 101")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Extension 101")).to_have_attribute("href", "/ext/101")
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    # Signed in, / answers with the home page.
    page.goto(portal.url("/"))
    expect(page).to_have_url(portal.url("/ext/101"))


def test_an_admin_lands_on_the_account_page(page: Page, portal: Portal) -> None:
    with_form(page, portal, "admin")
    expect(page).to_have_url(portal.url("/account"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Account")
    nav = page.get_by_role("navigation", name="Main")
    for name, href in [
        ("Account", "/account"),
        ("Extensions", "/extensions"),
        ("Users", "/users"),
        ("Audit", "/audit"),
    ]:
        expect(nav.get_by_role("link", name=name, exact=True)).to_have_attribute("href", href)


def test_a_wrong_password_is_refused_with_the_same_words(page: Page, portal: Portal) -> None:
    sessions = portal.query("SELECT count(*) FROM sessions")
    page.goto(portal.url("/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not-her-password")
    resp = post_of(page, page.get_by_role("button", name="Sign in").click)
    assert resp.status == 400
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    expect(page.get_by_label("Username")).to_have_value("alice")
    assert portal.query("SELECT count(*) FROM sessions") == sessions


def test_sign_in_with_the_keyboard_only(page: Page, portal: Portal) -> None:
    page.goto(portal.url("/"))
    username = page.get_by_label("Username")
    for _ in range(8):  # the autofocus, a skip link, the form's other fields may come first
        page.keyboard.press("Tab")
        if username.evaluate("el => el === document.activeElement"):
            break
    expect(username).to_be_focused()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(portal.passwords["alice"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(portal.url("/ext/101"))


def test_sign_out_goes_back_to_sign_in(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(portal.url("/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    # The session is gone: the extension's page sends the browser to sign in again.
    page.goto(portal.url("/ext/101"))
    expect(page).to_have_url(portal.url("/"))
    expect(page.get_by_label("Username")).to_be_visible()


# -- the Blocking page ---------------------------------------------------------------------------
def test_turn_blocking_on_and_off(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    status = page.locator("#blocking-status")
    expect(status).to_have_text("Call blocking is off")
    expect(region(page, "Blocked Numbers")).to_contain_text(
        "These numbers are blocked once call blocking is on."
    )
    page.get_by_role("button", name="Turn On Call Blocking").click()
    expect(flash(page)).to_have_text("Call blocking is on")
    expect(status).to_have_text("Call blocking is on")
    expect(page.get_by_role("button", name="Turn Off Call Blocking")).to_be_visible()
    expect(page.get_by_role("button", name="Turn On Call Blocking")).to_have_count(0)
    expect(region(page, "Blocked Numbers")).not_to_contain_text("once call blocking is on")
    assert portal.settings("101")["enabled"] is True

    page.get_by_role("button", name="Turn Off Call Blocking").click()
    expect(flash(page)).to_have_text("Call blocking is off")
    expect(status).to_have_text("Call blocking is off")
    assert portal.settings("101")["enabled"] is False


def test_add_a_number_with_the_plus_button(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    blocked = region(page, "Blocked Numbers")
    expect(blocked).to_contain_text("No blocked numbers yet.")
    add_button = blocked.get_by_role("button", name="Add", exact=True)
    expect(add_button).to_have_text("+")

    resp = add(page, "Blocked Numbers", "(303) 555-0101", "dentist spam")
    assert resp.status == 303
    expect(flash(page)).to_have_text("Blocked +13035550101")
    row = blocked.get_by_role("row").filter(has_text="+13035550101")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("(303) 555-0101")  # as typed, and normalized
    expect(row).to_contain_text("dentist spam")
    expect(row.get_by_role("button", name="Remove +13035550101")).to_be_visible()
    expect(blocked).not_to_contain_text("No blocked numbers yet.")

    [entry] = portal.cli_json("block", "list", "--ext", "101")
    assert (entry["pattern"], entry["raw"], entry["note"]) == (
        "+13035550101",
        "(303) 555-0101",
        "dentist spam",
    )
    assert entry["expires"] is None

    # The same number again, typed another way: nothing new.
    add(page, "Blocked Numbers", "+1 303 555 0101")
    expect(flash(page)).to_have_text("+13035550101 was already listed")
    assert portal.listed("block", "101") == ["+13035550101"]


def test_block_for_30_days(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    blocked = region(page, "Blocked Numbers")
    blocked.get_by_label("Number", exact=True).fill("3035550130")
    blocked.get_by_label("Block for 30 days").check()
    blocked.get_by_role("button", name="Add", exact=True).click()
    expect(flash(page)).to_have_text("Blocked +13035550130")
    [entry] = portal.cli_json("block", "list", "--ext", "101")
    assert entry["pattern"] == "+13035550130"
    assert entry["expires"] is not None, entry


def test_allowed_numbers_work_the_same(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    allowed = region(page, "Allowed Numbers")
    expect(allowed.get_by_label("Block for 30 days")).to_have_count(0)
    add(page, "Allowed Numbers", "303-555-0150", "school")
    expect(flash(page)).to_have_text("Allowed +13035550150")
    expect(allowed.get_by_role("button", name="Remove +13035550150")).to_be_visible()
    assert portal.listed("allow", "101") == ["+13035550150"]
    assert portal.listed("block", "101") == []
    allowed.get_by_role("button", name="Remove +13035550150").click()
    expect(flash(page)).to_have_text("Removed +13035550150")
    assert portal.listed("allow", "101") == []


def test_set_busy_and_block_anonymous_callers(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    treat = region(page, "When blocking calls")
    for name in ("Voicemail", "Busy", "Endless ringing"):
        expect(treat.get_by_role("button", name=name, exact=True)).to_be_visible()

    treat.get_by_role("button", name="Voicemail", exact=True).click()
    expect(flash(page)).to_have_text("Saved: blocked callers hear voicemail")
    assert portal.settings("101")["treatment"] == "voicemail"

    treat.get_by_role("button", name="Busy", exact=True).click()
    expect(flash(page)).to_have_text("Saved: blocked callers hear busy")
    expect(treat.get_by_role("button", name="Busy", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(treat.get_by_role("button", name="Voicemail", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )
    assert portal.settings("101")["treatment"] == "busy"  # its own now, not the account's

    anon = region(page, "Callers without Caller ID")
    anon.get_by_role("button", name="Block", exact=True).click()
    expect(flash(page)).to_have_text("Saved: callers without caller ID are blocked")
    expect(anon.get_by_role("button", name="Block", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(anon.get_by_role("button", name="Allow", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )
    assert portal.settings("101")["anonymous"] == "block"


def test_a_bad_number_shows_an_inline_error_and_stores_nothing(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    before = portal.query("SELECT count(*) FROM audit_log")
    resp = add(page, "Blocked Numbers", "12ab", "keep this note")
    assert resp.status == 400
    blocked = region(page, "Blocked Numbers")
    field = blocked.get_by_label("Number", exact=True)
    expect(field).to_have_value("12ab")  # what was typed is kept
    expect(blocked.get_by_label("Note", exact=True)).to_have_value("keep this note")
    expect(field).to_have_attribute("aria-invalid", "true")
    error = blocked.get_by_role("alert")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("not a phone number")
    expect(error).to_contain_text("12ab")
    error_id = error.get_attribute("id")
    assert error_id, "the error has an id for aria-describedby"
    described = (field.get_attribute("aria-describedby") or "").split()
    assert error_id in described
    expect(flash(page)).to_have_count(0)

    assert portal.listed("block", "101") == []
    assert portal.query("SELECT count(*) FROM audit_log") == before


def test_remove_a_number(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    add(page, "Blocked Numbers", "3035550101")
    add(page, "Blocked Numbers", "3035550102")
    assert portal.listed("block", "101") == ["+13035550101", "+13035550102"]
    region(page, "Blocked Numbers").get_by_role("button", name="Remove +13035550101").click()
    expect(flash(page)).to_have_text("Removed +13035550101")
    expect(remove_buttons(page)).to_have_count(1)
    expect(remove_buttons(page)).to_have_accessible_name("Remove +13035550102")
    assert portal.listed("block", "101") == ["+13035550102"]


def test_search_and_pages_on_a_long_list(page: Page, portal: Portal) -> None:
    as_user(page, portal, "bob")  # bob's extension 102 has 120 blocked numbers
    expect(page).to_have_url(portal.url("/ext/102"))
    blocked = region(page, "Blocked Numbers")
    buttons = remove_buttons(page)
    expect(buttons).to_have_count(50)
    expect(buttons.first).to_have_accessible_name(f"Remove {BOB_LIST[0]}")
    expect(buttons.last).to_have_accessible_name(f"Remove {BOB_LIST[49]}")
    expect(blocked.get_by_role("link", name="First page")).to_have_count(0)

    blocked.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(re.compile(r"[?&]block_after=\d+"))
    expect(buttons).to_have_count(50)
    expect(buttons.first).to_have_accessible_name(f"Remove {BOB_LIST[50]}")
    blocked.get_by_role("link", name="Next page").click()
    expect(buttons).to_have_count(20)
    expect(buttons.last).to_have_accessible_name(f"Remove {BOB_LIST[119]}")
    expect(blocked.get_by_role("link", name="Next page")).to_have_count(0)
    blocked.get_by_role("link", name="First page").click()
    expect(buttons.first).to_have_accessible_name(f"Remove {BOB_LIST[0]}")

    # A number typed any way finds its entry; other text searches the notes.
    search = search_field(blocked)
    search.fill("(303) 555-2042")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]block_q="))
    expect(buttons).to_have_count(1)
    expect(buttons).to_have_accessible_name("Remove +13035552042")
    search = search_field(blocked)
    expect(search).to_have_value("(303) 555-2042")
    search.fill("pest 7")
    search.press("Enter")
    expect(buttons).to_have_count(11)  # pest 7, pest 70 .. pest 79
    search = search_field(blocked)
    search.fill("nobody has this note")
    search.press("Enter")
    expect(buttons).to_have_count(0)


def test_another_users_extension_is_403_also_by_url(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    for ext in ("102", "999"):
        resp = page.goto(portal.url(f"/ext/{ext}"))
        assert resp is not None and resp.status == 403, ext
        expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(page.locator("body")).to_contain_text(f"you may not manage extension {ext}")
        expect(page.get_by_role("button", name="Turn On Call Blocking")).to_have_count(0)
    # A form posted to it (with alice's valid CSRF token) changes nothing either.
    page.goto(portal.url("/ext/101"))
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    r = page.request.post(
        portal.url("/ext/102/block"),
        form={"csrf": csrf, "number": "3035550666"},
        max_redirects=0,
    )
    assert r.status == 403, r.status
    r = page.request.post(
        portal.url("/ext/102/settings"), form={"csrf": csrf, "enabled": "on"}, max_redirects=0
    )
    assert r.status == 403, r.status
    assert "+13035550666" not in portal.listed("block", "102")
    assert portal.settings("102")["enabled"] is False


def test_a_change_without_the_csrf_token_is_refused(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    r = page.request.post(
        portal.url("/ext/101/block"), form={"number": "3035550666"}, max_redirects=0
    )
    assert r.status in (400, 403), r.status
    r = page.request.post(
        portal.url("/ext/101/block"),
        form={"csrf": "forged", "number": "3035550666"},
        max_redirects=0,
    )
    assert r.status in (400, 403), r.status
    assert portal.listed("block", "101") == []


def test_a_user_may_not_open_the_admin_pages(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    for path in ("/account", "/extensions", "/users", "/audit"):
        resp = page.goto(portal.url(path))
        assert resp is not None and resp.status == 403, path
        expect(page.locator("body")).to_contain_text("only an administrator may do this")


# -- recent calls --------------------------------------------------------------------------------
def test_block_a_caller_from_recent_calls(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    calls = region(page, "Recent calls")
    expect(calls).to_contain_text("Cold Caller")
    calls.get_by_role("button", name=f"Block {GOOD_CALLER}").click()
    expect(flash(page)).to_have_text(f"Blocked {GOOD_CALLER}")
    assert portal.listed("block", "101") == [GOOD_CALLER]
    blocked = region(page, "Blocked Numbers")
    expect(blocked.get_by_role("button", name=f"Remove {GOOD_CALLER}")).to_be_visible()


def test_a_hostile_caller_shows_as_text(page: Page, portal: Portal) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # an alert() that ran: the markup was executed
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    as_user(page, portal, "alice")
    calls = region(page, "Recent calls")
    expect(calls).to_contain_text(HOSTILE)
    expect(calls.locator("img")).to_have_count(0)
    expect(page.locator("img[src=x]")).to_have_count(0)
    assert dialogs == []


# -- without JavaScript --------------------------------------------------------------------------
def test_the_page_works_without_javascript(
    new_context: Callable[..., BrowserContext], portal: Portal
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    with_form(page, portal, "alice")
    expect(page).to_have_url(portal.url("/ext/101"))
    page.get_by_role("button", name="Turn On Call Blocking").click()
    expect(flash(page)).to_have_text("Call blocking is on")
    add(page, "Blocked Numbers", "303 555 0199", "no js")
    expect(flash(page)).to_have_text("Blocked +13035550199")
    region(page, "When blocking calls").get_by_role("button", name="Voicemail").click()
    expect(flash(page)).to_have_text("Saved: blocked callers hear voicemail")
    assert portal.listed("block", "101") == ["+13035550199"]
    assert portal.settings("101")["enabled"] is True
    assert portal.settings("101")["treatment"] == "voicemail"


# -- admin pages ---------------------------------------------------------------------------------
def test_admin_adds_an_account_wide_number(page: Page, portal: Portal) -> None:
    as_user(page, portal, "admin")
    # The status line (not the flash, which says the same once after a change).
    status = page.get_by_text(re.compile(r"^Account-wide blocking is (on|off)$")).and_(
        page.locator(":not(#flash)")
    )
    expect(status).to_have_text("Account-wide blocking is off")
    page.get_by_role("button", name="Turn On Account Blocking").click()
    expect(status).to_have_text("Account-wide blocking is on")
    expect(page.get_by_role("button", name="Turn Off Account Blocking")).to_be_visible()
    assert portal.settings(None)["enabled"] is True

    add(page, "Blocked Numbers", "+1 (900) 555-0100", "premium rate")
    expect(flash(page)).to_have_text("Blocked +19005550100")
    row = region(page, "Blocked Numbers").get_by_role("row").filter(has_text="+19005550100")
    expect(row).to_contain_text("premium rate")
    assert portal.listed("block", None) == ["+19005550100"]
    assert portal.listed("block", "101") == []

    region(page, "Default treatment").get_by_role("button", name="Voicemail", exact=True).click()
    expect(flash(page)).to_have_text("Saved: blocked callers hear voicemail")
    assert portal.settings(None)["treatment"] == "voicemail"


def test_admin_adds_a_user_who_can_then_sign_in(
    page: Page, portal: Portal, new_context: Callable[..., BrowserContext]
) -> None:
    as_user(page, portal, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page).to_have_url(portal.url("/users"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add user"))
    form.get_by_label("Username", exact=True).fill("carol")
    form.get_by_label("Password", exact=True).fill("carol-password")
    form.get_by_label("Extensions", exact=True).fill("103")
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("row").filter(has_text="carol")).to_have_count(1)
    carol = [u for u in portal.cli_json("user", "list") if u["username"] == "carol"]
    assert carol and carol[0]["extensions"] == ["103"] and carol[0]["role"] == "user", carol

    other = new_context().new_page()
    sign_in(other, portal.base_url, "carol", "carol-password")
    expect(other).to_have_url(portal.url("/ext/103"))
    expect(other.get_by_role("heading", level=1)).to_have_text("Call blocking for extension 103")


def test_admin_rejects_a_bad_user_inline(page: Page, portal: Portal) -> None:
    as_user(page, portal, "admin")
    page.goto(portal.url("/users"))
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add user"))
    form.get_by_label("Username", exact=True).fill("dave")
    form.get_by_label("Password", exact=True).fill("short")
    form.get_by_label("Extensions", exact=True).fill("104")
    resp = post_of(page, form.get_by_role("button", name="Add user").click)
    assert resp.status == 400
    expect(page.get_by_role("alert").first).to_contain_text("the password is too short")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Add user"))
    expect(form.get_by_label("Username", exact=True)).to_have_value("dave")
    assert portal.query("SELECT count(*) FROM users WHERE username = 'dave'") == [(0,)]


def test_admin_sets_a_password_and_disables_a_user(
    page: Page, portal: Portal, new_context: Callable[..., BrowserContext]
) -> None:
    as_user(page, portal, "admin")
    page.goto(portal.url("/users"))
    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("^bob")))
    bob.get_by_label("New password").fill("bob-new-password")
    bob.get_by_role("button", name="Set password").click()
    expect(flash(page)).to_be_visible()

    other = new_context().new_page()
    sign_in(other, portal.base_url, "bob", "bob-new-password")
    expect(other).to_have_url(portal.url("/ext/102"))

    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("^bob")))
    bob.get_by_role("button", name="Disable").click()
    expect(flash(page)).to_be_visible()
    bob = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("^bob")))
    expect(bob.get_by_role("button", name="Enable")).to_be_visible()
    assert portal.query("SELECT disabled FROM users WHERE username = 'bob'") == [(1,)]
    # Disabled: signed out everywhere, and the form refuses him.
    other.goto(portal.url("/ext/102"))
    expect(other).to_have_url(portal.url("/"))
    sign_in(other, portal.base_url, "bob", "bob-new-password")
    expect(other.get_by_role("alert")).to_contain_text("wrong username or password")


def test_no_sideways_scrolling_on_a_phone(page: Page, portal: Portal) -> None:
    page.set_viewport_size(PHONE)
    as_user(page, portal, "admin")
    for path in ("/ext/102", "/ext/101", "/account", "/users", "/extensions", "/audit"):
        page.goto(portal.url(path))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path}: {width} px wide on a {PHONE['width']} px phone"


def test_admin_extensions_page_opens_any_extension(page: Page, portal: Portal) -> None:
    as_user(page, portal, "admin")
    page.goto(portal.url("/extensions"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Extensions")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="102", exact=True))
    expect(row).to_contain_text("120")
    page.get_by_label("Extension", exact=True).fill("101")
    page.get_by_role("button", name="Open").click()
    expect(page).to_have_url(portal.url("/ext/101"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Call blocking for extension 101")
    # An admin changes any extension.
    add(page, "Blocked Numbers", "3035550101")
    expect(flash(page)).to_have_text("Blocked +13035550101")
    assert portal.listed("block", "101") == ["+13035550101"]


def test_audit_shows_who_changed_what(
    page: Page, portal: Portal, new_context: Callable[..., BrowserContext]
) -> None:
    alice = new_context().new_page()
    as_user(alice, portal, "alice")
    add(alice, "Blocked Numbers", "3035550101")
    as_user(page, portal, "admin")
    page.goto(portal.url("/audit"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit")
    # Sign-ins are audited too: the newest change to a list is alice's.
    change = page.get_by_role("row").filter(has_text="block.add").first
    expect(change).to_contain_text("alice")
    expect(change).to_contain_text("101")


def test_admin_downloads_a_list_as_csv(page: Page, portal: Portal) -> None:
    as_user(page, portal, "admin")
    page.goto(portal.url("/ext/102"))
    link = import_export(region(page, "Blocked Numbers")).get_by_role("link", name="Download CSV")
    href = link.get_attribute("href")
    assert href is not None and href.split("?")[0] == "/ext/102/block.csv", href
    r = page.request.get(portal.url(href))
    assert r.status == 200
    assert "csv" in r.headers.get("content-type", ""), r.headers
    rows = list(csv.DictReader(io.StringIO(r.text())))
    assert [row["number"] for row in rows] == BOB_LIST
    assert rows[7]["note"] == "pest 7"
    # The same file the CLI writes.
    cli = run_cli(portal.db, "export", "--ext", "102")
    assert cli.returncode == 0, cli.stderr
    assert r.text().replace("\r\n", "\n") == cli.stdout.replace("\r\n", "\n")


def test_a_user_sees_no_import_or_export(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    blocked = region(page, "Blocked Numbers")
    download = blocked.get_by_role("link", name="Download CSV", include_hidden=True)
    expect(download).to_have_count(0)
    expect(blocked.get_by_role("button", name="Import", include_hidden=True)).to_have_count(0)
    expect(blocked.locator("input[type=file]")).to_have_count(0)


def test_admin_import_is_all_or_nothing(page: Page, portal: Portal) -> None:
    as_user(page, portal, "admin")
    page.goto(portal.url("/ext/101"))
    bad = b"number,note\n3035550111,ok\n12ab,bad\n3035550112,ok too\nzz,bad too\n"
    blocked = import_export(region(page, "Blocked Numbers"))
    blocked.get_by_label("CSV file").set_input_files(
        files=[FilePayload(name="numbers.csv", mimeType="text/csv", buffer=bad)]
    )
    resp = post_of(page, blocked.get_by_role("button", name="Import").click)
    assert resp.status == 400
    error = page.get_by_role("alert")
    expect(error).to_contain_text("12ab")
    expect(error).to_contain_text("zz")
    expect(error).to_contain_text("line 3")
    expect(error).to_contain_text("line 5")
    assert portal.listed("block", "101") == []

    good = b"number,note\n3035550111,ok\n3035550112,ok too\n"
    blocked = import_export(region(page, "Blocked Numbers"))
    blocked.get_by_label("CSV file").set_input_files(
        files=[FilePayload(name="numbers.csv", mimeType="text/csv", buffer=good)]
    )
    resp = post_of(page, blocked.get_by_role("button", name="Import").click)
    assert resp.status == 303
    expect(flash(page)).to_be_visible()
    assert portal.listed("block", "101") == ["+13035550111", "+13035550112"]
    expect(remove_buttons(page)).to_have_count(2)


# -- screenshots (make screenshots: docs/screenshots) --------------------------------------------
def test_screenshot_user_page(
    page: Page, portal: Portal, shot: Callable[[Page, str], list[Path]]
) -> None:
    as_user(page, portal, "alice")
    page.get_by_role("button", name="Turn On Call Blocking").click()
    treatment = region(page, "When blocking calls")
    treatment.get_by_role("button", name="Voicemail", exact=True).click()
    treatment.get_by_role("button", name="Busy", exact=True).click()  # its own, not inherited
    for number, note in [
        ("(303) 555-0101", "extended warranty"),
        ("+1 720 555 0188", "survey robot"),
        ("303.555.0142", ""),
    ]:
        add(page, "Blocked Numbers", number, note)
    blocked = region(page, "Blocked Numbers")
    blocked.get_by_text("Block a caller name").click()
    blocked.get_by_label("Caller name", exact=True).fill("Scam Likely")
    blocked.get_by_label("Note (caller name)").fill("carrier warning")
    blocked.get_by_role("button", name="Save caller name").click()
    expect(flash(page)).to_have_text("Blocked callers named scam likely")
    add(page, "Allowed Numbers", "303-555-0150", "school")
    region(page, "Recent calls").get_by_role("button", name=f"Block {GOOD_CALLER}").click()
    expect(flash(page)).to_have_text(f"Blocked {GOOD_CALLER}")
    page.goto(portal.url("/ext/101"))
    paths = shot(page, "user-blocking")
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_screenshot_admin_page(
    page: Page, portal: Portal, shot: Callable[[Page, str], list[Path]]
) -> None:
    as_user(page, portal, "admin")
    page.get_by_role("button", name="Turn On Account Blocking").click()
    add(page, "Blocked Numbers", "+1 900 555 0100", "premium rate")
    add(page, "Blocked Numbers", "+44 20 7946 0958", "fax spam")
    add(page, "Allowed Numbers", "+1 303 555 0911", "front desk")
    page.goto(portal.url("/account"))
    paths = shot(page, "admin-account")
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_block_a_caller_name_from_the_blocked_numbers_card(page: Page, portal: Portal) -> None:
    as_user(page, portal, "alice")
    blocked = region(page, "Blocked Numbers")
    field = blocked.get_by_label("Caller name", exact=True)
    expect(field).to_be_hidden()  # in a closed "Block a caller name" disclosure
    blocked.get_by_text("Block a caller name").click()
    field.fill("Sc*am")
    with page.expect_response(lambda r: r.request.method == "POST") as bad:
        blocked.get_by_role("button", name="Save caller name").click()
    assert bad.value.status == 400
    blocked = region(page, "Blocked Numbers")
    expect(blocked.get_by_role("alert")).to_have_text(
        "a * may only start or end a caller name: 'Sc*am'"
    )
    field = blocked.get_by_label("Caller name", exact=True)
    expect(field).to_have_value("Sc*am")  # kept, and the disclosure is open
    field.fill("Scam Likely")
    blocked.get_by_label("Note (caller name)").fill("carrier tag")
    with page.expect_response(lambda r: r.request.method == "POST") as ok:
        blocked.get_by_role("button", name="Save caller name").click()
    assert ok.value.status == 303
    expect(flash(page)).to_have_text("Blocked callers named scam likely")
    row = region(page, "Blocked Numbers").get_by_role("row").filter(has_text="Caller name:")
    expect(row).to_contain_text("Caller name: scam likely")
    expect(row).to_contain_text("carrier tag")
    row.get_by_role("button", name="Remove caller name scam likely").click()
    expect(flash(page)).to_have_text("Removed scam likely")
    assert portal.cli_json("block", "list", "--ext", "101") == []
