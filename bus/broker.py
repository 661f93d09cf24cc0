"""Broker connection settings from the site config, the paho client they make, and the protocol choice."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from bus.mqtt_loop import MqttLoopDriver
from siteconfig.config import MqttRole, SiteConfig

_LOG = logging.getLogger(__name__)

Protocol = Literal["5", "3.1.1"]

# CONNACK "Unsupported Protocol Version" (MQTT 5 reason 0x84); paho reports a 3.1.1 CONNACK return code 1
# ("unacceptable protocol version") under the same name, and so does a 3.1.1-only broker's answer to an
# MQTT 5 CONNECT (paho decodes its result byte 1 that way).
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CONNACK_V311_REFUSED_PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how to connect; the password is resolved by the caller and never logged."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    keepalive_s: int = 30
    will_topic: str | None = None
    will_payload: bytes = b""
    tls: bool = False
    protocol: Protocol = "5"
    # "auto" in the config: start with `protocol` (5) and fall back to 3.1.1 if the broker refuses it.
    protocol_fallback: bool = False
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 3.0

    def __repr__(self) -> str:
        return (
            f"BrokerSettings({self.host}:{self.port}, client_id={self.client_id!r}, user={self.username!r}, "
            f"tls={self.tls}, protocol={self.protocol}{'+fallback' if self.protocol_fallback else ''})"
        )


def broker_settings(
    site: SiteConfig, client_id: str, will: tuple[str, bytes] | None = None, *, role: MqttRole | None = None
) -> BrokerSettings:
    """Connection settings from the site's `mqtt` section for a process `role` (its own account if the
    site gives one); the password is resolved here and never logged."""
    m = site.mqtt
    tls = m.tls
    account = m.roles.get(role) if role is not None else None
    username, password = (account.username, account.password) if account else (m.username, m.password)
    return BrokerSettings(
        host=m.host,
        port=m.port,
        client_id=client_id,
        username=username,
        password=password.resolve() if password is not None else None,
        ca_file=str(tls.ca_file) if tls and tls.ca_file else None,
        cert_file=str(tls.cert_file) if tls and tls.cert_file else None,
        key_file=str(tls.key_file) if tls and tls.key_file else None,
        tls_insecure=bool(tls and tls.insecure),
        will_topic=will[0] if will else None,
        will_payload=will[1] if will else b"",
        # An `mqtt.tls` section means TLS, even an empty one: the system CA store then verifies the broker.
        tls=tls is not None,
        protocol="3.1.1" if m.protocol == "3.1.1" else "5",
        protocol_fallback=m.protocol == "auto",
        reconnect_max_s=m.reconnect_max_s,
    )


def make_client(s: BrokerSettings, protocol: Protocol, **kwargs: Any) -> mqtt.Client:
    """A paho client for `s` speaking `protocol`, with credentials, TLS and will set (no callbacks)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=s.client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if protocol == "5" else MQTTProtocolVersion.MQTTv311,
        **kwargs,
    )
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    if s.tls or s.ca_file or s.cert_file:
        # ca_certs None: paho loads the system's default CA store.
        client.tls_set(
            ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file, cert_reqs=ssl.CERT_REQUIRED
        )
        client.tls_insecure_set(s.tls_insecure)
    if s.will_topic:
        client.will_set(s.will_topic, s.will_payload, qos=1, retain=True)
    return client


def refuses_protocol(rc: ReasonCode | int | None, *, connacked: bool) -> bool:
    """True if a CONNACK `rc` (or a close before any CONNACK) means the broker lacks the protocol version."""
    if not connacked:
        # Closed right after our CONNECT without an answer: what a broker does with a version it cannot
        # even parse (MQTT 3.1.1 §3.1.2.2 allows it to just disconnect).
        return True
    if rc is None:
        return False
    if isinstance(rc, ReasonCode):
        return rc.value == UNSUPPORTED_PROTOCOL_VERSION
    return rc in (CONNACK_V311_REFUSED_PROTOCOL_VERSION, UNSUPPORTED_PROTOCOL_VERSION)


