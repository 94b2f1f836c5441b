"""The ceiling: the least a FastAGI server can do per call, in asyncio + uvloop.

Reads the environment block, sends ``SET VARIABLE CALLSCREEN_RESULT ALLOWED``, waits for the
reply and closes. No lookup, no decision, no treatment: what Python can do at all on this wire.
Run the load generator with ``--no-check`` against it.

    .venv/bin/python -m bench.ceiling_server --port 4575
    .venv/bin/python -m bench.ceiling_server --port 4576 --mset   # EXEC MSet instead (bench.sipp)
    .venv/bin/python -m bench.ceiling_server --port 4577 --script SEED.manifest.json

It is also the "floor" of ``bench/sipp.py``: the least any AGI screener makes a call wait.

``--script``, the **scripted ceiling**: the same conversation callscreen has with Asterisk, at
the least it can cost. Every call's commands are known in advance (from the load generator's
manifest: caller and extension -> the expected outcome), so a call is one dict lookup and
precomputed lines: the ``MSet`` callscreen sends, then the treatment's commands, each after the
previous reply (voicemail: the mailbox check, ``VoiceMail``, ``VMSTATUS``; torture:
``Ringing``, ``Wait`` until the caller hangs up; busy: left to the routine, or ``EXEC Busy``
for an older one). The load generator checks it like ours. On a mix where a tenth of the calls
take three or four round trips (the block-heavy one), this, not the one-command ceiling, is
what "the same work in bare uvloop" costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
from typing import Any, ClassVar

CMD = b"SET VARIABLE CALLSCREEN_RESULT ALLOWED\n"


#: ``--mset``: the command callscreen sends for an allowed call (an application, EXEC, rather than
#: a variable), to tell Asterisk's cost of running an application from the server's own.
MSET = b"EXEC MSet CALLSCREEN_RESULT=ALLOWED,CALLSCREEN_REASON=not-listed\n"


class Ceiling(asyncio.Protocol):
    __slots__ = ("buf", "sent", "transport")

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
            self.transport.write(CMD)  # type: ignore[attr-defined]
            buf = buf[end + 2 :]
        # Any reply line but an out-of-band HANGUP answers our one command.
        for line in buf.split(b"\n")[:-1]:
            if line and line != b"HANGUP":
                self.transport.close()
                return
        self.buf = buf[buf.rfind(b"\n") + 1 :]

    def eof_received(self) -> None:
        return None


def _value(block: bytes, key: bytes) -> bytes:
    at = block.find(b"\n" + key + b": ")
    if at < 0:
        return b""
    start = at + len(key) + 3
    end = block.find(b"\n", start)
    return block[start : end if end >= 0 else len(block)]


def _mset(result: str, reason: str, treatment: str | None, then: str | None) -> bytes:
    out = f"EXEC MSet CALLSCREEN_RESULT={result},CALLSCREEN_REASON={reason}"
    if treatment:
        out += f",CALLSCREEN_TREATMENT={treatment}"
    if then:
        out += f",CALLSCREEN_THEN={then}"
    return (out + "\n").encode()


def scripts(manifest: dict[str, Any]) -> dict[tuple[bytes, bytes, bool], tuple[bytes, ...]]:
    """(extension, caller ID, routine plays busy) -> the lines callscreen would send."""
    out: dict[tuple[bytes, bytes, bool], tuple[bytes, ...]] = {}
    for rows in manifest["calls"].values():
        for caller, _pres, ext, result, reason, treatment in rows:
            for routine in (True, False):
                lines: tuple[bytes, ...]
                if treatment == "busy":
                    lines = (
                        (_mset(result, reason, treatment, "busy"),)
                        if routine
                        else (_mset(result, reason, treatment, None), b"EXEC Busy\n")
                    )
                elif treatment == "voicemail":
                    box = f"{ext}@default"
                    lines = (
                        _mset(result, reason, treatment, None),
                        f"GET FULL VARIABLE ${{VM_INFO({box},exists)}}\n".encode(),
                        f"EXEC VoiceMail {box},u\n".encode(),
                        b"GET VARIABLE VMSTATUS\n",
                    )
                elif treatment == "torture":
                    lines = (
                        _mset(result, reason, treatment, None),
                        b"EXEC Ringing\n",
                        b"EXEC Wait 10\n",
                    )
                else:
                    lines = (_mset(result, reason, treatment, None),)
                out[ext.encode(), caller.encode(), routine] = lines
    return out


class Scripted(asyncio.Protocol):
    """``--script``: each call's lines looked up once, each sent after the previous reply."""

    __slots__ = ("buf", "lines", "next", "transport")

    table: ClassVar[dict[tuple[bytes, bytes, bool], tuple[bytes, ...]]] = {}
    fallback: ClassVar[tuple[bytes, ...]] = (MSET,)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        self.lines: tuple[bytes, ...] = ()
        self.next = -1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if self.next < 0:
            end = buf.find(b"\n\n")
            if end < 0:
                self.buf = buf
                return
            block = b"\n" + buf[:end]
            key = (
                _value(block, b"agi_arg_1"),
                _value(block, b"agi_callerid"),
                _value(block, b"agi_arg_3") == b"busy",
            )
            self.lines = self.table.get(key, self.fallback)
            self.transport.write(self.lines[0])  # type: ignore[attr-defined]
            self.next = 1
            buf = buf[end + 2 :]
        for line in buf.split(b"\n")[:-1]:
            if not line or line == b"HANGUP":  # out of band: the reply is still to come
                continue
            if self.next >= len(self.lines):
                self.transport.close()
                return
            self.transport.write(self.lines[self.next])  # type: ignore[attr-defined]
            self.next += 1
        self.buf = buf[buf.rfind(b"\n") + 1 :]

    def eof_received(self) -> None:
        return None


async def serve(host: str, port: int, scripted: bool = False) -> None:
    loop = asyncio.get_running_loop()
    protocol: type[asyncio.Protocol] = Scripted if scripted else Ceiling
    server = await loop.create_server(protocol, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4575)
    ap.add_argument("--mset", action="store_true", help="send EXEC MSet (two variables) instead")
    ap.add_argument(
        "--script",
        metavar="MANIFEST",
        help="the scripted ceiling: play callscreen's conversation for each call in the load "
        "generator's manifest",
    )
    a = ap.parse_args(argv)
    if a.script:
        with open(a.script) as f:
            Scripted.table = scripts(json.load(f))
    if a.mset:
        global CMD
        CMD = MSET
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(a.host, a.port, bool(a.script)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
