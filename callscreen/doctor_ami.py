"""``doctor --ami``: ask a live Asterisk, over AMI, whether the modules the routine needs are
loaded.

A module that is not loaded fails quietly until a call needs it: without ``res_agi`` every
call goes through unscreened; without ``app_stack`` the ``Gosub`` into the routine fails and
the call is hung up; without ``app_voicemail`` the voicemail treatment cannot run. Reading
``modules.conf`` would not tell: ``autoload``, ``noload`` and a failed load all look alike
there. AMI's ``ModuleCheck`` asks the running Asterisk itself (panoramisk, the field's AMI
client). The AMI secret comes from the environment, never from the command line (``ps``
shows arguments to every user).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .doctor import Check

#: What the routine needs to screen a call (and to let it through to Dial when it cannot).
REQUIRED = (
    ("pbx_config", "the dialplan itself (extensions.conf)"),
    ("res_agi", "AGI(): without it every call goes through unscreened"),
    ("app_stack", "Gosub/Return into the routine: without it calls are hung up"),
    ("app_dial", "Dial: where an allowed call goes"),
)
#: What some settings need: a missing one is reported, with what stops working.
OPTIONAL = (
    ("app_voicemail", "the voicemail treatment (a blocked caller gets busy instead)"),
    ("app_playback", "*32's spoken confirmation"),
    (
        "format_gsm",
        "the challenge's prompts (the stock sounds are GSM files: the call goes through)",
    ),
)


@dataclass(frozen=True, slots=True)
class AmiTarget:
    host: str
    port: int
    username: str
    secret: str


async def loaded_modules(target: AmiTarget, names: list[str], timeout: float) -> dict[str, bool]:
    """{module: loaded?} from one AMI session. Raises OSError / TimeoutError / PermissionError
    (login refused)."""
    from panoramisk import Manager  # only doctor --ami loads it

    manager = Manager(
        loop=asyncio.get_running_loop(),
        host=target.host,
        port=target.port,
        username=target.username,
        secret=target.secret,
        ping_delay=3600,
        reconnect_timeout=timeout,
    )
    try:
        await asyncio.wait_for(manager.connect(), timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not manager.authenticated:
            if loop.time() > deadline:
                raise PermissionError("AMI login refused (check the user, secret and permit=)")
            await asyncio.sleep(0.05)
        out = {}
        for name in names:
            reply = await asyncio.wait_for(
                manager.send_action({"Action": "ModuleCheck", "Module": name}, as_list=False),
                timeout,
            )
            out[name] = str(reply.get("Response", "")).lower() == "success"
        return out
    finally:
        manager.close()


def check_modules(target: AmiTarget, timeout: float = 5.0) -> list[Check]:
    """One check per module (required ones fail the doctor run; optional ones are reported
    as failed with what stops working), or one failed check when AMI cannot be asked."""
    where = f"{target.host}:{target.port}"
    names = [m for m, _ in REQUIRED + OPTIONAL]
    try:
        loaded = asyncio.run(loaded_modules(target, names, timeout))
    except PermissionError as exc:
        return [Check(f"asterisk AMI {where}", False, str(exc), "manager.conf: the AMI user")]
    except (OSError, TimeoutError) as exc:
        return [
            Check(
                f"asterisk AMI {where}",
                False,
                f"cannot ask Asterisk: {exc or type(exc).__name__}",
                "is AMI enabled (manager.conf [general] enabled=yes, port) and reachable?",
            )
        ]
    checks = []
    for name, why in REQUIRED + OPTIONAL:
        ok = loaded[name]
        detail = "loaded" if ok else f"NOT loaded: needed for {why}"
        checks.append(
            Check(f"asterisk module {name}", ok, detail, f"modules.conf: load => {name}.so")
        )
    return checks
