"""``callscreen doctor``: checks of a deployment, each with a hint how to fix it.

Every check returns :class:`Check` (never raises): the database, the config, the listening
port, the dialplan routine on disk against the shipped one, the voicemail boxes the
extensions use, and a FastAGI probe of a running server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sqlite3
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from . import asterisk_conf
from .db.schema import LATEST_VERSION
from .policy import Treatment
from .timeutil import when

#: The shipped routine's contexts: [callscreen] is required, the *32 one optional.
REQUIRED_CONTEXT = "callscreen"
OPTIONAL_CONTEXTS = ("callscreen-block-last",)
#: The probe's fake call: a caller ID that is no number can match no list entry.
PROBE_EXT = "doctor-probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shipped_dialplan() -> str:
    """The dialplan routine of this version (a copy of dialplan/callscreen.conf)."""
    return resources.files("callscreen").joinpath("data/callscreen.conf").read_text("utf-8")


# -- database -----------------------------------------------------------------------------------
def check_database(path: Path) -> list[Check]:
    if not path.exists():
        return [
            Check(
                "database",
                False,
                f"no database at {path}",
                "any callscreen command creates it; check --db / CALLSCREEN_DB / the config's db",
            )
        ]
    out = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            calls: tuple[int, float | None] | None = None
            with contextlib.suppress(sqlite3.Error):  # no call_log yet: an empty new file
                n, oldest = conn.execute("SELECT count(*), min(time) FROM call_log").fetchone()
                calls = (int(n), oldest)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [
            Check(
                "database",
                False,
                f"{path}: {exc}",
                "restore it from a backup (the server keeps letting calls through meanwhile)",
            )
        ]
    out.append(
        Check(
            "database integrity",
            integrity == "ok",
            f"{path}: {integrity}",
            "" if integrity == "ok" else "restore it from a backup, or `sqlite3 DB .recover`",
        )
    )
    if version == LATEST_VERSION:
        out.append(Check("database schema", True, f"version {version}"))
    elif version < LATEST_VERSION:
        out.append(
            Check(
                "database schema",
                False,
                f"version {version}, this callscreen uses {LATEST_VERSION}",
                "run any callscreen command (or restart serve): it migrates the database",
            )
        )
    else:
        out.append(
            Check(
                "database schema",
                False,
                f"version {version} is newer than this callscreen ({LATEST_VERSION})",
                "upgrade callscreen on this machine",
            )
        )
    out.append(
        Check(
            "database WAL",
            mode == "wal",
            f"journal_mode={mode}",
            "" if mode == "wal" else "run any callscreen command: it turns WAL on",
        )
    )
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    out.append(
        Check(
            "database writable",
            writable,
            f"{path} and its directory " + ("are writable" if writable else "are not writable"),
            "" if writable else "the server's user must write both (the WAL files live beside)",
        )
    )
    if calls is not None:
        # Information, never a failure: what --log-retention keeps (count(*) reads the time
        # index, about 50 ms for a million rows; integrity_check above reads everything).
        n, oldest = calls
        since = f", the oldest from {when(oldest)}" if oldest is not None else ""
        out.append(Check("call log", True, f"{n:,} calls{since}"))
    return out


#: Less free space than this on the database's file system fails the disk check: the call log
#: needs room to grow, and a full disk stops it (calls are still screened).
MIN_FREE_BYTES = 64 << 20


def check_disk(path: Path) -> Check:
    """Free space and a read-only mount where the database lives: the faults that stop the
    call log (the server queues rows in memory meanwhile, up to --call-log-queue)."""
    where = path if path.exists() else path.parent
    try:
        st = os.statvfs(where)
    except OSError as exc:
        return Check("disk", False, f"{where}: {exc.strerror}", "check --db")
    free = st.f_bavail * st.f_frsize
    if st.f_flag & os.ST_RDONLY or _read_only(path.parent):
        return Check(
            "disk",
            False,
            f"{where} is on a read-only file system",
            "the kernel remounts a failing disk read-only: check `dmesg`, fsck, remount",
        )
    detail = f"{free / 2**20:,.0f} MiB free on the database's file system"
    if free < MIN_FREE_BYTES:
        return Check(
            "disk",
            False,
            detail,
            f"free space (at least {MIN_FREE_BYTES >> 20} MiB): a full disk stops the call log",
        )
    return Check("disk", True, detail)


def _read_only(directory: Path) -> bool:
    """A file system the kernel made read-only after an error (ext4 ``errors=remount-ro``)
    does not say so in statvfs: ask it for a nameless file (O_TMPFILE: nothing is left)."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    return False


