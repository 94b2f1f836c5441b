"""The store's own exceptions: callers never see sqlite3 errors."""


class StoreError(Exception):
    """The database cannot be opened, read or written."""


class InvalidInput(StoreError, ValueError):
    """A value the store refuses (unknown treatment, bad mailbox, bad number...)."""


class Conflict(StoreError):
    """A write broke a unique or foreign key constraint (e.g. that username exists already)."""
