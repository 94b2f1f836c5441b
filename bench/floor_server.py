"""The SQLite floor: the least a FastAGI screener on SQLite that keeps a call log can do.

The ceiling (:mod:`bench.ceiling_server`) plus the two things every screener on our design
pays per call, and nothing else: one read of the caller's number from the database (the same
statement on the same index as callscreen's lookup, in its own read transaction) and one
call-log row (queued, written by a thread in one transaction every 0.25 s, like callscreen's
writer, into the same table and indexes). Then ``EXEC MSet`` with the result, and close.

No policy, no settings, no treatments, no log line, no limits, no metrics, no fail-open
handling: it is not a screener anyone should run, it is the line under every one that reads
SQLite and writes a call log in Python on asyncio + uvloop. ``bench.run --servers floor``
measures it beside ours, so "what our features cost" is ours minus the floor, and "what the
design costs" is the floor minus the ceiling. Run the load generator with ``--no-check``.

    .venv/bin/python -m bench.floor_server --db seeded.db --port 4577
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sqlite3
import sys
import threading
import time

from bench.ceiling_server import MSET

# callscreen's exact-number probe (callscreen.db.lookup.VERSION_AND_EXACT_BY_ID_SQL), the
# version row included: the floor reads what the real lookup reads.
LOOKUP_SQL = (
    "SELECT NULL, CAST(version AS TEXT), NULL, NULL, NULL, NULL, NULL, NULL, NULL "
    "FROM settings_version WHERE id = 1 UNION ALL "
    "SELECT id, scope, kind, value, prefix, raw, ext, note, field FROM entries "
    "WHERE account_id = ? AND value = ? AND prefix = 0 "
    "AND (scope = 'account' OR ext = ?) AND field = 'number' "
    "AND (expires_at IS NULL OR expires_at > ?)"
)
INSERT_SQL = (
    "INSERT INTO call_log (account_id, time, ext, caller_raw, caller_e164, result, reason, "
    "treatment, entry_id, duration, uniqueid, caller_name) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
BLOCKED = b"EXEC MSet CALLSCREEN_RESULT=BLOCKED,CALLSCREEN_REASON=listed\n"


def _value(block: bytes, key: bytes) -> str:
    at = block.find(b"\n" + key + b": ")
    if at < 0:
        return ""
    start = at + len(key) + 3
    end = block.find(b"\n", start)
    return block[start : end if end >= 0 else len(block)].decode("utf-8", "replace")


class Writer:
    """Queued call-log rows, written by one thread in one transaction per interval."""

    def __init__(self, path: str, interval: float = 0.25) -> None:
        self.rows: list[tuple[object, ...]] = []
        self.interval = interval
        self.path = path
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")
        stopping = False
        while not stopping:
            stopping = self.stop.wait(self.interval)  # then one last batch: none is lost
            rows, self.rows = self.rows, []
            if rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(INSERT_SQL, rows)
                conn.execute("COMMIT")
        conn.close()


class Floor(asyncio.Protocol):
    __slots__ = ("buf", "sent", "transport")

    conn: sqlite3.Connection
    writer: Writer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        self.sent = False

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.sent:
            end = buf.find(b"\n\n")
            if end < 0:
                self.buf = buf
                return
            self.sent = True
            started = time.time()
            block = b"\n" + buf[:end]
            caller, ext = _value(block, b"agi_callerid"), _value(block, b"agi_arg_1")
            rows = self.conn.execute(LOOKUP_SQL, (1, caller, ext, started)).fetchall()
            entry = rows[1][0] if len(rows) > 1 else None
            self.transport.write(BLOCKED if entry else MSET)  # type: ignore[attr-defined]
            self.writer.rows.append(
                (
                    1,
                    started,
                    ext,
                    caller,
                    caller,
                    "BLOCKED" if entry else "ALLOWED",
                    "listed" if entry else "not-listed",
                    None,
                    entry,
                    time.time() - started,
                    _value(block, b"agi_uniqueid"),
                    _value(block, b"agi_calleridname"),
                )
            )
            buf = buf[end + 2 :]
        for line in buf.split(b"\n")[:-1]:
            if line and line != b"HANGUP":
                self.transport.close()
                return
        self.buf = buf[buf.rfind(b"\n") + 1 :]

    def eof_received(self) -> None:
        return None


async def serve(host: str, port: int, db: str) -> None:
    Floor.conn = sqlite3.connect(db, isolation_level=None)
    Floor.conn.execute("PRAGMA mmap_size=1073741824")
    Floor.writer = Writer(db)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Floor, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    Floor.writer.stop.set()
    Floor.writer.thread.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4577)
    ap.add_argument("--db", required=True, help="a callscreen database (seeded by bench.seed)")
    a = ap.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(a.host, a.port, a.db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
