"""Who asks: a portal or API user, an API token's user, or the local CLI operator.

Every operation takes an :class:`Actor` and decides permission itself, once (``permit_*``),
never in a view or a command.
"""

from __future__ import annotations

import enum
import getpass
from dataclasses import dataclass, field, replace

from .errors import NotPermitted


class Role(enum.StrEnum):
    USER = "user"  # manages the extensions they own
    ADMIN = "admin"  # manages every extension, the account-wide lists and users


class Source(enum.StrEnum):
    CLI = "cli"
    API = "api"
    PORTAL = "portal"
    PHONE = "phone"  # a feature code (*32) dialed on the user's own phone


#: The words for "not yours", the same for an extension that does not exist.
NOT_YOURS = "you may not manage extension {ext}"
ADMIN_ONLY = "only an administrator may do this"


@dataclass(frozen=True, slots=True)
class Actor:
    name: str  # the username, or the OS user for the CLI
    role: Role
    source: Source
    extensions: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None  # None for the CLI operator
    ip: str | None = None  # the client address (API, portal)
    account_id: int = 1  # the account acted in (a user's own; the CLI's --account)
    account: str = "default"
    superuser: bool = False  # the provider's role: manages accounts (the CLI operator may too)

    @classmethod
    def cli(cls) -> Actor:
        """The local operator: a shell on the PBX (and the database file) is full control."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            name = "unknown"
        return cls(name=name, role=Role.ADMIN, source=Source.CLI)

    def in_account(self, account_id: int, account: str) -> Actor:
        """The same actor in another account (the CLI operator, after ``--account``)."""
        return replace(self, account_id=account_id, account=account)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def manages_accounts(self) -> bool:
        """The CLI operator (a shell on the PBX) and a superuser add and remove accounts."""
        return self.source is Source.CLI or (self.superuser and self.is_admin)


def permit_ext(actor: Actor, ext: str) -> None:
    """An admin manages every extension; a user only their own."""
    if not actor.is_admin and ext not in actor.extensions:
        raise NotPermitted(NOT_YOURS.format(ext=ext))


def permit_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise NotPermitted(ADMIN_ONLY)


SUPERUSER_ONLY = "only a superuser may manage accounts"


def permit_accounts(actor: Actor) -> None:
    """Adding, listing and removing accounts: the CLI operator or a superuser."""
    if not actor.manages_accounts:
        raise NotPermitted(SUPERUSER_ONLY)
