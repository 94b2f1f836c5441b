"""Counting rows the way an admin would check them: a separate connection to the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def call_log_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM call_log").fetchone()[0])


def entries(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
