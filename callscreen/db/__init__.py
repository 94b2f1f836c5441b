"""The SQLite store: schema and migrations, the per-call lookup, the admin API, the call log."""

from .errors import InvalidInput, StoreError
from .lookup import Lookup
from .recorder import Recorder
from .schema import DEFAULT_DB, LATEST_VERSION, connect
from .store import CallRecord, ListedEntry, Store

__all__ = [
    "DEFAULT_DB",
    "LATEST_VERSION",
    "CallRecord",
    "InvalidInput",
    "ListedEntry",
    "Lookup",
    "Recorder",
    "Store",
    "StoreError",
    "connect",
]
