"""The API's live view of the room: a plain MQTT subscription to its site's readings, device and
collector statuses and CC-16000 check results, holding the newest of each in memory (api/live_model.py).

Non-durable on purpose: the API shows the newest state, so a message missed while it was down is
superseded by the next poll, and the retained statuses come back on every connect. No session is kept
(MQTT 5 clean start without expiry, 3.1.1 clean session) and the client id is unique per process.

`LiveState` is the pure part (a decoded message folded into the held state; times are passed in);
`MqttLive` is the paho I/O around it, driven on the event loop by bus/mqtt_loop.py and reconnecting
with backoff. A message that breaks the wire contract is counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from api.live_model import CheckLive, CollectorLive, DeviceLive, LiveSnapshot, MetricLive, Value
from bus.broker import BrokerSettings, ProtocolChoice, ProtocolFallback, broker_settings, make_client
from bus.mqtt_loop import MqttLoopDriver
from devices.catalog import metric_unit
from devices.reading import PollResult, Quality
from devices.registry import ProfileRegistry
from devices.wire import (
    COLLECTOR_LEVEL,
    COMPLIANCE_LEVEL,
    WireError,
    decode_poll,
    decode_status,
)
from siteconfig.config import SiteConfig
from siteconfig.secrets import SecretError

_LOG = logging.getLogger(__name__)

Outcome = Literal["reading", "status", "collector", "check", "ignored", "rejected"]
# Broken messages are logged one by one up to this many, then only counted (a misbehaving publisher
# must not flood the API's log); the count is in the snapshot and on /metrics.
LOGGED_REJECTS = 20
# A message stamped further ahead of our clock than this is not taken: held as "newest", it would hide
# every correct message after it (older ones are ignored) for as long as the skew lasts.
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Applied:
    """What one message did to the state; `reason` says why it was rejected or ignored."""

    outcome: Outcome
    reason: str | None = None


def site_devices(site: SiteConfig, registry: ProfileRegistry | None = None) -> tuple[DeviceLive, ...]:
    """Every device of the site file, in its order, with nothing received yet (class from its profile)."""
    registry = registry or ProfileRegistry.builtin()
    out = []
    for d in site.devices:
        try:
            cls = registry.get(d.profile).device_class or ""
        except (KeyError, ValueError):  # a profile the shipped registry lacks: the first reading says
            cls = ""
        out.append(
            DeviceLive(
                device=d.id,
                name=d.name,
                device_class=str(cls),
                room=d.room,
                zone=d.zone,
                rack=d.rack,
                model=d.profile,
            )
        )
    return tuple(out)


def _metrics(poll: PollResult, device_class: str) -> dict[str, MetricLive]:
    return {
        m.name: MetricLive(m.value, m.quality.value, metric_unit(device_class, m.name)) for m in poll.metrics
    }


def _ahead(ts: datetime, now: datetime) -> Applied:
    return Applied(
        "ignored", f"stamped {(ts - now).total_seconds():.0f} s ahead of this clock (its clock is wrong)"
    )


# How long an unchanged snapshot is handed out again (its ages are as of its own time).
SNAPSHOT_REUSE = timedelta(seconds=1)


class LiveState:
    """The newest reading and status per device of the site, collectors' statuses and check results,
    folded from bus messages (pure; thread-safe, since handlers may read from a worker thread)."""

    def __init__(self, site_id: str, prefix: str, devices: tuple[DeviceLive, ...]) -> None:
        self.site_id = site_id
        self.prefix = prefix
        self._devices = {d.device: d for d in devices}  # insertion order: the site file's
        self._collectors: dict[str, CollectorLive] = {}
        self._checks: dict[str, CheckLive] = {}
        self._lock = threading.Lock()
        self.messages = 0
        self.rejected = 0
        self._last: LiveSnapshot | None = None

    @classmethod
    def of_site(cls, site: SiteConfig, registry: ProfileRegistry | None = None) -> LiveState:
        """The empty state of a site file's devices."""
        return cls(site.site.id, site.mqtt.topic_prefix, site_devices(site, registry))

    def subscriptions(self) -> tuple[str, ...]:
        """The topic filters that feed it (readings and check results; device and collector statuses)."""
        base = f"{self.prefix}/{self.site_id}"
        return (f"{base}/+/+/readings", f"{base}/+/+/status")

    def apply(self, topic: str, payload: bytes, now: datetime) -> Applied:
        """Fold one message in; a message that breaks the wire contract is counted as rejected."""
        with self._lock:
            self.messages += 1
            try:
                applied = self._apply(topic, payload, now)
            except WireError as exc:
                applied = Applied("rejected", str(exc))
            if applied.outcome == "rejected":
                self.rejected += 1
            return applied

    def _apply(self, topic: str, payload: bytes, now: datetime) -> Applied:
        head = f"{self.prefix}/{self.site_id}/"
        if not topic.startswith(head):
            return Applied("ignored", "another site's topic")
        levels = topic[len(head) :].split("/")
        if len(levels) != 3:
            return Applied("ignored", "not a readings or status topic")
        room, name, kind = levels
        if kind == "readings" and room == COMPLIANCE_LEVEL:
            return self._check(name, payload, now)
        if kind == "readings":
            return self._reading(room, name, payload, now)
        if kind == "status" and room == COLLECTOR_LEVEL:
            status = decode_status(payload)
            if status.ts > now + FUTURE_SLACK:
                return _ahead(status.ts, now)
            self._collectors[name] = CollectorLive(name, status.state, status.ts, status.reason)
            return Applied("collector")
        if kind == "status":
            status = decode_status(payload)
            held = self._devices.get(name)
            if held is None:
                return Applied("ignored", f"device {name!r} is not in the site file")
            if held.status_at is not None and status.ts < held.status_at:
                return Applied("ignored", "older than the status held")
            if status.ts > now + FUTURE_SLACK:
                return _ahead(status.ts, now)
            self._devices[name] = replace(
                held, status=status.state, status_reason=status.reason, status_at=status.ts
            )
            return Applied("status")
        return Applied("ignored", "not a readings or status topic")

    def _reading(self, room: str, device: str, payload: bytes, now: datetime) -> Applied:
        poll, _seq = decode_poll(payload)
        ref = poll.ref
        if (ref.site, ref.room, ref.device) != (self.site_id, room, device):
            raise WireError(
                f"readings: device {ref.site}/{ref.room}/{ref.device} does not match its topic "
                f"{self.site_id}/{room}/{device}"
            )
        held = self._devices.get(device)
        if held is None:
            return Applied("ignored", f"device {device!r} is not in the site file")
        if held.at is not None and poll.ts < held.at:
            return Applied("ignored", "older than the reading held")  # a redelivery after a reconnect
        if poll.ts > now + FUTURE_SLACK:
            return _ahead(poll.ts, now)
        cls = ref.device_class.value
        self._devices[device] = replace(
            held,
            device_class=cls,
            at=poll.ts,
            quality=poll.quality.value,
            metrics=_metrics(poll, cls),
            duration_s=poll.duration_s,
        )
        return Applied("reading")

    def _check(self, item: str, payload: bytes, now: datetime) -> Applied:
        poll, _seq = decode_poll(payload)
        if poll.ref.device != item:
            raise WireError(f"check result: item {poll.ref.device!r} does not match its topic ({item!r})")
        held = self._checks.get(item)
        if held is not None and poll.ts < held.at:
            return Applied("ignored", "older than the check result held")
        if poll.ts > now + FUTURE_SLACK:
            return _ahead(poll.ts, now)
        values: dict[str, Value] = {m.name: m.value for m in poll.metrics if m.quality is Quality.GOOD}
        status = values.pop("status", None)
        self._checks[item] = CheckLive(
            item, str(status) if status is not None else "unknown", poll.ts, values
        )
        return Applied("check")

    def snapshot(self, now: datetime, connected: bool) -> LiveSnapshot:
        """A copy of everything held, as of `now`; the previous one again while no message came and it
        is under SNAPSHOT_REUSE_S old (so pages and routes may keep what they made of it, by identity)."""
        with self._lock:
            last = self._last
            if (
                last is not None
                and last.messages == self.messages
                and last.connected == connected
                and timedelta(0) <= now - last.taken_at < SNAPSHOT_REUSE
            ):
                return last
            self._last = LiveSnapshot(
                taken_at=now,
                connected=connected,
                devices=tuple(self._devices.values()),
                collectors=tuple(sorted(self._collectors.values(), key=lambda c: c.collector)),
                checks=tuple(sorted(self._checks.values(), key=lambda c: c.item)),
                messages=self.messages,
                rejected=self.rejected,
            )
            return self._last


