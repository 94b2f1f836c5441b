"""The browser tests' harness: Debian's chromium driven by Playwright, and the portal under test.

Shared by tests/browser (its conftest imports the fixtures) and tests/e2e/test_e2e_portal.py.

- ``browser`` (per package): one headless chromium, ``/usr/bin/chromium`` from Debian (installed by
  ``make browser``; never ``playwright install``). Where it or Playwright is missing the tests
  skip, unless ``CALLSCREEN_E2E_REQUIRED=1`` (CI): then they fail.
- ``context`` / ``page`` (per test): a fresh context (no cookies), 1280x900, 5 s timeouts;
  ``new_context`` for more (another user, JavaScript off).
- ``portal`` (per test): ``callscreen web`` as a child process on a fresh copy of a database
  built once: admin ``admin``; ``alice`` owns 101; ``bob`` owns 102 (120 blocked numbers, to
  page and search); extension 101 has recent calls (one from a hostile caller). The next
  test's process starts while a test runs. ``portal.enter(page, user)`` opens it already
  signed in (a session made with the template), for tests about what comes after the form.
- ``sign_in(page, base, user, password)``; ``shot(page, name)``: NAME-desktop.png and
  NAME-phone.png into ``$CALLSCREEN_SCREENSHOTS`` (``make screenshots``: docs/screenshots).

The sync Playwright API runs its own event loop (in a greenlet) while a call waits: it must
not be used inside a running loop, so sync tests use it; an async test (the real-Asterisk
one) uses :func:`async_browser` instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Playwright is a dev dependency like pytest itself (pip install -e '.[dev]'); what may be
# missing on a developer machine is the browser, and then the tests skip (CI: fail).
from playwright.async_api import Browser as AsyncBrowser
from playwright.async_api import async_playwright
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from callscreen.db.calllog import CallRecord
from callscreen.db.store import Store
from callscreen.ops import auth as ops_auth
from callscreen.ops import lists, users
from callscreen.ops.actor import Actor
from callscreen.policy import Kind, Scope
from callscreen.web.auth import cookie_name

from ..web.web_process import WebProcess

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "install it with `make browser` (as root; needs Debian's mirror)"
#: Debian's wrapper misdetects /dev/shm here; no traffic leaves the machine.
CHROMIUM_ARGS = [
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    *(["--no-sandbox"] if os.geteuid() == 0 else []),
]
TIMEOUT_MS = 5_000
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)

PASSWORDS = {
    "admin": "admin-password",
    "alice": "alice-password",
    "bob": "bob-password",
}
#: Bob's 120 blocked numbers: +13035552000 .. +13035552119, note "pest 0" .. "pest 119".
BOB_LIST = [f"+1303555{2000 + i}" for i in range(120)]
#: Recent calls to 101 (newest first on the page): a caller who got through, a hostile one.
GOOD_CALLER = "+13035550177"
HOSTILE = "<img src=x onerror=alert(1)>"


def required() -> bool:
    return os.environ.get("CALLSCREEN_E2E_REQUIRED") == "1"


def unavailable(reason: str) -> None:
    """Skip (a developer machine without the browser) or fail (CI) with ``reason``."""
    if required():
        pytest.fail(f"CALLSCREEN_E2E_REQUIRED=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can (launching is tried by
    the fixture: a chromium that does not start is a reason too)."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}; {INSTALL_HINT}"
    return None


def launch_args() -> dict[str, Any]:
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS, "headless": True}


# -- the browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped, not session: while the sync Playwright lives, its loop counts as the
    thread's running loop, and every async test after it (tests/web, ...) could not start."""
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason)
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(**launch_args())
        except PlaywrightError as e:
            unavailable(f"{CHROMIUM} did not start: {str(e).splitlines()[0]}")
        expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Make fresh contexts (own cookies); keyword arguments go to ``browser.new_context``."""
    made: list[BrowserContext] = []

    def make(**kw: Any) -> BrowserContext:
        ctx = browser.new_context(**{"viewport": DESKTOP, **kw})
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.set_default_navigation_timeout(TIMEOUT_MS)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, base: str, user: str, password: str) -> None:
    """Sign in at ``/`` the way a person does: the two labelled fields and the button."""
    page.goto(base + "/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot_dir(fallback: Path) -> Path:
    env = os.environ.get("CALLSCREEN_SCREENSHOTS")
    out = Path(env) if env else fallback
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Page, str], list[Path]]:
    """``shot(page, name)``: the whole current page at desktop and at phone width."""

    def take(page: Page, name: str) -> list[Path]:
        out = screenshot_dir(tmp_path / "screenshots")
        before = page.viewport_size
        page.set_viewport_size(DESKTOP)
        desktop = out / f"{name}-desktop.png"
        page.screenshot(path=str(desktop), full_page=True)
        page.set_viewport_size(PHONE)
        phone = out / f"{name}-phone.png"
        page.screenshot(path=str(phone), full_page=True)
        if before is not None:
            page.set_viewport_size(before)
        return [desktop, phone]

    return take


@asynccontextmanager
async def async_browser() -> AsyncIterator[AsyncBrowser]:
    """The same chromium for an async test (the sync API cannot run inside its loop)."""
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason)
    async with async_playwright() as p:
        b = await p.chromium.launch(**launch_args())
        try:
            yield b
        finally:
            await b.close()


# -- the portal under test -----------------------------------------------------------------------
async def _build(db: Path) -> dict[str, str]:
    """The template database; returns a signed-in session cookie per user (see ``enter``)."""
    cli = Actor.cli()
    async with await Store.open(db) as store:
        for ext in ("101", "102"):
            await store.set_extension(ext, enabled=False)
        await users.user_add(store, cli, "admin", PASSWORDS["admin"], admin=True)
        await users.user_add(store, cli, "alice", PASSWORDS["alice"], extensions=["101"])
        await users.user_add(store, cli, "bob", PASSWORDS["bob"], extensions=["102"])
        for i, number in enumerate(BOB_LIST):
            await lists.list_add(
                store,
                cli,
                scope=Scope.EXTENSION,
                ext="102",
                kind=Kind.BLOCK,
                numbers=[number],
                note=f"pest {i}",
            )
        now = time.time()
        calls = [
            CallRecord(now - 3600, "101", HOSTILE, None, "ALLOWED", "not-listed", None, None, 0.01,
                       caller_name=HOSTILE),
            CallRecord(now - 600, "101", "3035550177", GOOD_CALLER, "ALLOWED", "not-listed", None,
                       None, 0.01, caller_name="Cold Caller"),
        ]  # fmt: skip
        await store.write_calls(calls, {})
        sessions = {}
        for user, password in PASSWORDS.items():
            login = await ops_auth.login(store, user, password, ip="127.0.0.1")
            sessions[user] = login.cookie
    return sessions


@dataclass(frozen=True)
class Template:
    db: Path
    sessions: dict[str, str]  # user -> session cookie, signed in when the template was built


@pytest.fixture(scope="session")
def portal_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    db = tmp_path_factory.mktemp("portal-template") / "callscreen.db"
    # In a thread of its own: the sync Playwright's loop is this thread's running loop.
    with ThreadPoolExecutor(1) as pool:
        sessions = pool.submit(asyncio.run, _build(db)).result()
    return Template(db, sessions)


def run_cli(db: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The callscreen CLI on ``db``, as an admin runs it."""
    return subprocess.run(
        [sys.executable, "-m", "callscreen", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=30,
        input=input,
    )


@dataclass
class Portal:
    base_url: str
    db: Path
    passwords: dict[str, str]
    web: WebProcess
    sessions: dict[str, str]

    def enter(self, page: Page, user: str) -> None:
        """Open the portal as ``user`` already signed in (a session made with the template,
        its cookie set like the sign-in form sets it): for tests about what comes after the
        sign-in form, which costs ~0.4 s of password hashing per sign-in."""
        page.context.add_cookies(
            [
                {
                    "name": cookie_name(False),
                    "value": self.sessions[user],
                    "url": self.base_url,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
        page.goto(self.base_url + "/")

    def url(self, path: str) -> str:
        return self.base_url + path

    def cli_json(self, *args: str) -> Any:
        res = run_cli(self.db, *args, "--json")
        assert res.returncode == 0, f"callscreen {' '.join(args)}: {res.stderr}"
        return json.loads(res.stdout)

    def listed(self, kind: str = "block", ext: str | None = "101") -> list[str]:
        """The numbers (normalized, in order) on a list, read from the database."""
        scope, key = ("ext", ext) if ext is not None else ("account", "")
        rows = self.query(
            "SELECT value || CASE prefix WHEN 1 THEN '*' ELSE '' END FROM entries "
            "WHERE scope = ? AND ext = ? AND kind = ? ORDER BY value",
            scope,
            key,
            kind,
        )
        return [r[0] for r in rows]

    def settings(self, ext: str | None = "101") -> dict[str, Any]:
        """An extension's (or with None the account's) settings row: enabled, anonymous
        ("allow"/"block"), treatment (an extension's is None while it follows the account)."""
        if ext is None:
            rows = self.query("SELECT enabled, anonymous, treatment FROM accounts")
        else:
            rows = self.query(
                "SELECT enabled, anonymous, treatment FROM extensions WHERE ext = ?", ext
            )
        [(enabled, anonymous, treatment)] = rows
        return {
            "enabled": bool(enabled),
            "anonymous": anonymous,
            "treatment": treatment,
        }

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read-only query on the database the web process writes."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()


def start_portal(db: Path, sessions: dict[str, str] | None = None) -> Portal:
    web = WebProcess(db, "web", "--port", "0")
    return Portal(f"http://127.0.0.1:{web.port}", db, dict(PASSWORDS), web, dict(sessions or {}))


class Portals:
    """Fresh portals, one started ahead: while a test runs, the next test's web process (on
    its own copy of the template) is already starting. Stopped ones are told to stop
    (SIGTERM) and must all have exited 0 at the end, not waited for one by one."""

    def __init__(self, template: Template, tmp: pytest.TempPathFactory) -> None:
        self.template = template
        self.tmp = tmp
        self.pool = ThreadPoolExecutor(1)
        self.spare: Future[Portal] = self.pool.submit(self._start)
        self.stopped: list[WebProcess] = []

    def _start(self) -> Portal:
        db = self.tmp.mktemp("portal") / "callscreen.db"
        shutil.copy(self.template.db, db)
        return start_portal(db, self.template.sessions)

    def take(self) -> Portal:
        p = self.spare.result()
        self.spare = self.pool.submit(self._start)
        return p

    def stop(self, p: Portal) -> None:
        p.web.proc.send_signal(signal.SIGTERM)
        self.stopped.append(p.web)

    def close(self) -> None:
        self.stop(self.spare.result())
        self.pool.shutdown()
        failed = [w for w in self.stopped if w.proc.wait(timeout=15) != 0]
        assert not failed, "\n".join("".join(w.lines) for w in failed)


@pytest.fixture(scope="package")
def portals(
    portal_template: Template, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portals]:
    made = Portals(portal_template, tmp_path_factory)
    yield made
    made.close()


@pytest.fixture
def portal(portals: Portals) -> Iterator[Portal]:
    """``callscreen web`` on a fresh copy of the template database, for this test alone."""
    p = portals.take()
    try:
        yield p
    finally:
        portals.stop(p)
