"""One screened call, as the call path hands it to the call log.

Its own module so that it is compiled with the call path (setup.py): a call builds one per
call, and a dataclass's generated ``__init__`` run by the interpreter cost about 2% of a call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One screened call, for the call log."""

    time: float
    ext: str
    caller_raw: str
    caller_e164: str | None
    result: str
    reason: str
    treatment: str | None
    entry_id: int | None
    duration: float
    uniqueid: str | None = None
    caller_name: str | None = None  # agi_calleridname as sent (migration 0005)
    account_id: int = 1  # the account (tenant) the call was for (migration 0010)
