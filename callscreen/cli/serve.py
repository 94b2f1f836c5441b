"""``serve``: the FastAGI server, configured by flags, environment, config file, defaults."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .. import app, logfmt
from ..db.errors import StoreError
from ..db.recorder import DEFAULT_MAX_QUEUED
from ..db.retention import DEFAULT_INTERVAL
from ..db.url import display
from ..timeutil import parse_retention
from .base import CONFIG_DB, Ctx, bad, cli, emit_json, table

_SOURCES = {
    ParameterSource.COMMANDLINE: "flag",
    ParameterSource.ENVIRONMENT: "env",
    ParameterSource.DEFAULT_MAP: "config file",
    ParameterSource.DEFAULT: "default",
}


def _source(ctx: click.Context, name: str) -> str:
    src = ctx.get_parameter_source(name)
    return _SOURCES.get(src, "default") if src is not None else "default"


@cli.command()
@click.option(
    "--host",
    envvar="CALLSCREEN_HOST",
    default=app.DEFAULT_HOST,
    show_default=True,
    help="Address to listen on (env CALLSCREEN_HOST).",
)
@click.option(
    "--port",
    envvar="CALLSCREEN_PORT",
    default=app.DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (env CALLSCREEN_PORT).",
)
@click.option(
    "--allow-from",
    envvar="CALLSCREEN_ALLOW_FROM",
    multiple=True,
    metavar="CIDR",
    help="Asterisk addresses allowed to connect; required when --host is not loopback. "
    "Repeatable (env CALLSCREEN_ALLOW_FROM, space-separated).",
)
@click.option(
    "--torture-max",
    envvar="CALLSCREEN_TORTURE_MAX",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds of endless ringing before a tortured call is hung up.",
)
@click.option(
    "--challenge-wait",
    envvar="CALLSCREEN_CHALLENGE_WAIT",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=1, max=30),
    help="Seconds a challenged caller has to press the digit, after hearing it (two tries).",
)
@click.option(
    "--header-timeout",
    envvar="CALLSCREEN_HEADER_TIMEOUT",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a connection has to send its AGI environment.",
)
@click.option(
    "--max-connections",
    envvar="CALLSCREEN_MAX_CONNECTIONS",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections beyond this are closed at once (the call fails open).",
)
@click.option(
    "--log-level",
    envvar="CALLSCREEN_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="info (the default) logs one line per call, written in batches every 0.2 s and at "
    "shutdown (a few us of CPU a call); warning leaves them out. The database call log "
    "records every call either way.",
)
@click.option(
    "--log-format",
    envvar="CALLSCREEN_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(logfmt.FORMATS),
    help="json: one JSON object per line, with the call's fields (for log shippers).",
)
@click.option(
    "--metrics-port",
    envvar="CALLSCREEN_METRICS_PORT",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus /metrics and /health on this port (off unless given).",
)
@click.option(
    "--metrics-host",
    envvar="CALLSCREEN_METRICS_HOST",
    default=app.DEFAULT_HOST,
    show_default=True,
    help="Address for --metrics-port.",
)
@click.option(
    "--call-log-queue",
    envvar="CALLSCREEN_CALL_LOG_QUEUE",
    default=DEFAULT_MAX_QUEUED,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="ROWS",
    help="Call-log rows kept in memory while the database refuses writes (about 490 bytes "
    "each); past it the newest rows are dropped and counted.",
)
@click.option(
    "--flush-timeout",
    envvar="CALLSCREEN_FLUSH_TIMEOUT",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds SIGTERM spends writing the queued call log; rows still unwritten are "
    "reported lost and the exit status is 3.",
)
@click.option(
    "--log-retention",
    envvar="CALLSCREEN_LOG_RETENTION",
    default="90d",
    show_default=True,
    metavar="DURATION",
    help="Delete call-log rows older than this (e.g. 30d, 52w), in small batches in the "
    "background, soon after start and then hourly; 0 keeps everything.",
)
@click.option(
    "--log-prune-interval",
    envvar="CALLSCREEN_LOG_PRUNE_INTERVAL",
    default=DEFAULT_INTERVAL,
    type=click.FloatRange(min=0.01),
    hidden=True,  # for tests: how often the pruner runs (seconds)
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Check the settings, print each with where it came from, and exit.",
)
@click.option("--json", "as_json", is_flag=True, help="With --check-config: print JSON.")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    allow_from: tuple[str, ...],
    torture_max: float,
    challenge_wait: float,
    header_timeout: float,
    max_connections: int,
    log_level: str,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    call_log_queue: int,
    flush_timeout: float,
    log_retention: str,
    log_prune_interval: float,
    check_config: bool,
    as_json: bool,
) -> None:
    """Run the FastAGI screening server until SIGTERM/SIGINT."""
    from ..fastagi import parse_networks

    obj: Ctx = ctx.obj
    try:
        networks = parse_networks(allow_from)
    except ValueError as exc:
        bad(f"--allow-from: {exc}")
    try:
        retention = parse_retention(str(log_retention))
    except ValueError as exc:
        bad(f"--log-retention: {exc}, or 0 to keep everything")
    config = app.Config(
        db=obj.database,  # a SQLite file, or PostgreSQL (several servers on one database)
        host=host,
        port=port,
        region=obj.region,
        torture_max=torture_max,
        challenge_wait=challenge_wait,
        header_timeout=header_timeout,
        max_connections=max_connections,
        allow_from=networks,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        call_log_queue=call_log_queue,
        flush_timeout=flush_timeout,
        log_retention=retention,
        log_prune_interval=log_prune_interval,
    )
    try:
        config.check()
    except app.ConfigError as exc:
        bad(str(exc))
    if check_config:
        _print_config(ctx, as_json)
        return
    logfmt.setup(log_level, log_format)
    try:
        status = app.run(config)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    _exit(status)


def _exit(status: int) -> None:
    """End the process. A database thread still stuck on a stalled disk (it is not a daemon
    thread) would keep the interpreter from exiting: then leave without waiting for it."""
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    stuck = [t for t in stuck if not t.daemon]
    if stuck:
        logging.getLogger("callscreen").error(
            "exiting with %d database thread(s) still blocked", len(stuck)
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status:
        raise click.exceptions.Exit(status)


def _print_config(ctx: click.Context, as_json: bool) -> None:
    parent = ctx.parent
    assert parent is not None
    rows: list[tuple[str, Any, str]] = []
    for name in ("db", "region"):
        value = parent.params[name]
        source = _source(parent, name)
        if name == "db" and source == "default" and CONFIG_DB in parent.meta:
            source = "config file"
        if name == "db":
            value = display(ctx.obj.database)  # a URL's password is never printed
        rows.append((name, str(value) if isinstance(value, Path) else value, source))
    for name, value in ctx.params.items():
        if name in ("check_config", "as_json"):
            continue
        rows.append((name, list(value) if isinstance(value, tuple) else value, _source(ctx, name)))
    cfg = ctx.obj.config_path
    if as_json:
        emit_json(
            {
                "config_file": str(cfg) if cfg else None,
                "settings": {n: {"value": v, "source": s} for n, v, s in rows},
            }
        )
        return
    table(
        f"settings (config file: {cfg or 'none'})",
        ["setting", "value", "from"],
        [[n, "" if v is None else str(v), s] for n, v, s in rows],
    )
