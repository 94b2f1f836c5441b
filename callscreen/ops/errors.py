"""The errors every operation raises, each with one line for a person.

The CLI prints the line and exits 2 (InvalidInput, NotFound, NotPermitted: the input is wrong)
or 1 (StoreError: the database failed); the API answers 400/404/403/500 with
``{"error": line}``; the portal shows the line next to the field. The same words everywhere.
"""

from __future__ import annotations

from ..db.errors import InvalidInput, StoreError

__all__ = ["InvalidInput", "NotFound", "NotPermitted", "OpsError", "StoreError"]


class OpsError(Exception):
    """Base of the errors that are about who asks or what they name, not about the store."""


class NotPermitted(OpsError):
    """The actor may not do this (someone else's extension, an admin-only change).

    For an extension the actor does not own this is raised whether or not it exists, with the
    same words, so a user cannot probe which extensions exist."""


class NotFound(OpsError):
    """The named thing (a user, a token, an entry to remove) does not exist."""
