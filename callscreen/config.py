"""The config file (TOML): defaults for the global options, every ``serve`` option and every
``web`` option.

```toml
db = "/var/lib/callscreen/callscreen.db"
region = "GB"
account = "default"   # the account the admin commands work on (callscreen --account)

[serve]
host = "0.0.0.0"
allow_from = ["10.0.0.5"]
metrics_port = 9573
log_format = "json"

[web]
host = "127.0.0.1"
port = 8080
behind_https = true
forwarded_allow_ips = ["127.0.0.1"]
```

Precedence: a flag beats its environment variable, which beats the file, which beats the
built-in default. The CLI feeds the file to click as ``default_map`` (click's own rule is the
same order), so this module only reads and checks the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

ENV = "CALLSCREEN_CONFIG"
#: Where ``init --systemd`` writes the service's config file.
SYSTEM_CONFIG = Path("/etc/callscreen/callscreen.toml")


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/callscreen/callscreen.toml`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "callscreen" / "callscreen.toml"


def discover() -> str | None:
    """The config file when none is named: the user's, else the system's (``init`` writes one
    of them), else none. Without this, an admin who set up the service with ``init --systemd``
    and forgot ``CALLSCREEN_CONFIG`` would change a database in their home that no server
    reads."""
    for path in (user_config_path(), SYSTEM_CONFIG):
        if path.is_file():
            return str(path)
    return None


#: Keys at the top level: the global options.
TOP_KEYS: dict[str, type | tuple[type, ...]] = {"db": str, "region": str, "account": str}
#: Keys of the [serve] table: the options of ``callscreen serve``.
SERVE_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "allow_from": (list, str),
    "torture_max": (int, float),
    "challenge_wait": (int, float),
    "header_timeout": (int, float),
    "max_connections": int,
    "log_level": str,
    "log_format": str,
    "metrics_port": int,
    "metrics_host": str,
    "call_log_queue": int,
    "flush_timeout": (int, float),
    "log_retention": (str, int),
}
#: Keys of the [web] table: the options of ``callscreen web``.
WEB_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "behind_https": bool,
    "forwarded_allow_ips": (list, str),
    "log_level": str,
    "log_format": str,
}


class ConfigFileError(ValueError):
    """The file cannot be read, is not TOML, or holds a key or value we do not know."""


def _check(path: Path, table: dict[str, Any], keys: dict[str, Any], prefix: str) -> None:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise ConfigFileError(f"{path}: unknown key {name!r} (known: {known})")
        want = keys[key]
        # bool is an int to Python, never to us: ``port = true`` is a mistake.
        if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
            kinds = want if isinstance(want, tuple) else (want,)
            names = " or ".join("list" if k is list else k.__name__ for k in kinds)
            raise ConfigFileError(f"{path}: {name} must be a {names}, not {value!r}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigFileError(f"{path}: {name} must be a list of strings")


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a config file; raises :class:`ConfigFileError` with a one-line reason."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    serve = data.pop("serve", {})
    if not isinstance(serve, dict):
        raise ConfigFileError(f"{path}: [serve] must be a table")
    web = data.pop("web", {})
    if not isinstance(web, dict):
        raise ConfigFileError(f"{path}: [web] must be a table")
    _check(path, data, TOP_KEYS, "")
    _check(path, serve, SERVE_KEYS, "serve.")
    _check(path, web, WEB_KEYS, "web.")
    if "db" in data:
        data["db"] = os.path.expanduser(data["db"])
    if isinstance(serve.get("allow_from"), str):
        serve["allow_from"] = serve["allow_from"].split()
    if isinstance(web.get("forwarded_allow_ips"), str):
        web["forwarded_allow_ips"] = web["forwarded_allow_ips"].split()
    return {**data, "serve": serve, "web": web}


def default_map(config: dict[str, Any]) -> dict[str, Any]:
    """click's ``default_map`` for the root command: global options, ``serve``, ``doctor``,
    ``web``."""
    # Not ``db``: click looks a subcommand's defaults up by its name in the same map, and
    # ``callscreen db`` (backup, restore) is a subcommand. The root reads it (CONFIG_DB). The
    # same for ``account`` (``callscreen account ...``; CONFIG_ACCOUNT).
    skip = ("serve", "web", "db", "account")
    out: dict[str, Any] = {k: v for k, v in config.items() if k not in skip}
    out["web"] = dict(config.get("web", {}))
    serve = dict(config.get("serve", {}))
    out["serve"] = serve
    # doctor checks the address serve would use.
    out["doctor"] = {k: serve[k] for k in ("host", "port") if k in serve}
    return out
