"""MQTT channel: the alert's current state, retained at QoS 1, on `{prefix}/{site}/alerts/{alert_id}`.

Each delivery is one short connection (connect, publish, PUBACK, disconnect) made with the project's
broker settings (bus.broker.BrokerSettings and make_client: credentials, TLS, protocol version). Alerts
are few; a connection per alert costs a round trip or two and keeps no state that could go stale, and a
delivery that fails says why, which a long-lived reconnecting client would hide behind its backoff.

The payload is `roomguard.alert/1` (docs/mqtt.md), the same JSON the webhook sends. Firing,
escalation, acknowledged and resolved notifications are retained (the topic always holds the alert's
latest state); a resolved alert keeps its retained `resolved` state until the same alert fires again
or `clear()` removes it. Summaries and tests are published but not retained: they are not a state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import socket
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from alerts.notify.base import DeliveryError, Notification, payload_json
from bus.broker import BrokerSettings, Protocol, make_client, refuses_protocol
from devices.wire import WireError, topic_alert

_LOG = logging.getLogger(__name__)

DEFAULT_PREFIX = "roomguard/v1"
DEFAULT_TIMEOUT_S = 10.0
# CONNACK reasons that a retry cannot change (MQTT 5 §3.2.2.2; paho maps 3.1.1 return codes onto them):
# unsupported protocol version (without fallback), client id rejected, bad user name or password, not
# authorized, banned, bad authentication method.
_CONNACK_PERMANENT = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
# PUBACK reasons that a retry cannot change (MQTT 5 §3.4.2.1): not authorized (the broker's ACL),
# topic name invalid, payload format invalid. Quota exceeded and the unspecified errors may pass.
_PUBACK_PERMANENT = frozenset({0x87, 0x90, 0x99})
_NOT_RETAINED = frozenset({"summary", "test"})


class _Fallback(Exception):
    """The broker does not speak this protocol version: try the other."""


class _OneShot:
    """What the paho callbacks (in paho's network thread) report to the waiting worker thread."""

    def __init__(self) -> None:
        self.answered = threading.Event()  # CONNACK arrived, or the connection closed first
        self.connack: ReasonCode | None = None
        self.closed_rc: ReasonCode | None = None
        self.acked = threading.Event()
        self.puback: ReasonCode | None = None
        self.mid: int | None = None
        self._lock = threading.Lock()
        self._early: dict[int, ReasonCode] = {}  # a PUBACK that beat publish() returning its mid

    def on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.connack = rc
        self.answered.set()

    def on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.closed_rc = rc
        self.answered.set()
        self.acked.set()  # wake a waiter: no PUBACK will come on this connection

    def on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self._lock:
            if self.mid is None:
                self._early[mid] = rc
                return
        if mid == self.mid:
            self.puback = rc
            self.acked.set()

    def published(self, mid: int) -> None:
        with self._lock:
            self.mid = mid
            early = self._early.pop(mid, None)
        if early is not None:
            self.puback = early
            self.acked.set()


class MqttChannel:
    """Publishes `notification.payload` retained at QoS 1 on `{topic_prefix}/{site}/alerts/{key}`.

    `site` is the payload's `labels.site`, else the channel's `site`. The broker settings' will is not
    used and the client id gets a random suffix (`{client_id}-n{hex}`), so a delivery never takes over
    the session of a long-lived client of the same account. With `protocol_fallback` an MQTT 5 attempt
    the broker refuses as an unknown version is repeated with 3.1.1 at once.

    Not retryable: CONNACK bad credentials / not authorized / banned / client id rejected, a PUBACK
    refusal by the ACL (MQTT 5 only: a 3.1.1 broker drops a denied publish silently), an alert id or
    site that cannot be a topic level, an untrusted broker certificate. Retryable: cannot connect,
    timeouts, the connection closing, server unavailable or busy, quota exceeded.
    """

    def __init__(
        self,
        name: str,
        settings: BrokerSettings,
        *,
        topic_prefix: str = DEFAULT_PREFIX,
        site: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.settings = dataclasses.replace(settings, will_topic=None, will_payload=b"")
        self.topic_prefix = topic_prefix
        self.site = site
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"MqttChannel({self.name!r}, {self.settings!r}, prefix={self.topic_prefix!r})"

    def topic(self, notification: Notification) -> str:
        """The topic of `notification` (WireError if its site or key cannot be a topic level)."""
        labels = notification.payload.get("labels") or {}
        site = labels.get("site") if isinstance(labels, dict) else None
        site = site or self.site
        if not isinstance(site, str) or not site:
            raise WireError("no site: neither the payload's labels.site nor the channel's site is set")
        return topic_alert(self.topic_prefix, site, notification.key)

    async def send(self, notification: Notification) -> None:
        """Publish once and wait for the broker's PUBACK; DeliveryError says whether to try again."""
        where = f"mqtt {self.name} ({self.settings.host}:{self.settings.port})"
        try:
            topic = self.topic(notification)
            payload = payload_json(notification.payload)
        except WireError as exc:
            raise DeliveryError(f"{where}: {exc}", retryable=False) from None
        except (TypeError, ValueError) as exc:
            raise DeliveryError(f"{where}: payload is not JSON ({exc})", retryable=False) from None
        await self._publish(where, topic, payload, retain=notification.kind not in _NOT_RETAINED)

    async def clear(self, site: str, alert_id: str) -> None:
        """Remove the retained state of one alert (an empty retained message deletes it, MQTT 5
        §3.3.1.3): for an alert whose rule or device left the site file. Resolved alerts are otherwise
        left retained, so a dashboard that connects later sees that they ended."""
        where = f"mqtt {self.name} ({self.settings.host}:{self.settings.port})"
        try:
            topic = topic_alert(self.topic_prefix, site, alert_id)
        except WireError as exc:
            raise DeliveryError(f"{where}: {exc}", retryable=False) from None
        await self._publish(where, topic, b"", retain=True)

    async def _publish(self, where: str, topic: str, payload: bytes, *, retain: bool) -> None:
        s = self.settings
        protocols: list[Protocol] = [s.protocol]
        if s.protocol_fallback and s.protocol == "5":
            protocols.append("3.1.1")
        for i, protocol in enumerate(protocols):
            more = i + 1 < len(protocols)
            try:
                await asyncio.to_thread(self._attempt, where, protocol, more, topic, payload, retain)
            except _Fallback:
                _LOG.info("%s: the broker refused MQTT %s; trying %s", where, protocol, protocols[i + 1])
                continue
            return

    def _attempt(
        self, where: str, protocol: Protocol, can_fall_back: bool, topic: str, payload: bytes, retain: bool
    ) -> None:
        """In a worker thread: connect, publish, wait for PUBACK, disconnect (paho's own loop thread)."""
        s = dataclasses.replace(self.settings, client_id=f"{self.settings.client_id}-n{secrets.token_hex(4)}")
        state = _OneShot()
        try:
            client = make_client(s, protocol)
        except (OSError, ssl.SSLError, ValueError) as exc:  # a CA or client certificate file unreadable
            raise DeliveryError(f"{where}: TLS files cannot be loaded ({exc})", retryable=False) from None
        client.connect_timeout = self.timeout_s
        client.on_connect = state.on_connect
        client.on_disconnect = state.on_disconnect
        client.on_publish = state.on_publish
        try:
            client.connect(s.host, s.port, keepalive=max(5, int(self.timeout_s * 2)))
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{where}: broker certificate not trusted ({exc.verify_message})", retryable=False
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"{where}: TLS failed ({exc.reason or exc})", retryable=True) from None
        except socket.gaierror as exc:
            raise DeliveryError(f"{where}: cannot resolve host ({exc.strerror})", retryable=True) from None
        except TimeoutError:
            raise DeliveryError(f"{where}: connect timed out", retryable=True) from None
        except OSError as exc:
            raise DeliveryError(
                f"{where}: cannot connect ({exc.strerror or type(exc).__name__})", retryable=True
            ) from None
        client.loop_start()
        try:
            self._converse(where, client, state, can_fall_back, topic, payload, retain)
        finally:
            client.disconnect()
            client.loop_stop()

    def _converse(
        self,
        where: str,
        client: mqtt.Client,
        state: _OneShot,
        can_fall_back: bool,
        topic: str,
        payload: bytes,
        retain: bool,
    ) -> None:
        if not state.answered.wait(self.timeout_s):
            raise DeliveryError(f"{where}: no CONNACK within {self.timeout_s:g} s", retryable=True)
        rc = state.connack
        if rc is None or rc.is_failure:
            if can_fall_back and refuses_protocol(rc, connacked=rc is not None):
                raise _Fallback
            if rc is None:
                raise DeliveryError(f"{where}: connection closed before CONNACK", retryable=True)
            raise DeliveryError(
                f"{where}: broker refused the connection ({rc})", retryable=rc.value not in _CONNACK_PERMANENT
            )
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise DeliveryError(f"{where}: publish failed ({mqtt.error_string(info.rc)})", retryable=True)
        state.published(info.mid)
        if not state.acked.wait(self.timeout_s):
            raise DeliveryError(f"{where}: no PUBACK within {self.timeout_s:g} s", retryable=True)
        ack = state.puback
        if ack is None:
            raise DeliveryError(f"{where}: connection lost before PUBACK ({state.closed_rc})", retryable=True)
        if ack.is_failure:
            raise DeliveryError(
                f"{where}: broker refused the message on {topic} ({ack})",
                retryable=ack.value not in _PUBACK_PERMANENT,
            )
        _LOG.debug("%s: published %s (retain=%s)", where, topic, retain)


__all__ = ["DEFAULT_PREFIX", "MqttChannel"]