class ProtocolChoice:
    """The protocol version to connect with: fixed, or MQTT 5 falling back to 3.1.1 ("auto").

    A CONNACK "unsupported protocol version" settles it. A connection closed right after CONNECT is only
    a hint: a TLS 1.3 broker that rejects our client certificate hangs up at the same moment. So such a
    close makes us try 3.1.1, and if that is closed the same way we go back to MQTT 5 and stop reading
    closes as a version answer.
    """

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.current: Protocol = settings.protocol
        self._can_fall_back = settings.protocol_fallback and settings.protocol == "5"
        self._ever_connected = False
        self._tentative = False  # on 3.1.1 only because an MQTT 5 attempt was closed
        self._closes_mean_nothing = False

    def connected(self) -> None:
        """Record a successful CONNACK: from now on a refusal is not about the protocol version."""
        self._ever_connected = True
        self._tentative = False

    def should_fall_back(self, rc: ReasonCode | int | None, *, connacked: bool) -> bool:
        """True if this failed attempt calls for the other protocol (`current` is then switched)."""
        # Only before the first success: a broker that once spoke our version and later drops a
        # connection right after CONNECT is having another problem (restart, limits).
        if self._ever_connected:
            return False
        if self._tentative:
            if connacked:
                self._tentative = False  # the broker answered 3.1.1: it does speak it, keep it
                return False
            self._tentative, self._closes_mean_nothing, self.current = False, True, "5"
            _LOG.info("MQTT 3.1.1 was closed after CONNECT as well: not a version problem; back to MQTT 5")
            return True
        if self.current != "5" or not self._can_fall_back or not refuses_protocol(rc, connacked=connacked):
            return False
        if not connacked and self._closes_mean_nothing:
            return False
        self._can_fall_back = connacked is False  # a close may still be followed by a real 0x84 later
        self._tentative = not connacked
        self.current = "3.1.1"
        why = f"CONNACK {rc}" if connacked else "connection closed after CONNECT"
        _LOG.warning(
            "MQTT broker %s:%d does not accept MQTT 5 (%s); using MQTT 3.1.1",
            self.settings.host,
            self.settings.port,
            why,
        )
        return True


class ProtocolFallback:
    """Mixin of the MQTT users: runs their paho client on the event loop, and replaces it when
    `ProtocolChoice` switches the version.

    The host class sets `_protocol`, `_switch` (None), `_stopping`, `_client` and `_driver` (None), and
    provides `_make_client()` (speaking `_protocol.current`) and `_connect()` (connect_async, then
    `_drive()`). Every paho callback runs on the event loop (bus/mqtt_loop.py).
    """

    _protocol: ProtocolChoice
    _switch: asyncio.Task[None] | None
    _stopping: bool
    _client: mqtt.Client
    _driver: MqttLoopDriver | None
    _connacked: bool

    def _make_client(self) -> mqtt.Client:
        raise NotImplementedError

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        raise NotImplementedError

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        """paho callback: note whether the attempt got a CONNACK, then handle the loss."""
        connacked, self._connacked = self._connacked, False
        self._disconnected(rc, client, connacked)

    def _connect(self) -> None:
        raise NotImplementedError

    def _drive(self, name: str) -> None:
        """Start driving `_client` (connect_async-ed) from the event loop, reconnecting with backoff."""
        s = self._protocol.settings
        self._driver = MqttLoopDriver(
            self._client, name, backoff_first_s=s.reconnect_first_s, backoff_cap_s=s.reconnect_max_s
        )
        self._driver.start()

    async def _stop_driver(self) -> None:
        """Disconnect and stop reconnecting."""
        if self._driver is not None:
            await self._driver.stop()

    @property
    def protocol(self) -> Protocol:
        """The MQTT version in use ("5" or "3.1.1")."""
        return self._protocol.current

    def _fall_back(self, rc: ReasonCode | int | None, *, connacked: bool) -> bool:
        """Start switching protocol if this failed attempt calls for it; True while a switch is under way."""
        idle = self._switch is None or self._switch.done()
        if idle and self._protocol.should_fall_back(rc, connacked=connacked):
            self._switch = asyncio.get_running_loop().create_task(self._switch_protocol())
            return True
        return self._switch is not None and not self._switch.done()

    async def _switch_protocol(self) -> None:
        # A new client, because paho fixes the protocol (and 3.1.1's clean_session) at construction.
        old = self._driver
        self._client = self._make_client()
        if old is not None:
            await old.stop()
        if not self._stopping:
            self._connect()


__all__ = [
    "BrokerSettings",
    "ProtocolChoice",
    "ProtocolFallback",
    "broker_settings",
    "make_client",
    "refuses_protocol",
]
