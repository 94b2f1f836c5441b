"""The portal: server-rendered pages over the same ops functions as the API and the CLI.

Works without JavaScript (every change is a form post); ``static/portal.js`` only moves focus.
Nothing is loaded from outside the package: a PBX LAN often has no internet.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from . import admin, blocking, signin, transfer


def routes() -> list[BaseRoute]:
    return [
        *signin.routes(),
        *blocking.routes(),
        *admin.routes(),
        *transfer.routes(),
        Mount("/static", StaticFiles(packages=[("callscreen.web", "static")]), name="static"),
    ]
