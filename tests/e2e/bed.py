"""The real-Asterisk test bed: Asterisk from the Debian sid root filesystem, the callscreen
server and CLI as subprocesses, calls placed through AMI.

Nothing here knows how the server screens a call: it only drives Asterisk like a user would
and reports what Asterisk did (AMI events, hangup causes, voicemail files, open sockets).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from panoramisk import Manager
from panoramisk.actions import Action

REPO = Path(__file__).resolve().parents[2]
CONFIG_TEMPLATES = Path(__file__).resolve().parent / "asterisk" / "etc"
SHIPPED_DIALPLAN = REPO / "dialplan" / "callscreen.conf"

BUILD_HINT = "build it with `make asterisk-root` (as root; needs Debian's mirror)"


def asterisk_root() -> Path:
    default = Path.home() / ".cache" / "callscreen" / "asterisk-root"
    return Path(os.environ.get("CALLSCREEN_ASTERISK_ROOT", default))


def unavailable_reason() -> str | None:
    """Why the real Asterisk cannot run here, or None when it can."""
    root = asterisk_root()
    if os.geteuid() != 0:
        return f"the e2e tests chroot into {root} and need root; {BUILD_HINT}"
    if not (root / ".callscreen-ready").is_file() or not (root / "usr/sbin/asterisk").exists():
        return f"no Asterisk root filesystem at {root}; {BUILD_HINT}"
    return None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now (TCP by default; SOCK_DGRAM: UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes -------------------------------------------------------------------------------

_live_groups: set[int] = set()


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _kill_leftovers() -> None:  # last resort when a fixture's finalizer never ran
    for pgid in list(_live_groups):
        _kill_group(pgid)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Linux: SIGTERM the child when the test process dies, even by SIGKILL (no atexit then).
    # Kept across exec (chroot execs asterisk; neither is setuid).
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start argv in its own process group, output to log; ended when the tests end, however
    they end (finalizers, atexit, the parent-death signal)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    _live_groups.add(proc.pid)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 5.0) -> int:
    """Send sig to proc, wait up to grace seconds, then kill its whole group. Returns the exit
    status (negative: ended by that signal, e.g. -9 when it had to be killed)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(5)
    _kill_group(proc.pid)  # anything it left behind in its group
    _live_groups.discard(proc.pid)
    return int(proc.returncode)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Asterisk --------------------------------------------------------------------------------


