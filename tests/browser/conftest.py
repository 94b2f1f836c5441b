"""Fixtures of the portal's browser tests: see harness.py (shared with tests/e2e)."""

from __future__ import annotations

from .harness import (  # noqa: F401 - pytest finds fixtures by name
    browser,
    context,
    new_context,
    page,
    portal,
    portal_template,
    portals,
    shot,
)
