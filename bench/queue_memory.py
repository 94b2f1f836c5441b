"""Memory of the call-log queue: bytes per queued row, and what a full queue costs.

    python -m bench.queue_memory [--rows 100000]

While the database refuses writes (disk full, read-only, locked) the server keeps call-log rows
in memory, up to ``serve --call-log-queue`` rows. This measures what one queued row costs
(tracemalloc, rows queued through ``Recorder.record`` as the server does) for typical calls and
for the worst case the store allows (caller ID and name at the 256-character bound, in
characters that take 4 bytes each in Python), and prints the cost of a full default queue.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path
from tempfile import TemporaryDirectory

from callscreen.db.recorder import DEFAULT_MAX_QUEUED, Recorder
from callscreen.db.store import CallRecord, Store


def _row(i: int, worst: int) -> CallRecord:
    """A typical row (``worst`` 0), or one whose caller number and name are ``worst``
    characters of 4 bytes each."""
    fields = set(CallRecord.FIELDS)
    caller = ("\U0001f4de" * worst) if worst else f"+1303555{i % 10000:04d}"
    values: dict[str, object] = {
        "time": time.time(),
        "ext": str(100 + i % 50),
        "caller_raw": "".join([caller, ""]),  # a string of its own, as parsed from each call
        "caller_e164": None if worst else f"+1303555{i % 10000:04d}",
        "result": "BLOCKED",
        "reason": "ext-blocklist",
        "treatment": "busy",
        "entry_id": i % 1000,
        "duration": 0.001 * (i % 97),
        "uniqueid": f"{1733050000 + i}.{i % 1000}",
    }
    if "caller_name" in fields:
        name = ("\U0001f4de" * worst) if worst else f"CALLER {i % 1000}"
        values["caller_name"] = "".join([name, ""])  # its own string, as parsed per call
    return CallRecord(**values)  # type: ignore[arg-type]


async def measure(rows: int, worst: int) -> float:
    with TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "q.db")
        try:
            rec = Recorder(store, max_queued=rows + 1)
            made = [_row(i, worst) for i in range(rows)]  # not part of the queue's cost...
            tracemalloc.start()
            for r in made:
                rec.record(r)
            queue_only, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            seen: set[int] = set()  # ...but the rows it keeps alive are (shared values once)
            rows_bytes = sum(_size(r, seen) for r in made)
            return (queue_only + rows_bytes) / rows
        finally:
            await store.close()


def _size(row: CallRecord, seen: set[int]) -> int:
    """The row and the values it holds, each object counted once across all rows."""
    total = sys.getsizeof(row)
    for value in row.astuple():
        if value is not None and id(value) not in seen:
            seen.add(id(value))
            total += sys.getsizeof(value)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    cases = (
        ("typical", 0),
        ("Asterisk's longest (79 chars, 4-byte)", 79),
        ("worst case (256 chars, 4-byte)", 256),
    )
    for label, worst in cases:
        per_row = asyncio.run(measure(args.rows, worst))
        full = per_row * DEFAULT_MAX_QUEUED / 2**20
        print(
            f"{label:38s} {per_row:7.0f} bytes per queued row; "
            f"a full default queue ({DEFAULT_MAX_QUEUED:,} rows): {full:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
