"""The OpenAPI document and the routes come from one table: they must match exactly."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from callscreen.web.api import OPENAPI, TABLE
from callscreen.web.app import WebConfig, create_app
from callscreen.web.openapi import openapi_path

from .conftest import Web


def test_the_document_lists_exactly_the_routes_the_app_serves(tmp_path: Path) -> None:
    """Every route under /api/ is documented, and every documented one is served (the portal's
    pages and /static are not the API)."""
    app = create_app(WebConfig(db=tmp_path / "x.db"))
    served = set()
    api = [r for r in app.routes if getattr(r, "path", "").startswith("/api/")]
    assert all(isinstance(r, Route) for r in api)
    pages = [r for r in app.routes if r not in api]
    assert pages and all(not getattr(r, "path", "/api/").startswith("/api") for r in pages)
    for route in api:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":  # Starlette's automatic HEAD for GET
                served.add((method.lower(), openapi_path(route.path)))
    documented = {(method, path) for path, ops in OPENAPI["paths"].items() for method in ops}
    assert served == documented
    assert len(served) == len(TABLE)


def test_the_issue_table_is_covered() -> None:
    documented = {(m.upper(), p) for p, ops in OPENAPI["paths"].items() for m in ops}
    e = "/api/v1/extensions/{ext}"
    for name in ("blocklist", "allowlist"):
        for base in (e, "/api/v1/account"):
            assert ("GET", f"{base}/{name}") in documented
            assert ("POST", f"{base}/{name}") in documented
            assert ("DELETE", f"{base}/{name}/{{number}}") in documented
    for need in [
        ("GET", "/api/v1/me"), ("GET", "/api/v1/extensions"), ("GET", e), ("PATCH", e),
        ("GET", e + "/calls"), ("POST", e + "/check"), ("GET", "/api/v1/account"),
        ("PATCH", "/api/v1/account"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session"),
    ]:  # fmt: skip
        assert need in documented, need


def test_bodies_in_the_document_are_the_checked_schemas() -> None:
    op = OPENAPI["paths"]["/api/v1/extensions/{ext}/blocklist"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["numbers"]
    assert schema["properties"]["numbers"]["maxItems"] == 10_000
    params = {p["name"]: p for p in op["parameters"]}
    assert params["ext"]["in"] == "path"


def test_served_publicly_over_http(web: Web) -> None:
    r = web.client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.json() == OPENAPI
    assert r.json()["openapi"] == "3.1.0"
