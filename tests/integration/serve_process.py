"""``callscreen serve`` as a child process, read the way an admin reads it: stderr lines."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

CLI = [sys.executable, "-m", "callscreen"]


class ServeProcess:
    def __init__(self, db: Path, *extra: str) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [*CLI, "--db", str(db), "serve", "--port", "0", *extra],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.metrics_port: int | None = None
        self._port: queue.Queue[int] = queue.Queue()
        # Read stderr all the time: a full pipe would block the server's log writes.
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        try:
            self.port = self._port.get(timeout=15)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("server did not start: " + "".join(self.lines)) from None

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if m := re.search(r"metrics on http://[\d.]+:(\d+)/", line):
                self.metrics_port = int(m.group(1))
            if m := re.search(r"listening on [\d.]+:(\d+)", line):
                self._port.put(int(m.group(1)))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> str:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return "".join(self.lines)
