"""The store's own exceptions: callers never see sqlite3 errors."""


class StoreError(Exception):
    """The database cannot be opened, read or written."""


class InvalidInput(StoreError, ValueError):
    """A value the store refuses (unknown treatment, bad mailbox, bad number...)."""


class UnknownAccount(InvalidInput):
    """``--account NAME`` (or a sign-in's account) names no account."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no account named {name!r} (see: callscreen account list)")
        self.name = name


class Conflict(StoreError):
    """A write broke a unique or foreign key constraint (e.g. that username exists already)."""
