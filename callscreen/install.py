"""First-run setup (``callscreen init``): the config file, free ports, the dialplan routine,
the systemd units. The database and the first admin are made by the CLI through the store and
:func:`callscreen.ops.users.user_add` (one place for those rules).

The CLI checks everything before it calls a writer here (bad input writes nothing); the
writers write only what differs (:func:`write_file`), so running ``init`` twice changes
nothing, and a file that differs from ours is copied aside before it is replaced: an admin's
edits are never lost.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import config

#: Where ``init --systemd`` puts things: the service's state directory, the config file.
SYSTEM_DB = Path("/var/lib/callscreen/callscreen.db")
SYSTEM_CONFIG = config.SYSTEM_CONFIG
user_config_path = config.user_config_path
#: Everything ``--systemd`` writes goes under this root (tests point it elsewhere).
SYSTEM_ROOT = Path("/")
UNITS = ("callscreen.service", "callscreen-web.service")
SERVICE_USER = "callscreen"
#: ProtectHome= and PrivateTmp= hide these from the services: an executable there cannot run.
HIDDEN_FROM_SERVICES = ("/home/", "/root/", "/run/user/", "/tmp/", "/var/tmp/")


def shipped(name: str) -> str:
    """A file shipped in the package's data directory (the dialplan, the units)."""
    return resources.files("callscreen").joinpath("data", name).read_text("utf-8")


# -- ports -------------------------------------------------------------------------------------
def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, preferred: int, taken: frozenset[int] = frozenset()) -> int:
    """``preferred`` if it is free, else the next free one above it (a stable, readable
    choice: 4574 rather than a random high port an admin must look up)."""
    for port in range(preferred, min(preferred + 100, 65536)):
        if port not in taken and port_free(host, port):
            return port
    raise ValueError(f"no free port in {preferred}..{preferred + 99} on {host}")


# -- the config file ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    db: Path
    region: str
    host: str
    port: int
    web_host: str
    web_port: int

    def toml(self) -> str:
        def q(v: str) -> str:
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

        return (
            '# Written by `callscreen init`; every key is in the README\'s "Config file".\n'
            f"db = {q(str(self.db))}\nregion = {q(self.region)}\n\n"
            f"[serve]\nhost = {q(self.host)}\nport = {self.port}\n\n"
            f"[web]\nhost = {q(self.web_host)}\nport = {self.web_port}\n"
        )

    @classmethod
    def from_file(cls, path: Path, defaults: Settings) -> Settings:
        """The settings an existing config file gives (raises config.ConfigFileError)."""
        data = config.load(path)
        serve, web = data["serve"], data["web"]
        return cls(
            db=Path(data.get("db", defaults.db)),
            region=str(data.get("region", defaults.region)).upper(),
            host=serve.get("host", defaults.host),
            port=int(serve.get("port", defaults.port)),
            web_host=web.get("host", defaults.web_host),
            web_port=int(web.get("port", defaults.web_port)),
        )


# -- writing only what differs -----------------------------------------------------------------
def write_file(path: Path, text: str, mode: int = 0o644) -> str:
    """Write ``text`` to ``path``: ``created``, ``unchanged``, or ``updated (old kept as X)``
    when a different file was there (it is renamed to ``NAME.TIMESTAMP.bak`` first)."""
    if path.exists():
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return "unchanged"
        kept = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
        shutil.copy2(path, kept)
        status = f"updated (the old one kept as {kept})"
    else:
        status = "created"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return status


