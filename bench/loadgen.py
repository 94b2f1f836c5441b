"""FastAGI load generator: plays Asterisk's side of the wire against a screening server.

    .venv/bin/python -m bench.loadgen --manifest /tmp/bench.db.manifest.json --port 4573 \\
        --mix allowed=70,blocked=20,anonymous=5,torture=5 --concurrency 50 --duration 10

Per call it connects, sends a full environment block (as Asterisk 22 does for a PJSIP trunk
call), then answers every command line the way Asterisk would:

* ``SET VARIABLE`` -> ``200 result=1``; ``EXEC MSet``/``EXEC Set`` -> ``200 result=0``
* ``EXEC Busy`` -> ``200 result=-1`` then the out-of-band ``HANGUP`` line
* ``EXEC VoiceMail`` -> after ``--vm-time`` (the message) ``200 result=-1`` + ``HANGUP``;
  ``GET VARIABLE VMSTATUS`` -> ``200 result=1 (SUCCESS)``
* ``EXEC Ringing`` -> ``200 result=0``; ``EXEC Wait "N"`` -> no reply while the simulated
  caller listens to the ringing (``--hold`` seconds from the first Wait; ``200 result=0`` when a
  Wait runs out first), then ``200 result=-1`` + ``HANGUP``
* ``HANGUP`` -> ``200 result=1`` + ``HANGUP``; unknown commands -> ``510``; after the hangup
  ANSWER/HANGUP/STREAM FILE -> ``511``, EXEC of anything -> ``200 result=-1`` at once.

Like Asterisk it never closes the socket first: a call ends when the server closes. A call that
sees no byte from the server for ``--timeout`` seconds while the server owes one is aborted
and counted as an error ("server did not close"). Each finished call is checked against the
manifest's expected result/reason/treatment and the treatment commands seen; any error or
mismatch makes the exit status 1 (``--no-check`` turns the outcome checks off, for the
ceiling server that only sets one variable).

Concurrency is closed-loop: N slots, each starts its next call when the previous one ends. A
tortured call gives its slot back once it is on hold (after the first Wait) and keeps its
connection open in the background until its caller hangs up, as real held calls do.
Latency (connect -> server close) is reported for screened calls; tortured calls report
"time to hold" (connect -> first Wait) separately, and voicemail calls (whose time is mostly the
caller's message, ``--vm-time``) their own p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

perf = time.perf_counter
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

CATEGORIES = ("allowed", "blocked", "anonymous", "torture", "voicemail")
DEFAULT_MIX = "allowed=70,blocked=20,anonymous=5,torture=5"

# Treatment commands seen (bit flags)
F_BUSY, F_VM, F_RINGING, F_WAIT, F_VMSTATUS, F_HANGUPCMD = 1, 2, 4, 8, 16, 32

ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: screen\n"
    b"agi_request: agi://%s:%d/screen\n"
    b"agi_channel: PJSIP/trunk-%08x\n"
    b"agi_language: en\n"
    b"agi_type: PJSIP\n"
    b"agi_uniqueid: %d.%d\n"
    b"agi_version: 22.10.1\n"
    b"agi_callerid: %s\n"
    b"agi_calleridname: %s\n"
    b"agi_callingpres: %s\n"
    b"agi_callingani2: 0\n"
    b"agi_callington: 0\n"
    b"agi_callingtns: 0\n"
    b"agi_dnid: %s\n"
    b"agi_rdnis: unknown\n"
    b"agi_context: from-trunk\n"
    b"agi_extension: %s\n"
    b"agi_priority: 2\n"
    b"agi_enhanced: 0.0\n"
    b"agi_accountcode: \n"
    b"agi_threadid: %d\n"
    b"agi_arg_1: %s\n"
    b"%s"  # the rest of the routine's arguments (ROUTINE_ARGS)
    b"\n"
)

#: What the shipped routine sends after the extension: the account (none: default) and
#: "busy", its word that it runs Busy() itself when told ``CALLSCREEN_THEN=busy``.
#: ``--old-routine``: a routine from before, which sends the extension only.
ROUTINE_ARGS = b"agi_arg_2: \nagi_arg_3: busy\n"

NAMES = [
    n.encode()
    for n in (
        "WIRELESS CALLER",
        "SMITH JOHN",
        "Jane Doe",
        "José García",
        "Müller, Hans",
        "O'Brien Pat",
        "ACME CORP",
        "Łukasz Nowak",
        "田中 太郎",
        "unknown",
        "TOLL FREE CALL",
        "Zoë Lefèvre",
    )
]
BAD_NAME = "José".encode()[:-1]  # a truncated multibyte name: invalid UTF-8, as seen in the wild

R_SET = b"200 result=1\n"
R_ZERO = b"200 result=0\n"
R_MINUS = b"200 result=-1\n"
R_MINUS_HANGUP = b"200 result=-1\nHANGUP\n"
R_ONE_HANGUP = b"200 result=1\nHANGUP\n"
R_510 = b"510 Invalid or unknown command\n"
R_511 = b"511 Command Not Permitted on a dead channel or intercept routine\n"
R_NOAPP = b"200 result=-2\n"
R_VMSTATUS = b"200 result=1 (SUCCESS)\n"
R_VAR_UNSET = b"200 result=0\n"

# Applications our fake Asterisk "has" that return 0 at once while the caller is there.
ZERO_APPS = {b"answer", b"progress", b"playback", b"noop", b"log", b"verbose", b"playtones"}


def unquote(v: bytes) -> bytes:
    v = v.strip()
    if len(v) >= 2 and v[:1] == b'"' and v[-1:] == b'"':
        v = v[1:-1]
        if b"\\" in v:
            out = bytearray()
            it = iter(v)
            for ch in it:
                if ch == 0x5C:
                    ch = next(it, 0x5C)
                out.append(ch)
            v = bytes(out)
    return v


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in CATEGORIES:
            raise SystemExit(f"--mix: unknown category {name!r} (one of {', '.join(CATEGORIES)})")
        mix[name] = float(share or 1)
    if not mix or sum(mix.values()) <= 0:
        raise SystemExit("--mix: empty")
    return mix


def proc_cpu(pid: int) -> float:
    """utime+stime of a process, in seconds (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid: int) -> int:
    """VmRSS in bytes."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def system_busy() -> float:
    """CPU seconds all processes spent busy, machine-wide (from /proc/stat)."""
    with open("/proc/stat", "rb") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # minus idle and iowait


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, round(p / 100 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[i]


class Spec:
    """One call to make: category, environment block and expected outcome."""

    __slots__ = ("category", "env", "exp_reason", "exp_result", "exp_treatment", "label")

    def __init__(
        self,
        category: str,
        env: bytes,
        exp: tuple[bytes, bytes, bytes | None],
        label: str,
    ) -> None:
        self.category = category
        self.env = env
        self.exp_result, self.exp_reason, self.exp_treatment = exp
        self.label = label


class Call(asyncio.Protocol):
    """Asterisk's side of one FastAGI connection."""

    __slots__ = (
        "buf",
        "eof",
        "flags",
        "gen",
        "hangup_at",
        "holding",
        "hung",
        "idle_tick",
        "n_after_hangup",
        "owed",
        "slot",
        "spec",
        "t0",
        "t_end",
        "t_hold",
        "timed_out",
        "timer",
        "transport",
        "vars",
        "vm_done",
    )

    def __init__(self, gen: Generator, spec: Spec, slot: asyncio.Future[None]) -> None:
        self.gen = gen
        self.spec = spec
        self.slot = slot
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.vars: dict[bytes, bytes] = {}
        self.flags = 0
        self.hung = False
        self.eof = False
        self.holding = False
        self.owed = False  # True while we owe the server a reply (a Wait on hold)
        self.hangup_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.vm_done = False
        self.n_after_hangup = 0
        self.timed_out = False
        self.idle_tick = gen.tick
        self.t0 = perf()
        self.t_end = 0.0
        self.t_hold = 0.0

    # -- asyncio ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gen.active.add(self)
        transport.write(self.spec.env)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.idle_tick = self.gen.tick
        buf = self.buf + data if self.buf else data
        while (i := buf.find(b"\n")) >= 0:
            line = buf[:i]
            buf = buf[i + 1 :]
            if line.endswith(b"\r"):
                line = line[:-1]
            if line:
                self.command(line)
        self.buf = buf

    def eof_received(self) -> bool:
        self.eof = True
        self.t_end = perf()
        return False  # close our side as well

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.gen.active.discard(self)
        if self.holding:
            self.gen.holding.discard(self)
        if not self.t_end:
            self.t_end = perf()
        self.gen.finish(self, exc)

    # -- Asterisk -----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def command(self, line: bytes) -> None:
        if self.hung:
            self.n_after_hangup += 1
        parts = line.split(b" ", 2)
        verb = parts[0].upper()
        if verb == b"EXEC":
            app = parts[1].lower() if len(parts) > 1 else b""
            arg = parts[2] if len(parts) > 2 else b""
            if app == b"mset" or app == b"set":
                for item in unquote(arg).split(b","):
                    name, eq, value = item.partition(b"=")
                    if eq:
                        self.vars[name.strip()] = value
                self.write(R_ZERO)
            elif self.hung:
                self.write(R_MINUS)  # a dead channel: every application returns -1 at once
            elif app == b"busy":
                self.flags |= F_BUSY
                self.hang_up(R_MINUS_HANGUP)
            elif app == b"wait":
                self.flags |= F_WAIT
                self.wait(arg)
            elif app == b"ringing":
                self.flags |= F_RINGING
                self.write(R_ZERO)
            elif app == b"voicemail":
                self.flags |= F_VM
                self.owed = True
                self.timer = self.gen.loop.call_later(self.gen.vm_time, self.voicemail_left)
            elif app in ZERO_APPS:
                self.write(R_ZERO)
            elif app == b"hangup" or app == b"congestion":
                self.hang_up(R_MINUS_HANGUP)
            else:
                self.gen.unknown[b"EXEC " + app] += 1
                self.write(R_NOAPP)
        elif verb == b"SET":
            p = line.split(b" ", 3)
            if len(p) == 4 and p[1].upper() == b"VARIABLE":
                self.vars[p[2]] = unquote(p[3])
                self.write(R_SET)
            else:
                self.gen.unknown[line[:40]] += 1
                self.write(R_510)
        elif verb == b"GET":
            p = line.split(b" ")
            name = unquote(p[-1]) if len(p) >= 3 else b""
            if name == b"VMSTATUS" and self.vm_done:
                self.flags |= F_VMSTATUS
                self.write(R_VMSTATUS)
            elif name in self.vars:
                self.write(b"200 result=1 (%s)\n" % self.vars[name])
            else:
                self.write(R_VAR_UNSET)
        elif verb == b"HANGUP":
            self.flags |= F_HANGUPCMD
            if self.hung:
                self.write(R_511)
            else:
                self.hang_up(R_ONE_HANGUP)
        elif verb in (b"ANSWER", b"STREAM", b"CONTROL", b"GET DATA", b"SAY", b"RECORD"):
            self.write(R_511 if self.hung else R_ZERO)
        elif verb == b"NOOP":
            self.write(R_ZERO)
        elif verb == b"VERBOSE":
            self.write(R_SET)
        else:
            self.gen.unknown[line[:40]] += 1
            self.write(R_510)

    def hang_up(self, reply: bytes) -> None:
        self.hung = True
        self.owed = False
        self.write(reply)

    def voicemail_left(self) -> None:
        self.timer = None
        self.vm_done = True
        self.hang_up(R_MINUS_HANGUP)  # the caller left a message and hung up

    def wait(self, arg: bytes) -> None:
        gen = self.gen
        now = perf()
        if not self.t_hold:
            self.t_hold = now
            self.hangup_at = now + gen.hold
            self.holding = True
            gen.holding.add(self)
            if not self.slot.done():
                self.slot.set_result(None)  # on hold: the slot may start the next call
            if gen.releasing:
                self.caller_hangs_up()
                return
        try:
            secs = float(unquote(arg) or b"0")
        except ValueError:
            secs = 10.0
        left = self.hangup_at - now
        self.owed = True
        if gen.hold_forever or left > secs:
            self.timer = gen.loop.call_later(max(0.0, secs), self.wait_over)
        else:
            self.timer = gen.loop.call_later(max(0.0, left), self.caller_hangs_up)

    def wait_over(self) -> None:
        self.timer = None
        self.owed = False
        self.idle_tick = self.gen.tick
        self.write(R_ZERO)

    def caller_hangs_up(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.idle_tick = self.gen.tick
        if self.holding:
            self.holding = False
            self.gen.holding.discard(self)
        if self.owed or not self.hung:
            self.hang_up(R_MINUS_HANGUP)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Generator:
    def __init__(self, args: argparse.Namespace, manifest: dict[str, Any] | None) -> None:
        self.a = args
        self.loop = asyncio.get_running_loop()
        self.host: str = args.host
        self.port: int = args.port
        self.hold: float = args.hold
        self.hold_forever = False
        self.vm_time: float = args.vm_time
        self.check: bool = not args.no_check
        self.releasing = False
        self.tick = 0
        self.active: set[Call] = set()
        self.holding: set[Call] = set()
        self.unknown: Counter[bytes] = Counter()
        self.errors: Counter[str] = Counter()
        self.mismatches: Counter[str] = Counter()
        self.examples: list[str] = []
        self.n_started = 0
        self.n_done = 0
        self.n_after_hangup = 0
        self.resets_after_outcome = 0
        self.by_cat: Counter[str] = Counter()
        self.lat: dict[str, list[float]] = {
            "screen": [],
            "hold": [],
            "torture": [],
            "voicemail": [],
        }
        self.win_lo = 0.0
        self.win_hi = float("inf")
        self.win_calls = 0
        self.on_done: Callable[[], None] | None = None
        self._rng = random.Random(args.seed)
        self._specs = self._build_specs(manifest)
        self._next = 0
        self._uid = int(time.time())
        self._chan = self._rng.randrange(1 << 24)

    # -- workload -----------------------------------------------------------------------------
    def _build_specs(self, manifest: dict[str, Any] | None) -> list[tuple[str, list[Any]]]:
        """A deterministic sequence of (category, manifest row) with the mix's proportions."""
        mix = parse_mix(self.a.mix)
        rows: dict[str, list[Any]] = {}
        for cat in mix:
            if manifest is not None:
                rows[cat] = manifest["calls"].get(cat) or []
            else:  # no manifest: made-up callers to extension 2001, outcome checks off
                rows[cat] = [
                    [f"+1415555{i:04d}", "0", "2001", "ALLOWED", "not-listed", None]
                    for i in range(2000, 9000)
                ]
            if not rows[cat]:
                raise SystemExit(f"manifest has no callers for category {cat!r}")
        total = sum(mix.values())
        n = 2000
        seq: list[str] = []
        for cat, share in mix.items():
            seq += [cat] * max(1, round(n * share / total))
        self._rng.shuffle(seq)
        offsets = {cat: self._rng.randrange(len(r)) for cat, r in rows.items()}
        out = []
        # Walk each category's callers in turn so a long run spreads over all of them.
        for _ in range(max(1, 20_000 // len(seq))):
            for cat in seq:
                r = rows[cat]
                out.append((cat, r[offsets[cat] % len(r)]))
                offsets[cat] += 1
        return out

    def make_spec(self) -> Spec:
        cat, row = self._specs[self._next % len(self._specs)]
        self._next += 1
        caller, pres, ext, result, reason, treatment = row
        self._uid += 1
        self._chan += 1
        rng = self._rng
        if cat == "anonymous":
            name = b"unknown"
        elif self.a.bad_utf8 and rng.random() < self.a.bad_utf8:
            name = BAD_NAME
        else:
            name = NAMES[self._chan % len(NAMES)]
        ext_b = ext.encode()
        env = ENV % (
            self.host.encode(),
            self.port,
            self._chan & 0xFFFFFFFF,
            1_763_900_000 + self._uid // 1000,
            self._uid % 100_000,
            caller.encode() or b"unknown",
            name,
            pres.encode(),
            ext_b,
            ext_b,
            139_800_000_000_000 + self._uid,
            ext_b,
            b"" if self.a.old_routine else ROUTINE_ARGS,
        )
        exp = (result.encode(), reason.encode(), treatment.encode() if treatment else None)
        return Spec(cat, env, exp, f"{cat} {caller or '(none)'} -> {ext}")

    # -- one call -----------------------------------------------------------------------------
    async def run_call(self) -> None:
        spec = self.make_spec()
        slot: asyncio.Future[None] = self.loop.create_future()
        proto = Call(self, spec, slot)
        self.n_started += 1
        try:
            await self.loop.create_connection(lambda: proto, self.host, self.port)
        except OSError as exc:
            proto.t_end = perf()
            self.finish(proto, exc, connect_failed=True)
            return
        await slot

    def finish(self, c: Call, exc: BaseException | None, connect_failed: bool = False) -> None:
        self.n_done += 1
        self.n_after_hangup += c.n_after_hangup
        spec = c.spec
        err = None
        if connect_failed:
            err = f"connect: {type(exc).__name__}: {getattr(exc, 'strerror', '') or exc}"
        elif not c.eof and not c.timed_out:
            if exc is not None and c.vars and (not self.check or self.verify(c) is None):
                # The server closed with our last reply unread (the kernel sends a reset then):
                # the call was screened and treated right, so count it, but not as an error.
                self.resets_after_outcome += 1
            else:
                err = "reset by server before close" if exc is not None else "closed without EOF"
        if err is not None:
            self.errors[err] += 1
            self._example(f"error {err}: {spec.label}")
        elif self.check and not c.timed_out:
            bad = self.verify(c)
            if bad:
                key = f"{spec.category}: {bad}"
                self.mismatches[key] += 1
                self._example(f"mismatch {key}: {spec.label} vars={self._vars(c)}")
        if self.win_lo <= c.t_end <= self.win_hi:
            self.win_calls += 1
            self.by_cat[spec.category] += 1
            if c.t_hold:
                self.lat["hold"].append(c.t_hold - c.t0)
                self.lat["torture"].append(c.t_end - c.t0)
            elif spec.category == "voicemail":  # the caller's message (--vm-time) is most of it
                self.lat["voicemail"].append(c.t_end - c.t0)
            else:
                self.lat["screen"].append(c.t_end - c.t0)
        if not c.slot.done():
            c.slot.set_result(None)
        if self.on_done is not None:
            self.on_done()

    @staticmethod
    def _vars(c: Call) -> str:
        return ",".join(
            f"{k.decode(errors='replace')}={v.decode(errors='replace')}" for k, v in c.vars.items()
        )

    def _example(self, text: str) -> None:
        if len(self.examples) < 12:
            self.examples.append(text)

    def verify(self, c: Call) -> str | None:
        s = c.spec
        v = c.vars
        result = v.get(b"CALLSCREEN_RESULT")
        if result is None:
            return "no CALLSCREEN_RESULT set"
        if result != s.exp_result:
            return f"result {result.decode(errors='replace')} (expected {s.exp_result.decode()})"
        reason = v.get(b"CALLSCREEN_REASON")
        if reason != s.exp_reason:
            got = reason.decode(errors="replace") if reason is not None else "(unset)"
            return f"reason {got} (expected {s.exp_reason.decode()})"
        treatment = v.get(b"CALLSCREEN_TREATMENT")
        if treatment != s.exp_treatment:
            got = treatment.decode(errors="replace") if treatment is not None else "(unset)"
            exp = s.exp_treatment.decode() if s.exp_treatment else "(unset)"
            return f"treatment {got} (expected {exp})"
        f = c.flags & (F_BUSY | F_VM | F_RINGING | F_WAIT)
        t = s.exp_treatment
        if t is None:
            return "treatment commands on an allowed call" if f else None
        if t == b"busy":
            then = v.get(b"CALLSCREEN_THEN")
            if then == b"busy" and not f and not self.a.old_routine:
                return None  # left to the routine, which runs Busy() after the AGI
            if then is not None:
                return f"CALLSCREEN_THEN={then.decode(errors='replace')} (expected it unset)"
            if f != F_BUSY:
                return f"busy treatment ran flags={f} (expected EXEC Busy only)"
        if t == b"voicemail" and not f & F_VM:
            return "voicemail treatment without EXEC VoiceMail"
        if t == b"torture":
            if not (f & F_RINGING and f & F_WAIT):
                return f"torture without Ringing+Wait (flags={f})"
            if not c.hung and (self.a.torture_max is None or c.t_end - c.t0 < self.a.torture_max):
                return "torture ended by the server before the caller hung up"
        return None

    # -- driving ------------------------------------------------------------------------------
    async def sweeper(self) -> None:
        """Once a second: abort calls where the server owes us a byte for --timeout seconds."""
        limit = max(1, int(self.a.timeout))
        while True:
            await asyncio.sleep(1.0)
            self.tick += 1
            for c in list(self.active):
                if c.owed or c.holding:
                    continue
                if self.tick - c.idle_tick > limit:
                    kind = "server did not close" if c.hung or c.vars else "server stalled"
                    self.errors[f"{kind} (idle {limit} s)"] += 1
                    self._example(f"error {kind}: {c.spec.label} vars={self._vars(c)}")
                    c.timed_out = True  # one error: not also a reset or a mismatch
                    self.active.discard(c)
                    c.abort()

    def release_all(self) -> None:
        self.releasing = True
        for c in list(self.holding):
            c.caller_hangs_up()

    async def worker(self, stop_at: float, remaining: list[int]) -> None:
        while perf() < stop_at:
            if remaining[0] <= 0:
                return
            remaining[0] -= 1
            await self.run_call()

    async def drain(self, timeout: float) -> None:
        deadline = perf() + timeout
        while (self.active or self.n_done < self.n_started) and perf() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for c in list(self.active):
            self.errors["still open at the end"] += 1
            c.timed_out = True
            c.abort()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    manifest = args.manifest_data
    if manifest is None:
        args.no_check = True
    gen = Generator(args, manifest)
    sweeper = asyncio.create_task(gen.sweeper())
    pid = args.server_pid
    out: dict[str, Any] = {"concurrency": args.concurrency, "mix": args.mix, "check": gen.check}
    if args.hold_test:
        out.update(await hold_test(gen, args))
    else:
        out.update(await load(gen, args, pid))
    sweeper.cancel()
    out["errors"] = sum(gen.errors.values())
    out["error_kinds"] = dict(gen.errors)
    out["mismatches"] = sum(gen.mismatches.values())
    out["mismatch_kinds"] = dict(gen.mismatches)
    out["examples"] = gen.examples
    out["commands_after_hangup"] = gen.n_after_hangup
    out["resets_after_outcome"] = gen.resets_after_outcome
    out["unknown_commands"] = {k.decode(errors="replace"): n for k, n in gen.unknown.items()}
    out["ok"] = out["errors"] == 0 and out["mismatches"] == 0 and gen.n_done > 0
    return out


async def load(gen: Generator, args: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    start = perf()
    remaining = [args.calls if args.calls else 1 << 62]
    if args.calls:
        stop_at = float("inf")
        gen.win_lo = 0.0
    else:
        gen.win_lo = start + args.warmup
        gen.win_hi = gen.win_lo + args.duration
        stop_at = gen.win_hi
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks[name + "_t"] = perf()
        marks[name + "_gen_cpu"] = self_cpu()
        marks[name + "_sys_busy"] = system_busy()
        if pid:
            marks[name + "_srv_cpu"] = proc_cpu(pid)

    if args.calls:
        mark("lo")
    else:
        gen.loop.call_at(gen.loop.time() + args.warmup, mark, "lo")
        gen.loop.call_at(gen.loop.time() + args.warmup + args.duration, mark, "hi")
    workers = [asyncio.create_task(gen.worker(stop_at, remaining)) for _ in range(args.concurrency)]
    await asyncio.gather(*workers)
    if args.calls:
        mark("hi")
    gen.release_all()
    await gen.drain(args.hold + args.timeout + 5)
    if "hi_t" not in marks:
        mark("hi")
    wall = marks["hi_t"] - marks["lo_t"]
    n = gen.win_calls
    screen = sorted(gen.lat["screen"])
    hold = sorted(gen.lat["hold"])
    out: dict[str, Any] = {
        "calls": gen.n_done,
        "window_s": round(wall, 3),
        "window_calls": n,
        "calls_per_s": round(n / wall, 1) if wall > 0 else 0.0,
        "by_category": dict(gen.by_cat),
        "p50_ms": round(pct(screen, 50) * 1000, 3),
        "p99_ms": round(pct(screen, 99) * 1000, 3),
        "max_ms": round((screen[-1] if screen else 0) * 1000, 3),
        "torture_to_hold_p50_ms": round(pct(hold, 50) * 1000, 3),
        "torture_to_hold_p99_ms": round(pct(hold, 99) * 1000, 3),
        "voicemail_p50_ms": round(pct(sorted(gen.lat["voicemail"]), 50) * 1000, 3),
        "gen_cpu_util": round((marks["hi_gen_cpu"] - marks["lo_gen_cpu"]) / wall, 3)
        if wall > 0
        else 0.0,
    }
    if pid:
        srv = marks["hi_srv_cpu"] - marks["lo_srv_cpu"]
        out["server_cpu_s"] = round(srv, 3)
        out["server_cpu_util"] = round(srv / wall, 3) if wall > 0 else 0.0
        out["server_cpu_per_call_us"] = round(srv / n * 1e6, 1) if n else 0.0
        gen_cpu = marks["hi_gen_cpu"] - marks["lo_gen_cpu"]
        other = marks["hi_sys_busy"] - marks["lo_sys_busy"] - srv - gen_cpu
        # Other processes on the machine during the window (in CPUs): interference.
        out["other_cpu_util"] = round(max(0.0, other) / wall, 3) if wall > 0 else 0.0
    return out


async def hold_test(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    """Put --calls tortured calls on hold at once; measure the server's RSS per held call."""
    pid = args.server_pid
    gen.hold_forever = True
    # Warm the server up with short calls of the same kind first (imports, caches, pools).
    gen.hold, gen.hold_forever = 0.0, False
    await asyncio.gather(*(gen.worker(float("inf"), [200]) for _ in range(10)))
    await gen.drain(args.timeout)
    await asyncio.sleep(0.5)
    rss0 = proc_rss(pid) if pid else 0
    gen.hold_forever, gen.hold = True, 3600.0
    all_held = asyncio.Event()
    target = args.calls

    def check_held() -> None:
        if len(gen.holding) >= target:
            all_held.set()

    gen.on_done = None
    t0 = perf()
    remaining = [target]
    workers = [
        asyncio.create_task(gen.worker(float("inf"), remaining)) for _ in range(args.concurrency)
    ]
    poll_deadline = t0 + args.timeout + target / 200
    while perf() < poll_deadline:
        check_held()
        if all_held.is_set() or (all(w.done() for w in workers) and len(gen.holding) < target):
            if all_held.is_set():
                break
            if not gen.active:
                break
        await asyncio.sleep(0.05)
    ramp_s = perf() - t0
    held = len(gen.holding)
    await asyncio.sleep(1.0)
    rss1 = max(proc_rss(pid) for _ in range(3)) if pid else 0
    srv_cpu_held0 = proc_cpu(pid) if pid else 0.0
    await asyncio.sleep(2.0)
    srv_cpu_idle = (proc_cpu(pid) - srv_cpu_held0) / 2.0 if pid else 0.0
    gen.release_all()
    await asyncio.gather(*workers)
    await gen.drain(args.timeout + 5)
    return {
        "calls": gen.n_done,
        "held": held,
        "ramp_s": round(ramp_s, 2),
        "rss_before_kb": rss0 // 1024,
        "rss_held_kb": rss1 // 1024,
        "rss_per_held_call_kb": round((rss1 - rss0) / 1024 / held, 2) if held else 0.0,
        "server_cpu_util_while_held": round(srv_cpu_idle, 3),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4573)
    ap.add_argument("--manifest", help="from bench.seed; without it outcome checks are off")
    ap.add_argument(
        "--mix", default=DEFAULT_MIX, help=f"category=share,... (default {DEFAULT_MIX})"
    )
    ap.add_argument("--concurrency", type=int, default=50, help="concurrent calls (slots)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--duration", type=float, default=10.0, help="seconds measured (after warmup)")
    g.add_argument("--calls", type=int, help="make exactly this many calls instead")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    ap.add_argument("--hold", type=float, default=1.0, help="seconds a tortured caller listens")
    ap.add_argument("--torture-max", type=float, help="the server's --torture-max, if below --hold")
    ap.add_argument("--vm-time", type=float, default=0.05, help="seconds a voicemail message takes")
    ap.add_argument("--timeout", type=float, default=10.0, help="safety: idle seconds per call")
    ap.add_argument("--no-check", action="store_true", help="do not check outcomes (ceiling)")
    ap.add_argument(
        "--old-routine",
        action="store_true",
        help="play a dialplan routine from before this one, which sends only the extension: the "
        "server runs Busy itself (default: the shipped routine, which runs Busy() when told)",
    )
    ap.add_argument("--bad-utf8", type=float, default=0.0, help="share of invalid UTF-8 names")
    ap.add_argument("--server-pid", type=int, help="measure this process's CPU time / RSS")
    ap.add_argument(
        "--hold-test",
        action="store_true",
        help="memory test: put --calls tortured calls on hold at once, report RSS per call",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    return ap.parse_args(argv)


def format_text(r: dict[str, Any]) -> str:
    lines = []
    if "rss_per_held_call_kb" in r:
        lines.append(
            f"held {r['held']} calls (ramp {r['ramp_s']} s): RSS {r['rss_before_kb']} KB -> "
            f"{r['rss_held_kb']} KB = {r['rss_per_held_call_kb']} KB per held call"
        )
    else:
        lines.append(
            f"{r['calls_per_s']} calls/s over {r['window_s']} s ({r['window_calls']} calls, "
            f"{r['calls']} in all), concurrency {r['concurrency']}"
        )
        lines.append(
            f"latency p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms; "
            f"torture to hold p50 {r['torture_to_hold_p50_ms']} ms"
        )
        lines.append(f"generator CPU {r['gen_cpu_util'] * 100:.0f}%")
        if "server_cpu_per_call_us" in r:
            lines.append(
                f"server CPU {r['server_cpu_util'] * 100:.0f}%, "
                f"{r['server_cpu_per_call_us']} us per call; other processes "
                f"{r['other_cpu_util'] * 100:.0f}% of a CPU"
            )
    lines.append(
        f"errors {r['errors']} {r['error_kinds'] or ''}  mismatches {r['mismatches']} "
        f"{r['mismatch_kinds'] or ''}" + ("" if r["check"] else " (checks off)")
    )
    if r["resets_after_outcome"]:
        lines.append(
            f"{r['resets_after_outcome']} calls ended by a reset (server closed with a reply "
            "unread) after a correct outcome"
        )
    if r["commands_after_hangup"]:
        lines.append(f"{r['commands_after_hangup']} commands sent after the HANGUP")
    lines += [f"  {e}" for e in r["examples"]]
    if r["unknown_commands"]:
        lines.append(f"unknown commands: {r['unknown_commands']}")
    lines.append("OK" if r["ok"] else "FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.manifest_data = json.loads(Path(args.manifest).read_text()) if args.manifest else None
    raise_nofile()
    if args.calls:
        args.warmup = 0.0
    if args.hold_test and not args.calls:
        raise SystemExit("--hold-test needs --calls N")
    if args.no_uvloop:
        result = asyncio.run(run(args))
    else:
        import uvloop

        result = uvloop.run(run(args))
    print(json.dumps(result) if args.json else format_text(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
