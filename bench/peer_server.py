"""The peer: the screening server a user would write with panoramisk's FastAGI and aiosqlite.

Same database (callscreen's schema and the benchmark seed), same decisions (allowlist,
anonymous, extension list, account list; exact numbers and prefixes, the most specific entry
wins), same channel variables and treatments, same caller-ID normalization (phonenumbers,
region US). Two indexed queries per call through aiosqlite: the settings, and the entries whose
value is one of the caller number's prefixes. Variables are set with one ``SET VARIABLE`` each,
as the panoramisk examples do; uvloop runs the loop, like ours.

    .venv/bin/python -m bench.peer_server --db /tmp/bench.db --port 4574
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
import sys
from typing import Any

import aiosqlite
import phonenumbers
from panoramisk import fast_agi

REGION = "US"
ANONYMOUS = {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld"}

SETTINGS_SQL = """
SELECT a.enabled, a.anonymous = 'block', a.treatment,
       e.enabled, e.anonymous = 'block', e.treatment, e.mailbox
FROM accounts a LEFT JOIN extensions e ON e.account_id = a.id AND e.ext = ?
WHERE a.id = 1"""


def entries_sql(n: int) -> str:
    return (
        "SELECT scope, kind, value, prefix FROM entries WHERE account_id = 1 "
        f"AND value IN ({','.join('?' * n)}) AND (scope = 'account' OR ext = ?)"
    )


def caller_number(callerid: str, pres: str) -> tuple[str | None, bool]:
    """(E.164 or None, anonymous)."""
    text = callerid.strip()
    if text.lower() in ANONYMOUS:
        return None, True
    digits = text.lstrip("+")
    if digits and set(digits) == {"0"}:
        return None, True
    try:
        if int(pres or 0) & 0x60 in (0x20, 0x40):
            return None, True
    except ValueError:
        pass
    try:
        parsed = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException:
        return None, False
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), False


class Screen:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def decide(self, ext: str, number: str | None, anonymous: bool) -> tuple[str, ...]:
        async with self.db.execute(SETTINGS_SQL, (ext,)) as cur:
            a_on, a_anon, a_treat, e_on, e_anon, e_treat, mailbox = await cur.fetchone()
        treatment = e_treat or a_treat
        rows: list[Any] = []
        if number:
            prefixes = [number[:i] for i in range(2, len(number) + 1)]
            async with self.db.execute(entries_sql(len(prefixes)), (*prefixes, ext)) as cur:
                rows = list(await cur.fetchall())
        matches = [
            (scope, kind, value, prefix)
            for scope, kind, value, prefix in rows
            if (number.startswith(value) if prefix else number == value)  # type: ignore[union-attr]
        ]

        def best(scope: str, kind: str) -> bool:
            return any(m[0] == scope and m[1] == kind for m in matches)

        box = mailbox or f"{ext}@default"
        if best("ext", "allow") or best("account", "allow"):
            return ("ALLOWED", "allowlist", "", box)
        if anonymous and ((e_on and e_anon) or (a_on and a_anon)):
            return ("BLOCKED", "anonymous", treatment, box)
        if e_on and best("ext", "block"):
            return ("BLOCKED", "ext-blocklist", treatment, box)
        if a_on and best("account", "block"):
            return ("BLOCKED", "account-blocklist", treatment, box)
        return ("ALLOWED", "not-listed" if e_on else "blocking-off", "", box)

    async def handle(self, request: fast_agi.Request) -> None:
        h = request.headers
        ext = (h.get("agi_arg_1") or h.get("agi_extension") or "").strip()
        number, anonymous = caller_number(h.get("agi_callerid", ""), h.get("agi_callingpres", ""))
        try:
            result, reason, treatment, box = await self.decide(ext, number, anonymous)
        except Exception:
            logging.exception("lookup failed")
            result, reason, treatment, box = "ALLOWED", "error", "", ""
        await request.send_command(f"SET VARIABLE CALLSCREEN_RESULT {result}")
        await request.send_command(f"SET VARIABLE CALLSCREEN_REASON {reason}")
        if not treatment:
            return
        await request.send_command(f"SET VARIABLE CALLSCREEN_TREATMENT {treatment}")
        if treatment == "busy":
            await request.send_command("EXEC Busy")
        elif treatment == "voicemail":
            await request.send_command(f'EXEC VoiceMail "{box},u"')
            status = await request.send_command("GET VARIABLE VMSTATUS")
            if "FAILED" in str(status.get("result")):
                await request.send_command("EXEC Busy")
        elif treatment == "torture":
            reply = await request.send_command("EXEC Ringing")
            while "error" not in reply:
                reply = await request.send_command('EXEC Wait "10"')


async def serve(db_path: str, host: str, port: int) -> None:
    db = await aiosqlite.connect(db_path)
    app = fast_agi.Application()
    app.add_route("screen", Screen(db).handle)
    server = await asyncio.start_server(app.handler, host, port, backlog=4096)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
    await stop.wait()
    server.close()
    await db.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4574)
    a = ap.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.WARNING)
    import uvloop

    uvloop.run(serve(a.db, a.host, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
