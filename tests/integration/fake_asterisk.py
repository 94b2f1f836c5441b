"""A fake Asterisk that plays res_agi.c's side of FastAGI as the real one does.

What it reproduces (see ASTERISK-FACTS.md; the e2e suite checks the same against Asterisk 22):
- sends a full environment block (``agi_network``, ``agi_network_script``, ..., ``agi_arg_N``);
- answers each command line with one reply; ``EXEC`` returns the application's value;
- when the caller hangs up during an application: ``200 result=-1`` (``result=0`` after Wait),
  then an out-of-band ``HANGUP`` line written *before the reply to the next command*;
- after a hangup ANSWER / HANGUP / STREAM FILE get 511; EXEC, GET/SET VARIABLE still run;
- ``EXEC`` without an application gets the multi-line 520 usage block;
- never closes the socket itself (no AGIEXITONHANGUP) and has no read timeout: only the
  server's close ends the call; one more ``HANGUP`` is written after the server closed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from dataclasses import dataclass, field

DEAD_CHANNEL = b"511 Command Not Permitted on a dead channel or intercept routine\n"
USAGE_520 = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: EXEC <application> <options>\n"
    b"520 End of proper usage.\n"
)


def env_block(
    ext: str = "101",
    callerid: str = "+13035551212",
    *,
    callingpres: int = 0,
    calleridname: str = "Test Caller",
    script: str | None = "screen",
    port: int = 4573,
    args: list[str] | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """An environment block as Asterisk 22 sends it for ``AGI(agi://127.0.0.1:PORT/screen,EXT)``."""
    lines = [("agi_network", "yes")]
    if script:
        lines.append(("agi_network_script", script))
    lines += [
        ("agi_request", f"agi://127.0.0.1:{port}/{script or ''}"),
        ("agi_channel", "Local/101@inbound-00000001;2"),
        ("agi_language", "en"),
        ("agi_type", "Local"),
        ("agi_uniqueid", f"{time.time():.6f}"),
        ("agi_version", "22.10.1"),
        ("agi_callerid", callerid),
        ("agi_calleridname", calleridname),
        ("agi_callingpres", str(callingpres)),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", "callscreen"),
        ("agi_extension", "s"),
        ("agi_priority", "6"),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", "140234567890"),
    ]
    for i, arg in enumerate([ext] if args is None else args, 1):
        lines.append((f"agi_arg_{i}", arg))
    lines += list((extra or {}).items())
    return "".join(f"{k}: {v}\n" for k, v in lines).encode() + b"\n"


@dataclass
class Channel:
    """What the channel does: how long the caller waits, which mailboxes exist."""

    patience: float | None = None  # seconds until the caller hangs up; None: never
    mailboxes: set[str] = field(default_factory=lambda: {"101@default", "102@default"})
    voicemail_seconds: float = 0.05  # how long leaving a message takes
    #: Keys the caller presses, one per WAIT FOR DIGIT ("right": the digit SAY DIGITS said;
    #: "": presses nothing, the wait times out).
    keys: list[str] = field(default_factory=list)
    prompt_seconds: float = 0.0  # how long each STREAM FILE / SAY DIGITS plays
    sounds: bool = True  # False: the sound files are missing (STREAM FILE fails, -1)


@dataclass
class Transcript:
    commands: list[str] = field(default_factory=list)  # exact lines the server sent
    variables: dict[str, str] = field(default_factory=dict)
    hung_up: bool = False
    closed_by_server: bool = False
    duration: float = 0.0
    played: list[str] = field(default_factory=list)  # STREAM FILE sounds, in order
    said: list[str] = field(default_factory=list)  # SAY DIGITS digits, in order

    @property
    def apps(self) -> list[str]:
        """The applications EXECuted, in order (``["MSet", "Busy"]``)."""
        return [c.split()[1] for c in self.commands if c.upper().startswith("EXEC ")]


class FakeAsterisk:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, channel: Channel
    ) -> None:
        self.reader, self.writer, self.channel = reader, writer, channel
        self.t = Transcript()
        self._started = time.monotonic()
        self._hangup_pending = False  # the out-of-band HANGUP not yet written
        self.said = ""  # the digit the last SAY DIGITS said

    def _caller_gone_in(self) -> float | None:
        if self.channel.patience is None:
            return None
        return max(0.0, self.channel.patience - (time.monotonic() - self._started))

    def _hang_up(self) -> None:
        if not self.t.hung_up:
            self.t.hung_up = True
            self._hangup_pending = True

    async def _reply(self, data: bytes) -> None:
        if self._hangup_pending:  # Asterisk writes HANGUP before the next reply
            self._hangup_pending = False
            self.writer.write(b"HANGUP\n")
        self.writer.write(data)
        await self.writer.drain()

    async def run(self, env: bytes, max_seconds: float) -> Transcript:
        self.writer.write(env)
        await self.writer.drain()
        deadline = time.monotonic() + max_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server kept the call open after {max_seconds}s: {self.t}")
            try:
                line = await asyncio.wait_for(self.reader.readline(), left)
            except TimeoutError:
                raise AssertionError(f"server kept the call open: {self.t}") from None
            except ConnectionResetError:  # we wrote a reply after the server had closed
                line = b""
            if not line:
                self.t.closed_by_server = True
                break
            text = line.decode().rstrip("\n")
            self.t.commands.append(text)
            try:
                await self._reply(await self._answer(text))
            except ConnectionError:
                self.t.closed_by_server = True
                break
        self.t.duration = time.monotonic() - self._started
        try:  # res_agi writes one last HANGUP even after the server closed (broken pipe)
            self.writer.write(b"HANGUP\n")
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()
        return self.t

    async def _answer(self, text: str) -> bytes:
        words = shlex.split(text, posix=True) if text.count('"') % 2 == 0 else text.split()
        verb = " ".join(words[:2]).upper() if len(words) >= 2 else text.upper()
        if verb == "EXEC" or (words and words[0].upper() == "EXEC" and len(words) == 1):
            return USAGE_520
        if words and words[0].upper() == "EXEC":
            return await self._exec(words[1], words[2] if len(words) > 2 else "")
        if verb == "GET FULL" and len(words) > 3 and words[2].upper() == "VARIABLE":
            m = re.fullmatch(r"\$\{VM_INFO\(([^,]+),exists\)\}", words[3])
            if m:  # the only expression we evaluate; others: empty, as for an unset variable
                return f"200 result=1 ({int(m.group(1) in self.channel.mailboxes)})\n".encode()
            return b"200 result=1 ()\n"
        if verb == "GET VARIABLE":
            value = self.t.variables.get(words[2]) if len(words) > 2 else None
            return b"200 result=0\n" if value is None else f"200 result=1 ({value})\n".encode()
        if verb == "SET VARIABLE":
            self.t.variables[words[2]] = words[3] if len(words) > 3 else ""
            return b"200 result=1\n"
        if text.upper() in ("HANGUP", "ANSWER", "CHANNEL STATUS") or verb in (
            "STREAM FILE",
            "SAY DIGITS",
            "WAIT FOR",
        ):
            if self.t.hung_up:
                return DEAD_CHANNEL
            if text.upper() == "HANGUP":
                self._hang_up()
                return b"200 result=1\n"
            if text.upper() == "ANSWER":
                self.t.variables["ANSWERED"] = "1"
                return b"200 result=0\n"
            if text.upper() == "CHANNEL STATUS":
                return b"200 result=6\n"  # AST_STATE_UP
            return await self._media(verb, words)
        if text.upper() == "NOOP":
            return b"200 result=0\n"
        return b"510 Invalid or unknown command\n"

    async def _media(self, verb: str, words: list[str]) -> bytes:
        """STREAM FILE, SAY DIGITS, WAIT FOR DIGIT: the caller may hang up meanwhile (-1,
        then HANGUP before the next reply, as res_agi does)."""
        seconds = self.channel.prompt_seconds
        if verb == "WAIT FOR":
            key = self.channel.keys.pop(0) if self.channel.keys else ""
            if key == "right":
                key = self.said
            seconds = 0.0 if key else float(words[3]) / 1000 if len(words) > 3 else 0.0
        else:
            key = ""
        gone = self._caller_gone_in()
        if gone is not None and gone <= seconds:
            await asyncio.sleep(gone)
            self._hang_up()
            return b"200 result=-1 endpos=0\n"
        await asyncio.sleep(seconds)
        if verb == "STREAM FILE" and not self.channel.sounds:
            return b"200 result=-1 endpos=0\n"  # seen for a file that does not exist
        if verb == "SAY DIGITS":
            self.said = words[2] if len(words) > 2 else ""
            self.t.said.append(self.said)
        if verb == "STREAM FILE":
            self.t.played.append(words[2] if len(words) > 2 else "")
            return b"200 result=0 endpos=8000\n"
        return f"200 result={ord(key) if key else 0}\n".encode()

    async def _exec(self, app: str, data: str) -> bytes:
        app_l = app.lower()
        if app_l in ("mset", "set"):
            for pair in data.split(","):
                name, _, value = pair.partition("=")
                self.t.variables[name.strip()] = value
            return b"200 result=0\n"
        if self.t.hung_up:
            return b"200 result=-1\n"
        if app_l == "busy":  # unanswered channel: cause 17; the caller hangs up on the busy tone
            if "ANSWERED" not in self.t.variables:  # answered: only a tone, no cause
                self.t.variables["HANGUPCAUSE"] = "17"
            self._hang_up()
            return b"200 result=-1\n"
        if app_l == "ringing":
            return b"200 result=0\n"
        if app_l == "wait":
            seconds = float(data or 0)
            gone = self._caller_gone_in()
            if gone is not None and gone <= seconds:
                await asyncio.sleep(gone)
                self._hang_up()
                return b"200 result=0\n"  # seen: Wait returns 0, then HANGUP
            await asyncio.sleep(seconds)
            return b"200 result=0\n"
        if app_l == "voicemail":
            box = data.split(",", 1)[0]
            if box not in self.channel.mailboxes:
                # Seen on Asterisk 22: VoiceMail answers first, then fails.
                self.t.variables["ANSWERED"] = "1"
                self.t.variables["VMSTATUS"] = "FAILED"
                return b"200 result=-1\n"
            await asyncio.sleep(self.channel.voicemail_seconds)
            self.t.variables["VMSTATUS"] = "SUCCESS"
            self._hang_up()  # the caller hangs up after leaving the message
            return b"200 result=-1\n"
        return b"200 result=-2\n"  # no such application


async def place_call(
    port: int,
    env: bytes | None = None,
    *,
    channel: Channel | None = None,
    max_seconds: float = 5.0,
    **env_kwargs: object,
) -> Transcript:
    """Connect to the server like Asterisk does and play one call to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if env is None:
        env = env_block(port=port, **env_kwargs)  # type: ignore[arg-type]
    return await FakeAsterisk(reader, writer, channel or Channel()).run(env, max_seconds)
