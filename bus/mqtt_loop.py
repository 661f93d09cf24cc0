"""Runs a paho MQTT client on the asyncio event loop instead of in paho's own network thread.

paho's "external event loop" interface (`loop_read`, `loop_write`, `loop_misc` and the `on_socket_*`
callbacks, paho-mqtt 2 docs, "External event loop support") lets the event loop that polls devices
and writes the outbox also drive the broker socket. With paho's thread (`loop_start`) every message
crossed threads twice and the two threads fought over the GIL: at a few thousand messages a second
that contention, not the work, set the pace. Here every paho callback runs on the event loop.

Only the blocking part of a connection attempt (TCP connect, TLS handshake) runs in a worker thread,
so an unreachable broker never stalls polling. The driver reconnects with exponential backoff, as
paho's `loop_forever` would, but capped at a few seconds (BrokerSettings.reconnect_max_s): a broker back
after an outage is used again at once, not up to half a minute later; the owner calls `connected()` on a
successful CONNACK to reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt

_LOG = logging.getLogger(__name__)

MISC_EVERY_S = 1.0  # keepalive PINGREQ and its timeout are checked this often (paho's own loop: 1 s)


class MqttLoopDriver:
    """Drives one paho client (already `connect_async`-ed) from the running event loop until `stop()`."""

    def __init__(
        self, client: mqtt.Client, name: str, *, backoff_first_s: float = 0.5, backoff_cap_s: float = 3.0
    ) -> None:
        self.client = client
        self.name = name
        self.backoff_first_s = backoff_first_s
        self.backoff_cap_s = backoff_cap_s
        self._delay = backoff_first_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._fd: int | None = None  # the socket registered for reading (ints: paho closes the object)
        self._writing = False
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._stopping = False
        self._connecting = False
        self._logged_failure = False
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def start(self) -> None:
        """Connect in the background and keep reconnecting until `stop()`."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._run(), name=f"mqtt-{self.name}")
        self._misc = self._loop.create_task(self._keepalive(), name=f"mqtt-keepalive-{self.name}")

    def connected(self) -> None:
        """The broker accepted our CONNECT: the next outage starts its backoff from the beginning."""
        self._delay = self.backoff_first_s
        self._logged_failure = False

    async def stop(self, timeout_s: float = 1.0) -> None:
        """Send DISCONNECT (waiting up to `timeout_s` for it to go out), then stop reconnecting."""
        self._stopping = True
        if self._task is not None and self._connecting:
            # A connect is under way in the worker thread: let it finish (paho's connect timeout bounds
            # it), so its socket is registered and closed below instead of left open behind us.
            await asyncio.wait({self._task}, timeout=self.client.connect_timeout + 1.0)
        if self._fd is not None:
            self.client.disconnect()  # queued; paho closes the socket once it is written
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._closed.wait()
        for task in (self._task, self._misc):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._unregister()

    # --- connection attempts ------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._closed.clear()
            self._connecting = True
            try:
                # Blocking connect and TLS handshake, off the loop; paho then queues CONNECT.
                await asyncio.to_thread(self.client.reconnect)
            except Exception as exc:  # refused, unreachable, TLS failure, name lookup
                self._connecting = False
                self._log_failure(exc)
                await self._backoff()
                continue
            self._connecting = False
            sock = self.client.socket()
            if sock is None:
                await self._backoff()
                continue
            self._register(sock)
            if self._stopping:
                return  # stop() disconnects it
            await self._closed.wait()
            if not self._stopping:
                await self._backoff()

    def _log_failure(self, exc: Exception) -> None:
        where = f"{self.client.host}:{self.client.port}"
        if self._logged_failure:
            _LOG.debug("MQTT broker %s: connect failed again: %s", where, exc)
            return
        self._logged_failure = True
        _LOG.warning(
            "MQTT broker %s: cannot connect (%s); retrying every %g-%g s",
            where,
            exc,
            self.backoff_first_s,
            self.backoff_cap_s,
        )

    async def _backoff(self) -> None:
        delay, self._delay = self._delay, min(self._delay * 2, self.backoff_cap_s)
        await asyncio.sleep(delay)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(MISC_EVERY_S)
            if self._fd is not None:
                self.client.loop_misc()

    # --- socket registration (always on the loop thread) --------------------------------------------
    def _register(self, sock: Any) -> None:
        assert self._loop is not None
        self._fd = sock.fileno()
        self._loop.add_reader(self._fd, self._readable)
        if self.client.want_write():
            self._add_writer()
        # Bytes may have arrived with the CONNACK before the reader existed; read what is there.
        self._loop.call_soon(self._readable)

    def _unregister(self) -> None:
        if self._loop is None or self._fd is None:
            return
        self._loop.remove_reader(self._fd)
        self._remove_writer()
        self._fd = None

    def _add_writer(self) -> None:
        if self._loop is not None and self._fd is not None and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _remove_writer(self) -> None:
        if self._loop is not None and self._fd is not None and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        if self._fd is None:
            return
        self.client.loop_read()
        # A TLS socket can hold decrypted bytes that epoll does not report (paho issue #131).
        sock = self.client.socket()
        pending = getattr(sock, "pending", None)
        if pending is not None and self._fd == sock.fileno() and pending() > 0:  # type: ignore[union-attr]
            assert self._loop is not None
            self._loop.call_soon(self._readable)

    def _writable(self) -> None:
        if self._fd is not None:
            self.client.loop_write()

    # --- paho socket callbacks: on the loop, or in the worker thread during reconnect() ---------------
    # (No on_socket_open: _run registers the socket once reconnect() has returned.)
    def _on_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if not self._on_loop():
            return  # reconnect() closing the previous socket: _run already unregistered it
        self._unregister()
        self._closed.set()

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._on_loop():
            self._add_writer()
        # From the worker thread (CONNECT queued in reconnect()), _register adds the writer.

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._on_loop():
            self._remove_writer()


__all__ = ["MqttLoopDriver"]
