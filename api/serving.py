"""Serving the app with uvicorn as one of roomguard's processes: the listening socket bound first (a port
already taken is a clear error naming the address and the setting), a status snapshot every few
seconds for `roomguard status` and `roomguard doctor`, and a stop through the shared stop event
(bus.process.run_jobs handles the signals, not uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from bus.status_file import process_identity, write_snapshot
from siteconfig.api_config import ApiConfig

SNAPSHOT_EVERY_S = 5.0
SNAPSHOT_NAME = "api"


class PortTaken(Exception):
    """The API's address is in use (or cannot be bound); the message says which setting to change."""


def listen_url(settings: ApiConfig, host: str, port: int) -> str:
    """The URL the API answers at (IPv6 hosts in brackets)."""
    scheme = "https" if settings.tls_cert is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (as uvicorn binds: SO_REUSEADDR, so a socket in TIME_WAIT
    after a restart is no obstacle), or PortTaken naming the address and api.port / api.host."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortTaken(f"api: cannot resolve api.host {host!r} 無法解析位址: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(
                f"api: {host}:{port} is already in use 連接埠已被占用 — another program (or another "
                f"roomguard api) listens there: stop it (ss -ltnp 'sport = :{port}' shows which), or set "
                "api.port (and api.host) in the site file to a free one"
            ) from None
        if exc.errno == errno.EACCES:
            raise PortTaken(
                f"api: not allowed to listen on {host}:{port} 無權限使用此連接埠 (a port below 1024 needs "
                "a capability the API does not get): set api.port to 1024 or above"
            ) from None
        raise PortTaken(
            f"api: cannot listen on {host}:{port} 無法監聽 ({exc.strerror}): check api.host in the site file"
        ) from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: the process's stop event ends it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def uvicorn_config(app: FastAPI, settings: ApiConfig) -> uvicorn.Config:
    """How the app is served: one worker, TLS when configured, no proxy headers trusted."""
    return uvicorn.Config(
        app,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        # The API listens directly: no proxy's X-Forwarded-For is trusted for the audit's client address.
        proxy_headers=False,
        server_header=False,
        log_config=None,  # our logging (bus.process.start_logging), not uvicorn's own
        lifespan="on",
    )


async def serve_api(
    app: FastAPI, settings: ApiConfig, sock: socket.socket, state_dir: Path, stop: asyncio.Event
) -> None:
    """Serve `app` on the bound `sock` until `stop`, writing the `api` status snapshot meanwhile."""
    host, port = sock.getsockname()[:2]
    url = listen_url(settings, host, port)
    server = _Server(uvicorn_config(app, settings))
    serving = asyncio.create_task(server.serve(sockets=[sock]))

    def snapshot(running: bool) -> dict[str, Any]:
        return {"listen": url, "tls": settings.tls_cert is not None, "running": running, **process_identity()}

    try:
        while not serving.done():
            await asyncio.to_thread(write_snapshot, state_dir, SNAPSHOT_NAME, snapshot(True))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SNAPSHOT_EVERY_S):
                    await stop.wait()
            if stop.is_set():
                break
    finally:
        server.should_exit = True
        await serving
        await asyncio.to_thread(write_snapshot, state_dir, SNAPSHOT_NAME, snapshot(False))
