"""The ceiling: the least a FastAGI server can do per call, in asyncio + uvloop.

Reads the environment block, sends ``SET VARIABLE CALLSCREEN_RESULT ALLOWED``, waits for the
reply and closes. No lookup, no decision, no treatment: what Python can do at all on this wire.
Run the load generator with ``--no-check`` against it.

    .venv/bin/python -m bench.ceiling_server --port 4575
    .venv/bin/python -m bench.ceiling_server --port 4576 --mset   # EXEC MSet instead (bench.sipp)

It is also the "floor" of ``bench/sipp.py``: the least any AGI screener makes a call wait.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys

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


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Ceiling, host, port, backlog=4096, reuse_address=True)
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
    a = ap.parse_args(argv)
    if a.mset:
        global CMD
        CMD = MSET
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    uvloop.run(serve(a.host, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
