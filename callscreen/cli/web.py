"""``web``: the portal and the HTTP API, its own process; flags > env > [web] > default."""

from __future__ import annotations

import click

from .. import logfmt
from ..db.backup import ServerLock
from ..db.errors import StoreError
from ..db.url import is_postgres
from .base import Ctx, cli

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@cli.command()
@click.option(
    "--host",
    envvar="CALLSCREEN_WEB_HOST",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on (env CALLSCREEN_WEB_HOST). Beyond loopback, put it behind TLS.",
)
@click.option(
    "--port",
    envvar="CALLSCREEN_WEB_PORT",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (env CALLSCREEN_WEB_PORT).",
)
@click.option(
    "--behind-https",
    envvar="CALLSCREEN_WEB_BEHIND_HTTPS",
    is_flag=True,
    help="A reverse proxy serves the site over HTTPS: Secure cookies, HSTS "
    "(env CALLSCREEN_WEB_BEHIND_HTTPS).",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="CALLSCREEN_WEB_FORWARDED_ALLOW_IPS",
    multiple=True,
    metavar="ADDR",
    help="Proxy addresses whose X-Forwarded-For/-Proto are believed (with --behind-https: "
    "127.0.0.1 and ::1 unless given; otherwise none). Repeatable "
    "(env CALLSCREEN_WEB_FORWARDED_ALLOW_IPS, space-separated).",
)
@click.option(
    "--log-level",
    envvar="CALLSCREEN_WEB_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    envvar="CALLSCREEN_WEB_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(logfmt.FORMATS),
)
@click.pass_obj
def web(
    obj: Ctx,
    host: str,
    port: int,
    behind_https: bool,
    forwarded_allow_ips: tuple[str, ...],
    log_level: str,
    log_format: str,
) -> None:
    """Run the portal (web pages at /) and the HTTP API (/api/v1/) until SIGTERM/SIGINT."""
    # Imported here: the other commands (and `serve`) never load Starlette and uvicorn.
    from ..web.app import WebConfig
    from ..web.server import TLS_ADVICE, is_loopback, run

    config = WebConfig(
        db=obj.database,
        host=host,
        port=port,
        region=obj.region,
        behind_https=behind_https,
        forwarded_allow_ips=tuple(a for v in forwarded_allow_ips for a in v.split()),
    )
    logfmt.setup(log_level, log_format)
    if not is_loopback(host):
        click.echo(TLS_ADVICE.format(host=host), err=True)
    # Held while the web tier runs: `callscreen db restore` refuses meanwhile (db/backup.py).
    # PostgreSQL has no file to restore over: no lock (pg_dump/pg_restore are its tools).
    lock = None if is_postgres(obj.database) else ServerLock(obj.db)
    try:
        if lock is not None:
            lock.acquire()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        ok = run(config)
    finally:
        if lock is not None:
            lock.release()
    if not ok:
        raise click.ClickException(f"web did not start on {host}:{port} (see the log above)")