def check_health(host: str, port: int, timeout: float = 3.0) -> Check:
    """A running server's own view (``serve --metrics-port``): ok, or degraded while the call
    log cannot be written, or not serving."""
    import urllib.error
    import urllib.request

    name = f"server health ({host}:{port})"
    url = f"http://{host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace").strip()
        return Check(name, False, body or str(exc), "the server cannot read its database")
    except (OSError, ValueError) as exc:
        return Check(name, False, f"{url}: {exc}", "is serve running with --metrics-port?")
    if body.startswith("degraded"):
        return Check(
            name,
            False,
            body,
            "calls are screened, but the call log is not being written: "
            "free disk space / fix the database; queued rows are written when it recovers",
        )
    return Check(name, True, body)


# -- port and probe -----------------------------------------------------------------------------
def probe(host: str, port: int, timeout: float = 3.0) -> Check:
    """Play Asterisk for one call of script ``screen``: expect the MSet, answer it, expect the
    server to close. The call shows in the call log (extension doctor-probe)."""
    name = f"probe {host}:{port}"
    env = (
        "agi_network: yes\n"
        "agi_network_script: screen\n"
        f"agi_request: agi://{host}:{port}/screen\n"
        "agi_channel: callscreen-doctor\n"
        "agi_language: en\n"
        "agi_type: doctor\n"
        f"agi_uniqueid: doctor-{time.time():.3f}\n"
        "agi_callerid: doctor\n"
        "agi_calleridname: callscreen doctor\n"
        "agi_callingpres: 0\n"
        "agi_context: doctor\n"
        "agi_extension: s\n"
        "agi_priority: 1\n"
        f"agi_arg_1: {PROBE_EXT}\n\n"
    )
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(env.encode())
            f = s.makefile("rb")
            first = f.readline().decode("utf-8", "replace").strip()
            if not first.startswith("EXEC MSet") or "CALLSCREEN_RESULT=" not in first:
                return Check(
                    name,
                    False,
                    f"unexpected reply {first[:80]!r}" if first else "closed without a result",
                    "is this a callscreen server? (the routine needs the MSet of the result)",
                )
            s.sendall(b"200 result=0\n")
            while line := f.readline():  # a treatment: the "caller" hangs up at once
                s.sendall(b"HANGUP\n200 result=-1\n")
                if len(line) > 8192:
                    break
            ms = (time.monotonic() - started) * 1000
            return Check(
                name, True, f"answered and closed in {ms:.0f} ms: {first[10:].strip(chr(34))}"
            )
    except TimeoutError:
        return Check(
            name,
            False,
            f"no answer within {timeout:g} s",
            "the server is stuck or overloaded, or a firewall drops packets",
        )
    except OSError as exc:
        return Check(
            name,
            False,
            f"cannot connect: {exc.strerror or exc}",
            "start `callscreen serve` (is --allow-from letting this host in?)",
        )


def check_port(host: str, port: int) -> Check:
    name = f"port {host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Check(name, False, f"cannot resolve {host}: {exc}", "check --host / serve.host")
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            return Check(name, True, "free: serve can listen here")
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return Check(
                    name, False, f"cannot bind: {exc.strerror}", "check --host / serve.host"
                )
    served = probe(host, port)
    if served.ok:
        return Check(name, True, "in use by a running callscreen server (it answered a probe)")
    return Check(
        name,
        False,
        f"in use by another program ({served.detail})",
        "stop it, or choose another --port (and the same port in CALLSCREEN_URL)",
    )


