"""One screened call, as the call path hands it to the call log.

Its own module so that it is compiled with the call path (setup.py). A plain class, not a
dataclass: a call builds one, and even compiled (mypyc) a frozen dataclass keeps the
``__init__`` that :mod:`dataclasses` generates, run by the interpreter (about 0.5 us against
0.03 for this one's, issue #16). Its attributes are ``Final``: mypy refuses an assignment, and
the compiled class refuses one at run time as well.
"""

from __future__ import annotations

from typing import Any, Final

from ..inert import MAX_STORED, bound

#: The call-log INSERT whose values :meth:`CallRecord.insert_row` gives. The three values
#: most calls leave empty (the caller's E.164 number, the treatment, the deciding entry) are
#: bound as ``''`` and ``0`` and stored as NULL by ``nullif``: Python's sqlite3 binds a None
#: through its adapter registry (a tuple built, a dict and two attribute lookups, ~3,300
#: instructions measured with callgrind), an exact str or int directly. None of the three is
#: ever really empty or 0 (an entry's id starts at 1).
INSERT_SQL: Final = (
    "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, reason, "
    "treatment, entry_id, duration, uniqueid, caller_name) "
    "VALUES (?, ?, ?, ?, nullif(?, ''), ?, ?, nullif(?, ''), nullif(?, 0), ?, ?, ?)"
)


class CallRecord:
    """One screened call, for the call log."""

    __slots__ = (
        "account_id",
        "caller_e164",
        "caller_name",
        "caller_raw",
        "duration",
        "entry_id",
        "ext",
        "reason",
        "result",
        "time",
        "treatment",
        "uniqueid",
    )

    #: The fields in the order the constructor takes them (a dataclass's ``fields()``).
    FIELDS: Final = (
        "time",
        "ext",
        "caller_raw",
        "caller_e164",
        "result",
        "reason",
        "treatment",
        "entry_id",
        "duration",
        "uniqueid",
        "caller_name",  # agi_calleridname as sent (migration 0005)
        "account_id",  # the account (tenant) the call was for (migration 0010)
    )

    def __init__(
        self,
        time: float,
        ext: str,
        caller_raw: str,
        caller_e164: str | None,
        result: str,
        reason: str,
        treatment: str | None,
        entry_id: int | None,
        duration: float,
        uniqueid: str | None = None,
        caller_name: str | None = None,
        account_id: int = 1,
    ) -> None:
        self.time: Final = time
        self.ext: Final = ext
        self.caller_raw: Final = caller_raw
        self.caller_e164: Final = caller_e164
        self.result: Final = result
        self.reason: Final = reason
        self.treatment: Final = treatment
        self.entry_id: Final = entry_id
        self.duration: Final = duration
        self.uniqueid: Final = uniqueid
        self.caller_name: Final = caller_name
        self.account_id: Final = account_id

    def astuple(self) -> tuple[Any, ...]:
        """The values in :data:`FIELDS` order."""
        return (
            self.time,
            self.ext,
            self.caller_raw,
            self.caller_e164,
            self.result,
            self.reason,
            self.treatment,
            self.entry_id,
            self.duration,
            self.uniqueid,
            self.caller_name,
            self.account_id,
        )

    def insert_row(self) -> tuple[Any, ...]:
        """The values of a call-log INSERT (:data:`INSERT_SQL`'s order), the texts that came
        from outside bounded (:func:`callscreen.inert.bound`: at most 256 characters, the cut
        marked). Here rather than in the store: the writer builds one per call, and this
        module is compiled."""
        ext, raw, uniqueid, name = self.ext, self.caller_raw, self.uniqueid, self.caller_name
        return (
            self.account_id,
            self.time,
            ext if len(ext) <= MAX_STORED else bound(ext),
            raw if len(raw) <= MAX_STORED else bound(raw),
            self.caller_e164 or "",
            self.result,
            self.reason,
            self.treatment or "",
            self.entry_id or 0,
            self.duration,
            uniqueid if uniqueid is None or len(uniqueid) <= MAX_STORED else bound(uniqueid),
            name if name is None or len(name) <= MAX_STORED else bound(name),
        )

    def replace(self, **changes: Any) -> CallRecord:
        """A copy with ``changes`` (field=value), like :func:`dataclasses.replace`."""
        values = dict(zip(self.FIELDS, self.astuple(), strict=True))
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"CallRecord has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return CallRecord(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallRecord):
            return NotImplemented
        return self.astuple() == other.astuple()

    def __hash__(self) -> int:
        return hash(self.astuple())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(self.FIELDS, self.astuple(), strict=True))
        return f"CallRecord({fields})"
