"""A pysnmp engine listening on a UDP port: shared by the simulator agent and the trap receiver."""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine


def listening_engine(host: str, port: int) -> tuple[engine.SnmpEngine, int, Awaitable[Any]]:
    """A new SnmpEngine serving UDP on host:port.

    Returns the engine, the real port (when 0 was asked) and an awaitable that completes once the
    endpoint is registered with the running event loop.
    """
    eng = engine.SnmpEngine()
    # Bind the socket ourselves: pysnmp's own server mode does not report the port it got for 0.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    bound = int(sock.getsockname()[1])
    transport = udp.UdpTransport().open_server_mode(sock=sock)
    config.add_transport(eng, udp.DOMAIN_NAME, transport)
    return eng, bound, transport._lport
