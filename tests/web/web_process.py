"""``callscreen web`` as a child process, read the way an admin reads it: its stderr lines
(shared by tests/web and the real-Asterisk tests)."""

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


class WebProcess:
    def __init__(self, db: Path | str, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "--db", str(db), *args],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._found: queue.Queue[tuple[str, int]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.host, self.port = self._found.get(timeout=20)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("web did not start: " + "".join(self.lines)) from None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if m := re.search(r"web listening on http://([\d.]+):(\d+)", line):
                self._found.put((m.group(1), int(m.group(2))))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)
