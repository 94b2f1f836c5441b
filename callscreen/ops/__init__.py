"""Operations: one function per change or query a person (or a program) can make.

The CLI, the JSON API and the portal's pages are three thin faces on these functions, so all
three accept and refuse the same input with the same words. Each change runs

    validate -> permit(actor, target) -> store (one transaction, the audit row inside it)

and raises only :mod:`callscreen.ops.errors` (``InvalidInput``, ``NotPermitted``,
``NotFound``) or ``StoreError``. Nothing here is imported on the call path (FastAGI ->
screening), and nothing here prints or knows HTTP.

Every function is ``async`` and takes ``(store, actor, ...)`` where ``store`` is an open
:class:`callscreen.db.Store` scoped to the actor's account (the face scopes it, in one place:
the CLI opens it on ``--account``, the web tier takes ``store.scoped(actor.account_id,
actor.account)``) and ``actor`` an :class:`Actor`. Results are plain dataclasses or
dicts shaped like the CLI's ``--json`` output (the API returns them as they are).

Modules:
- ``actor``: :class:`Actor`, :class:`Role`, :class:`Source`, ``permit_ext``, ``permit_admin``.
- ``lists``: ``list_add``, ``list_remove``, ``list_entries``, ``block_last`` (block and
  allow lists of an extension or the account; ``names=`` adds or removes caller-name rules).
- ``settings``: ``ext_show``, ``ext_set``, ``ext_list``, ``account_show``, ``account_set``,
  ``check``, ``recent_calls``, ``audit_list``.
- ``users``: ``user_add``, ``user_list``, ``user_show``, ``user_set``, ``user_passwd``,
  ``user_remove``, ``token_create``, ``token_list``, ``token_revoke``.
- ``accounts``: ``account_add``, ``account_list``, ``account_remove`` (the CLI operator's and
  a superuser's: accounts are tenants, each with its own everything).
- ``retention``: ``log_prune`` (delete the call log older than a date, audited).
- ``auth``: ``login`` (username + password -> session), ``session_actor``, ``logout``,
  ``token_actor`` (bearer token -> Actor); argon2id hashing; sessions and tokens of a
  disabled user stop working at once.
"""

from .actor import Actor, Role, Source, permit_accounts, permit_admin, permit_ext
from .errors import InvalidInput, NotFound, NotPermitted, OpsError, StoreError

__all__ = [
    "Actor",
    "InvalidInput",
    "NotFound",
    "NotPermitted",
    "OpsError",
    "Role",
    "Source",
    "StoreError",
    "permit_accounts",
    "permit_admin",
    "permit_ext",
]
