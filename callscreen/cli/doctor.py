"""``doctor`` (check a deployment) and ``dialplan`` (print the shipped routine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .. import app, doctor, doctor_ami, inert
from ..fastagi import parse_networks
from ..timeutil import parse_retention
from .base import Ctx, bad, cli, emit_json


def _hostport(text: str, option: str = "--probe") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        bad(f"{option}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _config_check(ctx: click.Context, host: str, port: int) -> doctor.Check:
    obj: Ctx = ctx.obj
    root = ctx.find_root()
    serve: dict[str, Any] = (root.default_map or {}).get("serve", {})
    env = os.environ.get("CALLSCREEN_ALLOW_FROM")
    allow = env.split() if env else list(serve.get("allow_from", []))
    source = f"config file {obj.config_path}" if obj.config_path else "no config file"
    retention = os.environ.get("CALLSCREEN_LOG_RETENTION") or str(serve.get("log_retention", "90d"))
    try:
        app.Config(db=obj.db, host=host, port=port, allow_from=parse_networks(allow)).check()
    except (ValueError, app.ConfigError) as exc:
        return doctor.Check("config", False, f"{source}: {exc}", "fix serve.host / allow_from")
    try:
        parse_retention(retention)  # serve would refuse to start
    except ValueError as exc:
        return doctor.Check(
            "config", False, f"{source}: log_retention: {exc}", "e.g. 90d, or 0 to keep all"
        )
    return doctor.Check(
        "config",
        True,
        f"{source}; serve listens on {host}:{port}, region {obj.region}, database {obj.db}",
    )


@cli.command(name="doctor")
@click.option(
    "--dialplan",
    "dialplan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your dialplan file (e.g. /etc/asterisk/extensions.conf): the routine must match.",
)
@click.option(
    "--voicemail-conf",
    type=click.Path(dir_okay=False, path_type=Path),
    help="voicemail.conf: every extension sending callers to voicemail needs its mailbox.",
)
@click.option("--probe", metavar="HOST:PORT", help="Place a test call on a running server.")
@click.option(
    "--health",
    metavar="HOST:PORT",
    help="Ask a running server's /health (serve --metrics-port): ok, or degraded while the "
    "call log cannot be written. Default: the config's serve.metrics_port, if set.",
)
@click.option(
    "--ami",
    metavar="HOST:PORT",
    help="Ask the live Asterisk over AMI whether the modules the routine needs are loaded "
    "(user from --ami-user, secret from env CALLSCREEN_AMI_SECRET).",
)
@click.option(
    "--ami-user",
    envvar="CALLSCREEN_AMI_USER",
    default="callscreen",
    show_default=True,
    help="The AMI user for --ami (env CALLSCREEN_AMI_USER; manager.conf, read permission).",
)
@click.option(
    "--host",
    envvar="CALLSCREEN_HOST",
    default=app.DEFAULT_HOST,
    show_default=True,
    help="The address serve uses (env CALLSCREEN_HOST, config serve.host).",
)
@click.option(
    "--port",
    envvar="CALLSCREEN_PORT",
    default=app.DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="The port serve uses (env CALLSCREEN_PORT, config serve.port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor_(
    ctx: click.Context,
    dialplan_path: Path | None,
    voicemail_conf: Path | None,
    probe: str | None,
    health: str | None,
    ami: str | None,
    ami_user: str,
    host: str,
    port: int,
    as_json: bool,
) -> None:
    """Check the database, the disk, the config, the port, the dialplan routine, the voicemail
    boxes, a running server (--probe: a test call; --health: its call log) and the live
    Asterisk's modules (--ami).
    Prints ok/FAIL with a fix for each; exits 1 on a failure."""
    obj: Ctx = ctx.obj
    target = _hostport(probe) if probe else None
    ami_target = None
    if ami is not None:
        host_, port_ = _hostport(ami, "--ami")
        secret = os.environ.get("CALLSCREEN_AMI_SECRET", "")
        if not secret:
            bad("--ami: set the AMI secret in the environment variable CALLSCREEN_AMI_SECRET")
        ami_target = doctor_ami.AmiTarget(host_, port_, ami_user, secret)
    checks = [_config_check(ctx, host, port), *doctor.check_database(obj.db)]
    checks.append(doctor.check_disk(obj.db))
    checks.append(doctor.check_port(host, port))
    if dialplan_path is not None:
        checks += doctor.check_dialplan(dialplan_path)
    if voicemail_conf is not None:
        if obj.db.exists():
            try:
                boxes = doctor.voicemail_boxes(obj.db, obj.account)
            except Exception as exc:  # a broken database is reported above
                checks.append(doctor.Check("voicemail boxes", False, f"database: {exc}"))
            else:
                checks.append(doctor.check_voicemail(voicemail_conf, boxes))
        else:
            checks.append(doctor.check_voicemail(voicemail_conf, {}))
    if target is not None:
        checks.append(doctor.probe(*target))
    if health is None:
        serve: dict[str, Any] = (ctx.find_root().default_map or {}).get("serve", {})
        if serve.get("metrics_port"):
            health = f"{serve.get('metrics_host', app.DEFAULT_HOST)}:{serve['metrics_port']}"
    if health is not None:
        checks.append(doctor.check_health(*_hostport(health, "--health")))
    if ami_target is not None:
        checks += doctor_ami.check_modules(ami_target)
    failed = [c for c in checks if not c.ok]
    if as_json:
        emit_json({"ok": not failed, "checks": [c.as_dict() for c in checks]})
    else:
        for c in checks:
            mark = click.style("ok  ", fg="green") if c.ok else click.style("FAIL", fg="red")
            # Details quote files, configs and a server's reply: shown inertly.
            click.echo(f"{mark}  {inert.text(c.name)}: {inert.text(c.detail)}")
            if c.hint and not c.ok:
                click.echo(f"      fix: {inert.text(c.hint)}")
        click.echo(f"{len(checks)} checks, {len(failed)} failed")
    if failed:
        ctx.exit(1)


@cli.command(name="dialplan")
def dialplan() -> None:
    """Print the dialplan routine of this version (callscreen.conf), to install or compare."""
    click.echo(doctor.shipped_dialplan(), nl=False)
