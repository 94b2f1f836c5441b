"""uvicorn, configured for us: no access log of its own, no ``Server`` header, proxy headers
believed only from the proxies named, and our own "web listening on" line (the real port,
also when 0 picked a free one)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import types

import uvicorn

from .app import WebConfig, create_app, is_loopback

log = logging.getLogger("callscreen.web")

TLS_ADVICE = (
    "callscreen web speaks plain HTTP: on {host} passwords, session cookies and API tokens "
    "would cross the network readable by anyone on the path. Put it behind a reverse proxy that "
    "terminates TLS (nginx or Caddy; the README's 'Web and API' section has both), bind this "
    "process to 127.0.0.1 or a private address the proxy reaches, and pass --behind-https so "
    "cookies are Secure and the proxy's X-Forwarded-For is believed (from 127.0.0.1 unless "
    "--forwarded-allow-ips names the proxy), so client addresses, used for sign-in throttling "
    "and the audit log, are the real ones."
)


class Server(uvicorn.Server):
    """uvicorn's server, saying where it listens once it does."""

    def __init__(self, config: uvicorn.Config, db: object) -> None:
        super().__init__(config)
        self.db = db

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        """SIGTERM/SIGINT: stop and exit 0, as ``serve`` does (uvicorn would re-raise the
        signal after shutting down, and a service manager would see the process killed)."""
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            for host, port in addresses(self):
                shown = f"[{host}]" if ":" in host else host
                log.info("web listening on http://%s:%d (database %s)", shown, port, self.db)


def make_server(config: WebConfig) -> Server:
    trusted = list(config.forwarded_allow_ips)
    if config.behind_https and not trusted:
        # Behind a proxy every client would otherwise be the proxy's address: one failed
        # sign-in count for everyone, which a guesser could use to lock all users out. The
        # usual proxy runs on this host.
        trusted = ["127.0.0.1", "::1"]
    uv = uvicorn.Config(
        create_app(config),
        host=config.host,
        port=config.port,
        log_config=None,  # our handlers (logfmt), not uvicorn's
        access_log=False,
        server_header=False,
        # Off unless behind a proxy: uvicorn would otherwise believe X-Forwarded-For from
        # 127.0.0.1, and any local process could pick the address that throttling counts.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        lifespan="on",
        timeout_keep_alive=5,
        limit_concurrency=1000,
    )
    return Server(uv, config.db)


def addresses(server: uvicorn.Server) -> list[tuple[str, int]]:
    out = []
    for srv in getattr(server, "servers", []):
        for sock in srv.sockets:
            host, port = sock.getsockname()[:2]
            out.append((str(host), int(port)))
    return out


async def serve(config: WebConfig) -> bool:
    """Run until SIGTERM/SIGINT (uvicorn's handlers). False if it never started (the port is
    taken, the database cannot be opened: uvicorn has logged why)."""
    server = make_server(config)
    await server.serve()
    return bool(server.started)


def run(config: WebConfig) -> bool:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))


__all__ = ["TLS_ADVICE", "addresses", "is_loopback", "make_server", "run", "serve"]