class Asterisk:
    """One Asterisk process in the root filesystem, with its own config, run, spool, db and log
    directories under ROOT/tmp/callscreen-e2e-*: runs never share state or control sockets."""

    ami_user = "callscreen-e2e"
    ami_secret = "e2e-" + uuid.uuid4().hex[:12]

    #: Files of the bed that a sample configuration (sample=...) cannot replace: they hold the
    #: per-run directories, the AMI port and login, the log file.
    BED_FILES = ("asterisk.conf", "manager.conf", "logger.conf")

    def __init__(
        self,
        root: Path,
        server_port: int,
        logdir: Path,
        *,
        sample: Path | None = None,
        env: dict[str, str] | None = None,
        modules: Sequence[str] | None = None,
    ) -> None:
        """sample: a directory of Asterisk config files used instead of the bed's dialplan
        and modules (e.g. docker/asterisk/etc); env: extra environment for Asterisk;
        modules: load exactly these modules (autoload off) instead of the bed's list."""
        self.root = root
        self.server_port = server_port
        self.sample = sample
        self.env = env
        self.modules = modules
        self.ami_port = free_port()
        self.sip_port = free_port(socket.SOCK_DGRAM)  # pjsip.conf's UDP transport
        self.logdir = logdir
        sweep_stale_rundirs(root)
        self.hostdir = Path(tempfile.mkdtemp(prefix="callscreen-e2e-", dir=root / "tmp"))
        self.inside = "/" + str(self.hostdir.relative_to(root))  # the same dir, seen in the root
        self.conf = f"{self.inside}/etc/asterisk.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    # configuration
    def _moddir(self) -> str:
        found = sorted(self.root.glob("usr/lib/*/asterisk/modules"))
        if not found:
            raise RuntimeError(f"no Asterisk modules directory in {self.root}")
        return "/" + str(found[0].relative_to(self.root))

    def write_config(self) -> None:
        etc = self.hostdir / "etc"
        for sub in ("etc", "run", "spool", "db", "log", "cache"):
            (self.hostdir / sub).mkdir()
        values = {
            "RUNDIR": self.inside,
            "MODDIR": self._moddir(),
            "AMI_PORT": str(self.ami_port),
            "AMI_USER": self.ami_user,
            "AMI_SECRET": self.ami_secret,
            "SERVER_PORT": str(self.server_port),
            "SIP_PORT": str(self.sip_port),
        }
        if self.sample is not None:
            for conf in self.sample.iterdir():
                shutil.copyfile(conf, etc / conf.name)
        for template in CONFIG_TEMPLATES.iterdir():
            if self.sample is not None and template.name not in self.BED_FILES:
                continue
            text = template.read_text()
            for key, value in values.items():
                text = text.replace(f"@{key}@", value)
            left = re.findall(r"@[A-Z_]+@", text)
            assert not left, f"{template.name}: unknown placeholders {left}"
            (etc / template.name).write_text(text)
        if self.modules is not None:
            loads = "".join(f"load => {m}\n" for m in self.modules)
            (etc / "modules.conf").write_text("[modules]\nautoload = no\n" + loads)
        # The routine users get, byte for byte.
        shutil.copyfile(SHIPPED_DIALPLAN, etc / "callscreen.conf")
        # Debian's packaged tone tables.
        shutil.copyfile(self.root / "etc/asterisk/indications.conf", etc / "indications.conf")

    # lifecycle
    def start(self, timeout: float = 30.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        self.write_config()
        self.proc = spawn(
            ["chroot", str(self.root), "asterisk", "-f", "-n", "-C", self.conf],
            self.logdir / f"asterisk-{self.hostdir.name}.log",
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Asterisk exited with {self.proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise RuntimeError("Asterisk did not finish booting:\n" + self.log_tail())
            if (self.hostdir / "run" / "asterisk.ctl").exists():
                res = self.cli("core waitfullybooted", check=False, timeout=timeout)
                if res.returncode == 0:
                    break
            time.sleep(0.1)
        # AMI accepts our login.
        while not ami_login_ok(self.ami_port, self.ami_user, self.ami_secret):
            if time.monotonic() > deadline:
                raise RuntimeError("AMI does not accept the test login:\n" + self.log_tail())
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cli("core stop now", check=False, timeout=5)
        stop(self.proc, grace=5)
        self.proc = None
        for name in ("messages.log",):
            with contextlib.suppress(OSError):
                shutil.copyfile(
                    self.hostdir / "log" / name,
                    self.logdir / f"asterisk-{self.hostdir.name}-{name}",
                )
        if not os.environ.get("CALLSCREEN_E2E_KEEP"):
            shutil.rmtree(self.hostdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return (
            log_tail(self.hostdir / "log" / "messages.log", lines)
            + "\n"
            + log_tail(self.logdir / f"asterisk-{self.hostdir.name}.log", 10)
        )

    # remote console
    def cli(
        self, command: str, check: bool = True, timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["chroot", str(self.root), "asterisk", "-C", self.conf, "-rx", command],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def active_channels(self) -> int:
        out = self.cli("core show channels count").stdout
        m = re.search(r"(\d+) active channels?", out)
        assert m, f"unexpected `core show channels count` output: {out!r}"
        return int(m.group(1))

    def wait_no_channels(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while (n := self.active_channels()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return n

    def voicemail_dir(self, box: str, context: str = "default", folder: str = "INBOX") -> Path:
        return self.hostdir / "spool" / "voicemail" / context / box / folder


def sweep_stale_rundirs(root: Path, min_age: float = 600.0) -> None:
    """Remove run directories of earlier sessions killed before their cleanup. Other sessions
    may be running: keep a directory whose Asterisk is alive, or that is younger than min_age
    and has no pid file yet (its Asterisk may be starting)."""
    for rundir in root.glob("tmp/callscreen-e2e-*"):
        try:
            pid = int((rundir / "run" / "asterisk.pid").read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid and Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            if not pid and time.time() - rundir.stat().st_mtime < min_age:
                continue
            shutil.rmtree(rundir, ignore_errors=True)


def ami_login_ok(port: int, user: str, secret: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            f = s.makefile("rwb")
            f.readline()  # banner
            f.write(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n\r\n".encode())
            f.flush()
            reply = b""
            while not reply.endswith(b"\r\n\r\n"):
                chunk = f.readline()
                if not chunk:
                    return False
                reply += chunk
            return b"Response: Success" in reply
    except OSError:
        return False


# --- the callscreen server and CLI -----------------------------------------------------------


def callscreen_argv() -> list[str]:
    exe = Path(sys.executable).parent / "callscreen"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "callscreen"]


def compiled_build(dest: Path) -> Path:
    """A copy of this checkout's callscreen with the call path compiled as a wheel builds it
    (setup.py, mypyc; about 30 s): put it on PYTHONPATH to run the shipped build (the venv's
    ``callscreen`` script imports from PYTHONPATH before the editable checkout)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        REPO / "callscreen",
        dest / "callscreen",
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),
        dirs_exist_ok=True,
    )
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=dest,
        env={**os.environ, "CALLSCREEN_COMPILE": "1"},
        capture_output=True,
        check=True,
        timeout=600,
    )
    return dest


class Server:
    """`callscreen serve` on a loopback port with a given database (``build``: a directory of
    :func:`compiled_build` to run the compiled call path; None: this checkout's modules)."""

    def __init__(
        self,
        db: Path | str,
        logdir: Path,
        port: int | None = None,
        *extra: str,
        build: Path | None = None,
    ) -> None:
        self.db = db
        self.port = port or free_port()
        self.log = logdir / f"callscreen-serve-{self.port}.log"
        self.extra = list(extra)
        self.build = build
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        env = {**os.environ, "CALLSCREEN_DB": str(self.db)}
        if self.build is not None:
            env["PYTHONPATH"] = str(self.build)
        argv = [*callscreen_argv(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = spawn([*argv, *self.extra], self.log, env=env)
        ready = f"listening on 127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while ready not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"callscreen serve exited with {self.proc.returncode}:\n{log_tail(self.log)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"callscreen serve never said {ready!r}:\n{log_tail(self.log)}")
            time.sleep(0.05)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        rc = stop(self.proc, signal.SIGTERM, grace=10)
        self.proc = None
        return rc

    def established_connections(self) -> int:
        """TCP connections to the server port that are still ESTABLISHED (server side)."""
        out = subprocess.run(
            ["ss", "-Htn", "state", "established", f"( sport = :{self.port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len([line for line in out.splitlines() if line.strip()])


class Cli:
    """Runs the callscreen CLI against the test database, as a user would."""

    def __init__(self, db: Path | str) -> None:
        self.db = db

    def run(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CALLSCREEN_DB": str(self.db)}
        res = subprocess.run(
            [*callscreen_argv(), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            input=input,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"callscreen {' '.join(args)} exited {res.returncode}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}"
            )
        return res

    def __call__(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


# --- calls through AMI -----------------------------------------------------------------------


@dataclass
class Call:
    """What Asterisk reported about one originated call (all channels sharing its linkedid)."""

    exten: str
    callerid: str
    caller_id: str  # uniqueid of the ;1 leg: the "caller", running the Originate application
    dialplan_id: str  # uniqueid of the ;2 leg: runs the inbound dialplan and the AGI
    events: list[dict[str, str]] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # uniqueid -> channel name
    hungup: dict[str, tuple[int, str]] = field(default_factory=dict)  # uniqueid -> cause
    done: asyncio.Event = field(default_factory=asyncio.Event)
    originate_response: dict[str, str] | None = None

    def add(self, event: dict[str, str]) -> None:
        self.events.append(event)
        uid = event.get("Uniqueid", "")
        name = event.get("Event", "")
        if name == "Newchannel":
            self.channels[uid] = event.get("Channel", "")
        elif name == "Hangup":
            self.hungup[uid] = (int(event.get("Cause", "0") or 0), event.get("Cause-txt", ""))
            if self.channels and set(self.channels) <= set(self.hungup):
                self.done.set()

    # what a user would look at
    def of(self, kind: str, uid: str | None = None) -> list[dict[str, str]]:
        return [
            e
            for e in self.events
            if e.get("Event") == kind and (uid is None or e.get("Uniqueid") == uid)
        ]

    @property
    def vars(self) -> dict[str, str]:
        """Channel variables of the dialplan leg, last value wins."""
        return {e["Variable"]: e.get("Value", "") for e in self.of("VarSet", self.dialplan_id)}

    @property
    def result(self) -> str | None:
        return self.vars.get("CALLSCREEN_RESULT")

    @property
    def reason(self) -> str | None:
        return self.vars.get("CALLSCREEN_REASON")

    @property
    def apps(self) -> list[tuple[str, str, str]]:
        """(context, application, data) of each dialplan step of the dialplan leg."""
        return [
            (e.get("Context", ""), e.get("Application", ""), e.get("AppData", ""))
            for e in self.of("Newexten", self.dialplan_id)
        ]

    def phone_rang(self, context: str = "reached") -> bool:
        """The "phone" behind Dial (the dialplan context it runs in) got the call."""
        return any(e.get("Context") == context for e in self.of("Newexten"))

    @property
    def reached_dial(self) -> bool:
        # "inbound" and its variants (inbound-acme: an account's inbound context)
        return any(app == "Dial" for ctx, app, _ in self.apps if ctx.startswith("inbound"))

    @property
    def agi_commands(self) -> list[str]:
        return [e.get("Command", "") for e in self.of("AGIExecStart", self.dialplan_id)]

    @property
    def hangup_cause(self) -> int | None:
        """Hangup cause of the dialplan leg: what the screening left on the inbound call."""
        got = self.hungup.get(self.dialplan_id)
        return got[0] if got else None

    @property
    def caller_states(self) -> list[str]:
        return [e.get("ChannelStateDesc", "") for e in self.of("Newstate", self.caller_id)]

    @property
    def up(self) -> bool:
        return not self.done.is_set()

    def summary(self) -> str:
        lines = [f"call to {self.exten} from {self.callerid!r}:"]
        for e in self.events:
            kind = e.get("Event", "")
            if kind in {"Newexten", "VarSet", "AGIExecStart", "AGIExecEnd", "Newstate", "Hangup"}:
                detail = {
                    "Newexten": lambda e: (
                        f"{e.get('Context')} {e.get('Application')}({e.get('AppData')})"
                    ),
                    "VarSet": lambda e: f"{e.get('Variable')}={e.get('Value')}",
                    "AGIExecStart": lambda e: e.get("Command"),
                    "AGIExecEnd": lambda e: e.get("Result"),
                    "Newstate": lambda e: e.get("ChannelStateDesc"),
                    "Hangup": lambda e: f"{e.get('Cause')} {e.get('Cause-txt')}",
                }[kind](e)
                lines.append(f"  {e.get('Channel', '?')}: {kind} {detail}")
        return "\n".join(lines)


class AmiEndpoint(Protocol):
    """Where an Asterisk's AMI listens on 127.0.0.1, and the login: an Asterisk of this bed,
    or one in a container (tests/docker)."""

    @property
    def ami_port(self) -> int: ...
    @property
    def ami_user(self) -> str: ...
    @property
    def ami_secret(self) -> str: ...


class Ami:
    """An AMI session (panoramisk) that routes channel events to the Call they belong to."""

    def __init__(self, asterisk: AmiEndpoint) -> None:
        self.asterisk = asterisk
        self.calls: dict[str, Call] = {}  # linkedid -> call
        self.expected: dict[str, Call] = {}  # channel name prefix -> call not yet seen
        self.manager: Manager | None = None

    async def connect(self) -> None:
        self.manager = Manager(
            loop=asyncio.get_running_loop(),
            host="127.0.0.1",
            port=self.asterisk.ami_port,
            username=self.asterisk.ami_user,
            secret=self.asterisk.ami_secret,
            ping_delay=3600,
            reconnect_timeout=1,
        )
        self.manager.register_event("*", self._on_event)
        await self.manager.connect()
        for _ in range(100):
            if self.manager.authenticated:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("AMI login failed")

    async def close(self) -> None:
        if self.manager is not None:
            self.manager.close()
            self.manager = None

    def _on_event(self, _manager: Manager, message: Any) -> None:
        event = {str(k): str(v) for k, v in dict(message).items()}
        call = self.calls.get(event.get("Linkedid", ""))
        if call is None and event.get("Event") == "Newchannel":
            call = self._claim(event)
        if call is not None:
            if event.get("Event") == "Newchannel" and event.get("Channel", "").endswith(";2"):
                call.dialplan_id = call.dialplan_id or event.get("Uniqueid", "")
            call.add(event)

    def _claim(self, event: dict[str, str]) -> Call | None:
        """A call not placed by us (e.g. `channel originate` on the Asterisk CLI): its first
        channel is named after a prefix given to expect_call()."""
        for prefix, call in list(self.expected.items()):
            if event.get("Channel", "").startswith(prefix):
                del self.expected[prefix]
                call.caller_id = event.get("Uniqueid", "")
                self.calls[event.get("Linkedid", "")] = call
                return call
        return None

    def expect_call(self, channel_prefix: str, exten: str) -> Call:
        """A Call that collects the events of the next call whose first channel name starts
        with channel_prefix (e.g. 'Local/101-3035551212@testcall-')."""
        call = Call(exten, "", "", "")
        self.expected[channel_prefix] = call
        return call

    async def originate(
        self,
        exten: str,
        callerid: str | None,
        *,
        context: str = "inbound",
        ring_timeout: float = 30.0,
        caller_wait: int = 15,
        variables: Iterable[str] = (),
    ) -> Call:
        """Place a call from a Local channel into context: the ;1 leg is the caller (lets it
        ring ring_timeout seconds, then sits in Wait(caller_wait) once answered), the ;2 leg
        runs the dialplan. callerid is an Originate CallerID ('"Name" <number>'), None for none.
        """
        assert self.manager is not None
        caller_id, dialplan_id = (f"e2e-{uuid.uuid4().hex[:16]}" for _ in range(2))
        call = Call(exten, callerid or "", caller_id, dialplan_id)
        self.calls[caller_id] = call
        action: dict[str, Any] = {
            "Action": "Originate",
            "Channel": f"Local/{exten}@{context}",
            "Application": "Wait",
            "Data": str(caller_wait),
            "Timeout": str(int(ring_timeout * 1000)),
            "Async": "true",
            "ChannelId": caller_id,
            "OtherChannelId": dialplan_id,
        }
        if callerid is not None:
            action["CallerID"] = callerid
        if variables:
            action["Variable"] = list(variables)
        # Async Originate: the action's future only completes with OriginateResponse (on answer
        # or failure): never wait for it; keep the response for the call's summary.
        sent = Action(action)
        sent.future.add_done_callback(lambda f: _keep_originate_response(call, f))
        self.manager.send_action(sent)
        return call

    async def send(self, action: dict[str, str], within: float = 5.0) -> Any:
        assert self.manager is not None
        # as_list=False: one response. (panoramisk guesses otherwise from the reply text and
        # raises KeyError on "... successfully queued" replies to actions without Async.)
        reply = self.manager.send_action(dict(action), as_list=False)
        return await asyncio.wait_for(reply, within)

    async def hangup(self, call: Call, uid: str | None = None) -> None:
        """Hang up a channel of the call (default: the caller's leg), like a caller giving up."""
        assert self.manager is not None
        name = call.channels[uid or call.caller_id]
        reply = await self.send({"Action": "Hangup", "Channel": name, "Cause": "16"})
        assert reply.success, f"AMI Hangup {name}: {reply}"

    async def wait_until(self, predicate: Any, within: float, what: str, call: Call) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout waiting for {what}\n{call.summary()}")
            await asyncio.sleep(0.02)

    async def finished(self, call: Call, within: float = 15.0) -> Call:
        """Wait until every channel of the call has hung up."""
        try:
            await asyncio.wait_for(call.done.wait(), within)
        except TimeoutError:
            raise AssertionError(
                f"call still up after {within}s\n{call.summary()}\n"
                f"originate response: {call.originate_response}"
            ) from None
        return call

    async def call(self, exten: str, callerid: str | None, **kw: Any) -> Call:
        """Place a call and wait (at most `within` seconds, default 15) for it to end."""
        within = kw.pop("within", 15.0)
        return await self.finished(await self.originate(exten, callerid, **kw), within)


def _keep_originate_response(call: Call, future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    got = future.result()
    responses = got if isinstance(got, list) else [got]
    call.originate_response = {str(k): str(v) for k, v in dict(responses[-1]).items()}