# -- dialplan -----------------------------------------------------------------------------------
def check_dialplan(path: Path) -> list[Check]:
    shipped_path = Path(str(resources.files("callscreen").joinpath("data/callscreen.conf")))
    shipped = asterisk_conf.by_name(asterisk_conf.read(shipped_path))
    try:
        theirs = asterisk_conf.by_name(asterisk_conf.read(path))
    except asterisk_conf.ConfError as exc:
        return [Check("dialplan", False, str(exc), "give the file that holds the routine")]
    hint = (
        "install this version's routine: `callscreen dialplan > callscreen.conf` next to "
        "extensions.conf, then `asterisk -rx 'dialplan reload'`"
    )
    out = []
    for name in (REQUIRED_CONTEXT, *OPTIONAL_CONTEXTS):
        want = shipped[name][0].lines
        found = theirs.get(name)
        label = f"dialplan [{name}]"
        if not found:
            if name == REQUIRED_CONTEXT:
                out.append(Check(label, False, f"not in {path} (or its #includes)", hint))
            else:
                out.append(Check(label, True, "not installed (the *32 feature code is off)"))
            continue
        have = found[0].lines
        if have == want and len(found) == 1:
            out.append(Check(label, True, f"matches the shipped routine ({len(want)} lines)"))
            continue
        if len(found) > 1:
            why = f"defined {len(found)} times"
        else:
            diff = next(
                (i for i, (a, b) in enumerate(zip(have, want, strict=False)) if a != b),
                min(len(have), len(want)),
            )
            got = have[diff] if diff < len(have) else "(end of context)"
            exp = want[diff] if diff < len(want) else "(end of context)"
            why = f"differs at statement {diff + 1}: {got!r}, shipped: {exp!r}"
        out.append(Check(label, False, why, hint))
    return out


# -- voicemail ----------------------------------------------------------------------------------
def check_voicemail(conf: Path, boxes: dict[str, str]) -> Check:
    """``boxes``: extension -> BOX@CONTEXT for every extension whose blocked callers get
    voicemail. Each needs a mailbox in voicemail.conf (else the server falls back to busy)."""
    name = "voicemail boxes"
    try:
        sections = asterisk_conf.by_name(asterisk_conf.read(conf))
    except asterisk_conf.ConfError as exc:
        return Check(name, False, str(exc), "give the voicemail.conf Asterisk reads")
    if not boxes:
        return Check(name, True, "no extension sends blocked callers to voicemail")
    missing = []
    for ext, box in sorted(boxes.items()):
        mailbox, _, context = box.partition("@")
        keys: set[str] = set()
        for section in sections.get(context or "default", []):
            keys |= section.keys()
        if mailbox not in keys:
            missing.append(f"{ext} -> {box}")
    if not missing:
        return Check(name, True, f"{len(boxes)} mailbox(es) found in {conf}")
    shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
    return Check(
        name,
        False,
        f"no mailbox for {shown}: blocked callers get busy instead",
        "add `BOX => PIN,Name` under [CONTEXT] in voicemail.conf, or "
        "`callscreen ext set EXT --mailbox BOX@CONTEXT` / another --treatment",
    )


def voicemail_boxes(db: Path, account: str = "default") -> dict[str, str]:
    """Extensions of ``account`` whose blocked callers get voicemail, with their mailbox
    (read-only; an unknown account raises ValueError)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT id, enabled, treatment FROM accounts WHERE name = ?", (account,)
        ).fetchone()
        if found is None:
            raise ValueError(f"no account named {account!r}")
        aid, a_on, a_treat = found
        rows = conn.execute(
            "SELECT ext, enabled, treatment, mailbox FROM extensions WHERE account_id = ?", (aid,)
        ).fetchall()
        seen: list[str] = []
        if a_on and a_treat == Treatment.VOICEMAIL.value:  # account list: every extension called
            seen = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT ext FROM call_log WHERE account_id = ?", (aid,)
                )
            ]
    finally:
        conn.close()
    out: dict[str, str] = {}
    configured = set()
    for ext, on, treat, box in rows:
        configured.add(ext)
        if (on or a_on) and (treat or a_treat) == Treatment.VOICEMAIL.value:
            out[ext] = box or f"{ext}@default"
    for ext in seen:
        if ext not in configured and ext != PROBE_EXT:
            out[ext] = f"{ext}@default"
    return out