# -- the dialplan ------------------------------------------------------------------------------
def dialplan_snippet(port: int, host: str, installed: Path | None) -> str:
    """What to paste into extensions.conf (and how to get the routine there)."""
    lines = []
    if installed is None:
        lines += [
            "; 1. Put the routine next to extensions.conf:",
            ";      callscreen dialplan > /etc/asterisk/callscreen.conf",
        ]
    where = (installed.parent if installed else Path("/etc/asterisk")) / "extensions.conf"
    lines += [f"; Add to {where}:", "#include callscreen.conf", ""]
    if port != 4573 or host not in ("127.0.0.1", "0.0.0.0", "::"):
        target = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        target = f"[{target}]" if ":" in target else target
        lines += ["[globals]", f"CALLSCREEN_URL=agi://{target}:{port}/screen", ""]
    lines += [
        "[from-trunk]                 ; your inbound context",
        "exten => _X.,1,NoOp(Inbound call to ${EXTEN})",
        " same => n,Gosub(callscreen,s,1(${EXTEN}))",
        " same => n,Dial(PJSIP/${EXTEN},30)",
        "",
        "; then: asterisk -rx 'dialplan reload'",
    ]
    return "\n".join(lines) + "\n"


# -- systemd -----------------------------------------------------------------------------------
def executable() -> Path:
    """The ``callscreen`` script of this installation (next to its Python), for ExecStart."""
    script = Path(sys.executable).parent / "callscreen"
    return script if script.exists() else Path(sys.argv[0]).resolve()


def check_executable(path: Path, interpreter: Path | None = None) -> None:
    """Refuse an installation the sandboxed service could not start (raises ValueError):
    the script, or the Python it runs (a venv links to it: pyenv keeps it in /root), under a
    directory that ProtectHome= or PrivateTmp= hides."""
    interpreter = Path(sys.executable) if interpreter is None else interpreter
    for what, where in (("callscreen", path), ("its Python", interpreter)):
        text = str(where.resolve()) + "/"
        for hidden in HIDDEN_FROM_SERVICES:
            if text.startswith(hidden):
                raise ValueError(
                    f"{what} is under {hidden} ({where.resolve()}), which the service's "
                    "sandbox hides (ProtectHome=, PrivateTmp=): install it in /opt/callscreen "
                    "with the system Python (/usr/bin/python3 -m venv /opt/callscreen)"
                )


def render_unit(name: str, program: Path, config_path: Path) -> str:
    """A shipped unit with ExecStart pointing at this installation and this config file."""
    out = []
    for line in shipped(f"systemd/{name}").splitlines():
        if line.startswith("ExecStart="):
            command = shlex.split(line.removeprefix("ExecStart="))
            command[0], command[2] = str(program), str(config_path)
            line = "ExecStart=" + shlex.join(command)
        out.append(line)
    return "\n".join(out) + "\n"


def exec_start(unit_text: str) -> list[str]:
    """The command line of a unit's ExecStart (what systemd runs)."""
    for line in unit_text.splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.removeprefix("ExecStart="))
    raise ValueError("no ExecStart")


def install_systemd(
    program: Path, config_path: Path, db: Path, root: Path | None = None
) -> list[tuple[str, str]]:
    """Install the units and the system user; hand the state to that user. Returns
    (what, status) lines. ``systemctl daemon-reload`` runs when systemd is running here."""
    root = SYSTEM_ROOT if root is None else root
    done: list[tuple[str, str]] = []
    unit_dir = root / "etc/systemd/system"
    for name in UNITS:
        path = unit_dir / name
        done.append((str(path), write_file(path, render_unit(name, program, config_path))))
    sysusers = root / "etc/sysusers.d/callscreen.conf"
    done.append((str(sysusers), write_file(sysusers, shipped("systemd/callscreen.sysusers"))))
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        raise OSError("systemd-sysusers not found: is this a systemd system?")
    subprocess.run([tool, f"--root={root}", str(sysusers)], check=True, capture_output=True)
    if root == Path("/"):
        _hand_over(db)
        if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
            subprocess.run(["systemctl", "daemon-reload"], check=True)
    return done


def _hand_over(db: Path) -> None:
    """The service user must own the database directory and files (it writes them; the
    admin's root shell still can). SQLite gives a -wal it creates as root the database's
    owner, so owning the database file is what keeps later root commands safe."""
    import pwd

    user = pwd.getpwnam(SERVICE_USER)
    for path in [db.parent, *db.parent.glob(db.name + "*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(db.parent, 0o750)
