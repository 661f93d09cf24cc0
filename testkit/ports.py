"""Loopback ports for test servers, chosen so nothing else takes them before the server binds.

A port the kernel hands out for `bind(0)` lies in the ephemeral range
(`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 on Debian), the same range every outgoing
connection draws its source port from. A test that picks a port at collection time and starts its
server minutes later can find it taken by some client's connection (seen in CI: "address already in
use" on 46847). Ports here come from below that range, are free for TCP and UDP when handed out, and
are never handed out twice by one process.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 20000
_HANDED_OUT: set[int] = set()
# Each process starts at its own place, so two suites side by side rarely probe the same ports.
_RANDOM = random.Random(os.getpid())


def _ephemeral_low() -> int:
    """The lowest port the kernel uses for outgoing connections (32768 when unreadable)."""
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_now(port: int) -> bool:
    """True when nothing holds `port` on 127.0.0.1, for TCP or UDP."""
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_port() -> int:
    """A loopback port free for TCP and UDP, outside the ephemeral range, new to this process."""
    high = _ephemeral_low() - 1
    low = _LOWEST if high - _LOWEST > 2000 else 1024
    for _ in range(10_000):
        port = _RANDOM.randint(low, high)
        if port not in _HANDED_OUT and _free_now(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free loopback port between {low} and {high}")
