"""What every portal page shares: templates, the signed-in actor, CSRF for forms, the flash.

A page handler gets a :class:`Page` (the store, the actor, the parsed form) and returns a
response; :func:`page` does the rest once, the same way for every page:

- no live session -> 303 to the sign-in page (``/``);
- a POST must carry the session's CSRF token in the form field ``csrf`` (a hostile site can
  make a browser post a form with our cookie, but cannot read the token off our page);
- ops' refusals become pages with ops' words: NotPermitted -> 403, NotFound -> 404,
  InvalidInput (not handled next to a field by the handler) -> 400.

Templates are Jinja2 with autoescape, and every string they print also passes
:func:`callscreen.inert.text`: a caller name with markup shows as text, one with control or
bidi characters shows them as visible escapes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ... import inert
from ...db.store import Store
from ...ops import auth as ops_auth
from ...ops.actor import Actor, Source
from ...ops.errors import InvalidInput, NotFound, NotPermitted
from ..auth import MAX_CREDENTIAL, client_ip, cookie_name

log = logging.getLogger("callscreen.web")

#: A confirmation shown once on the page a change redirects to (Post/Redirect/Get).
FLASH_COOKIE = "callscreen_flash"
#: Form fields and files a page accepts at most (the body is capped at 1 MiB before this).
MAX_FIELDS = 50


def _shown(value: Any) -> Any:
    """Every printed string, made inert (markup is escaped after this by autoescape)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return inert.text(value)
    return value


ENV = Environment(
    loader=PackageLoader("callscreen.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    finalize=_shown,
    trim_blocks=True,
    lstrip_blocks=True,
)


def url(path: str, **query: Any) -> str:
    """``path`` with the query parameters that are not None or empty."""
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(q)}" if q else path


ENV.globals["url"] = url


@dataclass(slots=True)
class Page:
    """One request to a signed-in page."""

    request: Request
    store: Store
    actor: Actor
    csrf: str
    form: Mapping[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return str(self.request.app.state.config.region)

    def field(self, name: str) -> str:
        value = self.form.get(name, "")
        return value if isinstance(value, str) else ""

    def file(self, name: str) -> UploadFile | None:
        value = self.form.get(name)
        return value if isinstance(value, UploadFile) else None

    def render(self, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return render(self.request, template, status, actor=self.actor, csrf=self.csrf, **ctx)

    def done(self, to: str, message: str) -> Response:
        """The change is saved: back to the page (303), which says ``message`` once."""
        response = RedirectResponse(to, status_code=303)
        set_flash(response, message, self.request)
        return response


def _https(request: Request) -> bool:
    return bool(request.app.state.config.behind_https)


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("actor", None)
    ctx.setdefault("csrf", "")
    ctx.setdefault("flash", take_flash(request))
    ctx.setdefault("title", "")
    html = ENV.get_template(template).render(path=request.url.path, **ctx)
    response = HTMLResponse(html, status_code=status)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def set_flash(response: Response, message: str, request: Request) -> None:
    value = base64.urlsafe_b64encode(message.encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=60,
        path="/",
        secure=_https(request),
        httponly=True,
        samesite="strict",
    )


def take_flash(request: Request) -> str:
    raw = request.cookies.get(FLASH_COOKIE, "")
    if not raw or len(raw) > 1024:
        return ""
    try:
        return inert.bound(base64.urlsafe_b64decode(raw.encode()).decode(), 300)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def error_page(
    request: Request, status: int, title: str, message: str, actor: Actor | None = None
) -> HTMLResponse:
    return render(request, "error.html", status, title=title, message=message, actor=actor)


async def signed_in(request: Request) -> tuple[Actor, str] | None:
    """(actor, csrf) of the request's live session, or None."""
    cookie = request.cookies.get(cookie_name(_https(request)))
    if not cookie or len(cookie) > MAX_CREDENTIAL:
        return None
    return await ops_auth.session_actor(
        request.app.state.store, cookie, ip=client_ip(request), source=Source.PORTAL
    )


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=MAX_FIELDS)
    except Exception as exc:  # python-multipart's and Starlette's parse errors
        if type(exc).__name__ == "BodyTooLarge":
            raise
        raise InvalidInput("the form could not be read; reload the page and try again") from None


Handler = Callable[[Page], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for a signed-in page (see the module's docstring)."""

    async def endpoint(request: Request) -> Response:
        found = await signed_in(request)
        if found is None:
            return RedirectResponse("/", status_code=303)
        actor, csrf = found
        # The one place a page gets its store: scoped to the signed-in user's account.
        store = request.app.state.store.scoped(actor.account_id, actor.account)
        p = Page(request, store, actor, csrf)
        try:
            if request.method == "POST":
                p.form = await read_form(request)
                sent = p.field("csrf")
                if not hmac.compare_digest(sent.encode(), csrf.encode()):
                    return error_page(
                        request,
                        403,
                        "Form expired",
                        "this form is out of date; reload the page and try again",
                        actor,
                    )
            return await handler(p)
        except NotPermitted as exc:
            return error_page(request, 403, "Not allowed", line(exc), actor)
        except NotFound as exc:
            return error_page(request, 404, "Not found", line(exc), actor)
        except InvalidInput as exc:
            return error_page(request, 400, "Not saved", line(exc), actor)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