def api_client_id(site: SiteConfig) -> str:
    """A client id of this API process alone (no session is kept, so it need not survive a restart)."""
    return f"roomguard-api-{site.site.id}-{socket.gethostname()}-{os.getpid()}"


class MqttLive(ProtocolFallback):
    """The live source of a site: `LiveState` fed by a plain MQTT subscription (see the module doc)."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        broker: BrokerSettings | None = None,
        state: LiveState | None = None,
    ) -> None:
        self.site = site
        self.broker = broker
        self.state = state or LiveState.of_site(site)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.connected = asyncio.Event()
        self.connects = 0  # successful connects since start (a reconnect shows as 2, 3, …)
        self.error: str | None = None  # why it cannot connect at all (a broker password not resolvable)
        self._stopping = False
        self._driver: MqttLoopDriver | None = None
        self._connacked = False
        self._switch: asyncio.Task[None] | None = None

    # --- LiveSource -------------------------------------------------------------------------------
    def snapshot(self) -> LiveSnapshot:
        """The held state now, with the API's own broker connection."""
        return self.state.snapshot(self.clock(), self.connected.is_set())

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (on the running loop), subscribing again on every connect. A broker
        password that cannot be resolved is logged: the API then serves the site's devices, unheard."""
        if self.broker is None:
            try:
                self.broker = broker_settings(self.site, api_client_id(self.site), role="api")
            except SecretError as exc:
                self.error = str(exc)
                _LOG.error("api: the live view cannot connect to the MQTT broker 無法連線: %s", exc)
                return
        self._protocol = ProtocolChoice(self.broker)
        self._client = self._make_client()
        self._connect()

    async def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        self._stopping = True
        if self._switch is not None:
            await self._switch
        await self._stop_driver()

    # --- paho ---------------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        assert self.broker is not None
        client = make_client(self.broker, self._protocol.current)  # 3.1.1: clean session (the default)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self) -> None:
        self._connacked = False
        b = self.broker
        assert b is not None
        if self._protocol.current == "5":
            # Clean start and no session expiry: nothing is kept for us while we are away.
            self._client.connect_async(b.host, b.port, keepalive=b.keepalive_s, clean_start=True)
        else:
            self._client.connect_async(b.host, b.port, keepalive=b.keepalive_s)
        self._drive("api-live")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self._connacked = True
        if rc.is_failure:
            if not self._fall_back(rc, connacked=True):
                _LOG.warning("api: the MQTT broker refused the live view: %s", rc)
            return
        for topic in self.state.subscriptions():
            client.subscribe(topic, qos=1)
        self._protocol.connected()
        if self._driver is not None:
            self._driver.connected()
        self.connects += 1
        self.connected.set()
        _LOG.info("api: live view connected to the MQTT broker")

    def _disconnected(self, rc: ReasonCode, client: mqtt.Client, connacked: bool) -> None:
        if client is not self._client or self._fall_back(rc, connacked=connacked):
            return
        if self.connected.is_set() and not self._stopping:
            _LOG.warning("api: live view lost the MQTT broker (%s); reconnecting", rc)
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        applied = self.state.apply(msg.topic, bytes(msg.payload), self.clock())
        if applied.outcome == "rejected":
            level = logging.WARNING if self.state.rejected <= LOGGED_REJECTS else logging.DEBUG
            _LOG.log(
                level,
                "api: dropped a message on %s that breaks the wire contract: %s",
                msg.topic,
                applied.reason,
            )


__all__ = ["Applied", "LiveState", "MqttLive", "api_client_id", "site_devices"]
