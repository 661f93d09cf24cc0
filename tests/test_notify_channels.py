# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""The notification channels against real servers on loopback: an aiosmtpd SMTP server, an aiohttp web
server (webhook and Apprise json://), and the real mosquitto. No protocol is mocked."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.base import (
    Channel,
    DeliveryError,
    Notification,
    SecretRedactingFilter,
    payload_json,
    url_secrets,
)
from alerts.notify.mqtt_channel import MqttChannel
from alerts.notify.smtp import SmtpChannel
from alerts.notify.webhook import WebhookChannel, sign, verify_signature
from bus.broker import BrokerSettings
from testkit.services import Mosquitto, TestPki, free_tcp_port

pytestmark = pytest.mark.integration

KEY = "whsec-test-0123456789abcdef"


def alert(state: str = "firing", key: str = "ups_on_battery:tpe1:機房A:ups-1") -> Notification:
    payload: dict[str, Any] = {
        "schema": "roomguard.alert/1",
        "id": key,
        "state": state,
        "severity": "critical",
        "rule": "ups_on_battery",
        "labels": {
            "site": "tpe1",
            "room": "機房A",
            "device": "ups-1",
            "class": "ups",
            "metric": "on_battery",
        },
        "value": True,
        "limit": None,
        "started_at": "2026-11-03T02:15:00.000000Z",
        "resolved_at": "2026-11-03T02:25:00.000000Z" if state == "resolved" else None,
        "acked": None,
        "texts": {"zh_TW": "UPS-1 改由電池供電", "en": "UPS-1 is on battery"},
    }
    return Notification(
        key=key,
        kind="resolved" if state == "resolved" else "firing",
        severity="critical",
        subject_zh="[嚴重] 機房A UPS-1 改由電池供電",
        subject_en="[CRITICAL] 機房A UPS-1 is on battery",
        body_zh="機房A 的 UPS-1 改由電池供電。\n剩餘時間約 18 分鐘。",
        body_en="UPS-1 in 機房A is on battery.\nAbout 18 minutes of runtime left.",
        payload=payload,
    )


# --- an HTTP receiver on loopback ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An aiohttp server that records every request and answers `status`."""

    port: int
    status: int = 200
    got: list[Received] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(Received(request.path, dict(request.headers), await request.read()))
        return web.Response(status=self.status, text="ok" if self.status < 300 else "no")


async def _serve(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    recv = Receiver(free_tcp_port(), scheme="https" if ssl_context else "http")
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None)  # its lines would show the path
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", recv.port, ssl_context=ssl_context).start()
    try:
        yield recv
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for recv in _serve():
        yield recv


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


# --- webhook ---------------------------------------------------------------------------------------------


async def test_webhook_delivers_a_signed_payload_the_receiver_verifies(receiver: Receiver) -> None:
    n = alert()
    await WebhookChannel("ops", receiver.url, KEY).send(n)
    (req,) = receiver.got
    assert json.loads(req.body) == n.payload
    assert req.body == payload_json(n.payload)
    assert "機房A" in req.body.decode("utf-8")  # not \u escaped
    ts, sig = req.headers["X-Roomguard-Timestamp"], req.headers["X-Roomguard-Signature"]
    assert sig.startswith("v1=")
    assert len(sig) == 3 + 64
    now = time.time()
    assert abs(int(ts) - now) < 5
    # The receiving side, with the key it holds.
    assert verify_signature(KEY, ts, req.body, sig, now=now)
    assert verify_signature(KEY.encode(), int(ts), req.body, sig, now=now)
    # A tampered body, another key, an old or future timestamp, a replayed signature with a new
    # timestamp: all refused.
    assert not verify_signature(KEY, ts, req.body.replace(b"firing", b"resolved"), sig, now=now)
    assert not verify_signature("another-key", ts, req.body, sig, now=now)
    assert not verify_signature(KEY, ts, req.body, sig, now=int(ts) + 301)
    assert not verify_signature(KEY, ts, req.body, sig, now=int(ts) - 301)
    assert verify_signature(KEY, ts, req.body, sig, now=int(ts) + 300)
    assert not verify_signature(KEY, str(int(ts) + 1), req.body, sig, now=now)
    assert not verify_signature(KEY, "soon", req.body, sig, now=now)
    assert not verify_signature(KEY, ts, req.body, sig.removeprefix("v1="), now=now)
    assert not verify_signature(KEY, ts, req.body, "v1=機房", now=now)
    # A header carrying two signatures (key rotation) passes if one is valid.
    assert verify_signature(KEY, ts, req.body, f"v1={'0' * 64}, {sig}", now=now)


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Fixed vector, independent of the implementation: the docs/alerts.md example must agree with it.
    import hashlib
    import hmac

    body = b'{"schema":"roomguard.alert/1","id":"x"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("k", 1700000000, body) == f"v1={expected}"


async def test_the_docs_verification_example_accepts_a_real_delivery(receiver: Receiver) -> None:
    text = (Path(__file__).parent.parent / "docs" / "alerts.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    scope: dict[str, Any] = {}
    exec(code, scope)
    verify = scope["verify"]
    await WebhookChannel("ops", receiver.url, KEY).send(alert())
    (req,) = receiver.got
    assert verify(KEY.encode(), req.headers, req.body)
    assert not verify(KEY.encode(), req.headers, req.body + b" ")
    assert not verify(b"another-key", req.headers, req.body)
    old = {**req.headers, "X-Roomguard-Timestamp": str(int(req.headers["X-Roomguard-Timestamp"]) - 301)}
    assert not verify(KEY.encode(), old, req.body)


async def test_webhook_timestamp_comes_from_the_injected_clock(receiver: Receiver) -> None:
    await WebhookChannel("ops", receiver.url, KEY, clock=lambda: 1_700_000_000.9).send(alert())
    (req,) = receiver.got
    assert req.headers["X-Roomguard-Timestamp"] == "1700000000"
    sig = req.headers["X-Roomguard-Signature"]
    assert verify_signature(KEY, "1700000000", req.body, sig, now=1_700_000_100)
    assert not verify_signature(KEY, "1700000000", req.body, sig, now=time.time())  # long expired


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (302, False),
    ],
)
async def test_webhook_status_classification(receiver: Receiver, status: int, retryable: bool) -> None:
    receiver.status = status
    with pytest.raises(DeliveryError) as err:
        await WebhookChannel("ops", receiver.url, KEY).send(alert())
    assert err.value.retryable is retryable
    assert str(status) in str(err.value)
    assert len(receiver.got) == 1  # one attempt: retrying is the caller's decision


async def test_webhook_receiver_down_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_tcp_port()}/hook"
    with pytest.raises(DeliveryError) as err:
        await WebhookChannel("ops", url, KEY, timeout_s=5).send(alert())
    assert err.value.retryable


async def test_webhook_timeout_is_retryable() -> None:
    # A server that accepts and never answers.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(DeliveryError) as err:
            await WebhookChannel("ops", f"http://127.0.0.1:{port}/", KEY, timeout_s=0.5).send(alert())
        assert err.value.retryable
        assert "0.5 s" in str(err.value)
    finally:
        server.close()


async def test_webhook_errors_never_show_the_url_path_or_credentials(receiver: Receiver) -> None:
    receiver.status = 403
    url = f"http://hookuser:hookpass99@127.0.0.1:{receiver.port}/hooks/T0KEN-in-the-path?sig=QUERYSECRET"
    channel = WebhookChannel("ops", url, KEY)
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert not err.value.retryable
    for secret in ("hookpass99", "T0KEN-in-the-path", "QUERYSECRET", KEY):
        assert secret not in str(err.value)
        assert secret not in repr(channel)
    assert receiver.got[0].path == "/hooks/T0KEN-in-the-path"


async def test_webhook_verifies_tls_by_default(pki: TestPki) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    async for recv in _serve(ctx):
        with pytest.raises(DeliveryError) as err:
            await WebhookChannel("ops", recv.url, KEY).send(alert())
        assert not err.value.retryable
        assert "certificate" in str(err.value)
        assert recv.got == []
        await WebhookChannel("ops", recv.url, KEY, ca_file=str(pki.ca_cert)).send(alert())
        await WebhookChannel("ops", recv.url, KEY, verify_tls=False).send(alert())
        assert len(recv.got) == 2


# --- SMTP ------------------------------------------------------------------------------------------------


class MailHandler:
    """aiosmtpd handler keeping every message; `rcpt_reply` / `data_reply` refuse instead."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted"


class Accounts:
    """aiosmtpd authenticator: one valid user."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def __call__(self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any):
        ok = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    started: list[Controller] = []

    def start(handler: MailHandler, **kwargs: Any) -> Controller:
        ctl = Controller(handler, hostname="127.0.0.1", port=free_tcp_port(), **kwargs)
        ctl.start()
        started.append(ctl)
        return ctl

    yield start
    for ctl in started:
        ctl.stop()


def _smtp(ctl: Controller, **kwargs: Any) -> SmtpChannel:
    kwargs.setdefault("security", "none")
    return SmtpChannel(
        "mail",
        "127.0.0.1",
        ctl.port,
        "roomguard@example.com.tw",
        ["ops@example.com.tw", "noc@example.com.tw"],
        **kwargs,
    )


async def test_smtp_message_has_the_zh_tw_then_english_texts(smtp_server: Any) -> None:
    handler = MailHandler()
    ctl = smtp_server(handler)
    n = alert()
    await _smtp(ctl).send(n)
    (msg,) = handler.messages
    assert handler.envelopes == [("roomguard@example.com.tw", ["ops@example.com.tw", "noc@example.com.tw"])]
    assert msg["Subject"] == f"{n.subject_zh} / {n.subject_en}"
    assert "=?utf-8?" in msg.as_string().lower()  # encoded-word on the wire, decoded above
    assert msg.get_content_type() == "multipart/mixed"
    zh, en = msg.iter_parts()
    assert zh["Content-Language"] == "zh-TW"
    assert en["Content-Language"] == "en"
    # Text parts travel in canonical form (CRLF line ends, RFC 2046 §4.1.1).
    assert zh.get_content().replace("\r\n", "\n").rstrip("\n") == n.body_zh
    assert en.get_content().replace("\r\n", "\n").rstrip("\n") == n.body_en
    assert msg["Importance"] == "high"
    # 7-bit on the wire: no server extension needed.
    assert all(b < 128 for b in msg.as_bytes())


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_login_then_send(smtp_server: Any) -> None:
    handler = MailHandler()
    ctl = smtp_server(
        handler, auth_required=True, auth_require_tls=False, authenticator=Accounts("rg", "pw-ok")
    )
    await _smtp(ctl, username="rg", password="pw-ok").send(alert())
    assert len(handler.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_authentication_refused_is_not_retryable_and_hides_the_password(smtp_server: Any) -> None:
    handler = MailHandler()
    ctl = smtp_server(
        handler, auth_required=True, auth_require_tls=False, authenticator=Accounts("rg", "pw-ok")
    )
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl, username="rg", password="Wr0ngPassw0rd").send(alert())
    assert not err.value.retryable
    assert "535" in str(err.value)
    assert "Wr0ngPassw0rd" not in str(err.value)
    assert handler.messages == []
    # Auth required and no credentials configured: a 530 refusal, permanent too.
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl).send(alert())
    assert not err.value.retryable


async def test_smtp_permanent_refusal_is_not_retryable(smtp_server: Any) -> None:
    ctl = smtp_server(MailHandler(rcpt_reply="550 5.1.1 mailbox unavailable"))
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl).send(alert())
    assert not err.value.retryable
    assert "550" in str(err.value)


async def test_smtp_temporary_refusal_is_retryable(smtp_server: Any) -> None:
    ctl = smtp_server(MailHandler(data_reply="451 4.3.0 try again later"))
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl).send(alert())
    assert err.value.retryable
    assert "451" in str(err.value)


async def test_smtp_starttls_required_but_not_offered_is_not_retryable(smtp_server: Any) -> None:
    ctl = smtp_server(MailHandler())
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl, security="starttls").send(alert())
    assert not err.value.retryable
    assert "STARTTLS" in str(err.value)


async def test_smtp_starttls_verifies_the_server(smtp_server: Any, pki: TestPki) -> None:
    handler = MailHandler()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    ctl = smtp_server(handler, tls_context=tls, require_starttls=True)
    with pytest.raises(DeliveryError) as err:
        await _smtp(ctl, security="starttls").send(alert())
    assert not err.value.retryable
    assert "certificate" in str(err.value)
    await _smtp(ctl, security="starttls", ca_file=str(pki.ca_cert)).send(alert())
    assert len(handler.messages) == 1


async def test_smtp_server_down_is_retryable() -> None:
    channel = SmtpChannel("mail", "127.0.0.1", free_tcp_port(), "rg@example.com.tw", ["ops@example.com.tw"])
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert err.value.retryable


# --- Apprise ---------------------------------------------------------------------------------------------


async def test_apprise_json_delivery_is_observed(receiver: Receiver) -> None:
    n = alert()
    await AppriseChannel("apprise", f"json://127.0.0.1:{receiver.port}/hook").send(n)
    (req,) = receiver.got
    body = json.loads(req.body)
    assert body["title"] == f"{n.subject_zh} / {n.subject_en}"
    assert body["message"] == f"{n.body_zh}\n\n{n.body_en}"
    assert body["type"] == "failure"  # critical


async def test_apprise_failure_is_retryable_and_never_shows_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    caplog.set_level(logging.DEBUG)  # everything any logger lets through
    url = f"json://rguser:S3cretPassw0rd@127.0.0.1:{receiver.port}/hook/PathT0kenXYZ?+X-Api=HeaderSecret9"
    channel = AppriseChannel("apprise", url)
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert err.value.retryable
    assert "500" in str(err.value)  # Apprise's own reason, redacted
    (req,) = receiver.got
    assert req.path == "/hook/PathT0kenXYZ"  # the request really carried them
    assert req.headers.get("X-Api") == "HeaderSecret9"
    for secret in ("S3cretPassw0rd", "PathT0kenXYZ", "HeaderSecret9"):
        assert secret not in str(err.value)
        assert secret not in repr(channel)
        assert secret not in caplog.text


async def test_apprise_receiver_down_is_retryable() -> None:
    channel = AppriseChannel("apprise", f"json://127.0.0.1:{free_tcp_port()}/")
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert err.value.retryable


def test_apprise_url_it_cannot_load_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="nosuchscheme://") as err:
        AppriseChannel("apprise", "nosuchscheme://Sup3rSecretToken@host/")
    assert "Sup3rSecretToken" not in str(err.value)


# --- MQTT ------------------------------------------------------------------------------------------------


class Retained:
    """Subscribes to `topic` afresh and collects what the broker hands over (retained messages first)."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.arrived = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4()}"
        )
        self.client.username_pw_set(broker.username, broker.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(msg)
        self.arrived.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(broker: Mosquitto, topic: str, *, expect: bool = True) -> list[mqtt.MQTTMessage]:
    sub = Retained(broker, topic)
    try:
        sub.arrived.wait(5 if expect else 0.5)
        return list(sub.messages)
    finally:
        sub.close()


def _broker(broker: Mosquitto, password: str | None = None, port: int | None = None) -> BrokerSettings:
    return BrokerSettings(
        broker.host,
        port or broker.port,
        "roomguard-alerts-tpe1",
        broker.username,
        password if password is not None else broker.password,
        protocol_fallback=True,
    )


async def test_mqtt_retains_the_alert_state_until_cleared(mosquitto: Mosquitto) -> None:
    prefix = f"rgtest/{uuid.uuid4().hex}"
    channel = MqttChannel("bus", _broker(mosquitto), topic_prefix=prefix)
    firing = alert()
    topic = f"{prefix}/tpe1/alerts/{firing.key}"
    assert channel.topic(firing) == topic
    await channel.send(firing)
    (msg,) = await asyncio.to_thread(retained, mosquitto, f"{prefix}/tpe1/alerts/+")
    assert msg.topic == topic
    assert msg.retain
    assert msg.qos == 1
    assert json.loads(msg.payload) == firing.payload
    assert msg.payload == payload_json(firing.payload)  # the same bytes the webhook sends

    await channel.send(alert("resolved"))
    (msg,) = await asyncio.to_thread(retained, mosquitto, topic)
    assert json.loads(msg.payload)["state"] == "resolved"
    assert msg.retain

    await channel.clear("tpe1", firing.key)
    assert await asyncio.to_thread(retained, mosquitto, topic, expect=False) == []


async def test_mqtt_summary_is_published_but_not_retained(mosquitto: Mosquitto) -> None:
    prefix = f"rgtest/{uuid.uuid4().hex}"
    channel = MqttChannel("bus", _broker(mosquitto), topic_prefix=prefix)
    sub = await asyncio.to_thread(Retained, mosquitto, f"{prefix}/#")
    try:
        summary = Notification(
            key="summary:tpe1:機房A:1700000000",
            kind="summary",
            severity="warning",
            subject_zh="另有 3 則告警：機房A",
            subject_en="3 more alerts in 機房A",
            body_zh="",
            body_en="",
            payload={"schema": "roomguard.alert-summary/1", "labels": {"site": "tpe1", "room": "機房A"}},
        )
        await channel.send(summary)
        assert await asyncio.to_thread(sub.arrived.wait, 5)
        assert sub.messages[0].topic == f"{prefix}/tpe1/alerts/summary:tpe1:機房A:1700000000"
    finally:
        sub.close()
    assert await asyncio.to_thread(retained, mosquitto, f"{prefix}/#", expect=False) == []


async def test_mqtt_wrong_password_is_not_retryable(mosquitto: Mosquitto) -> None:
    channel = MqttChannel("bus", _broker(mosquitto, password="not-the-password"), topic_prefix="rgtest/x")
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert not err.value.retryable
    assert "not-the-password" not in str(err.value)


async def test_mqtt_broker_down_is_retryable(mosquitto: Mosquitto) -> None:
    channel = MqttChannel("bus", _broker(mosquitto, port=free_tcp_port()), topic_prefix="rgtest/x")
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert())
    assert err.value.retryable


async def test_mqtt_key_that_cannot_be_a_topic_level_is_not_retryable(mosquitto: Mosquitto) -> None:
    channel = MqttChannel("bus", _broker(mosquitto), topic_prefix="rgtest/x")
    with pytest.raises(DeliveryError) as err:
        await channel.send(alert(key="rule:tpe1:機房A/B:ups-1"))
    assert not err.value.retryable
    assert "alert_id" in str(err.value)


def test_settings_password_is_not_in_channel_repr(tmp_path: Path) -> None:
    channel = MqttChannel("bus", BrokerSettings("127.0.0.1", 1883, "c", "u", "Br0kerSecret"))
    assert "Br0kerSecret" not in repr(channel)


def test_every_channel_is_a_channel(tmp_path: Path) -> None:
    # Checked by mypy: each class satisfies the Channel protocol of alerts/notify/base.py.
    channels: list[Channel] = [
        WebhookChannel("w", "https://example.com.tw/hook", KEY),
        SmtpChannel("m", "127.0.0.1", 587, "rg@example.com.tw", ["ops@example.com.tw"]),
        AppriseChannel("a", "json://127.0.0.1:9/"),
        MqttChannel("q", BrokerSettings("127.0.0.1", 1883, "c")),
    ]
    assert [c.name for c in channels] == ["w", "m", "a", "q"]


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofS/-1001234567890/", ["AAHdqTcvCH1vGWJxfSeofS"]),
        ("mailtos://alerts:P@ss9@smtp.example.com.tw?to=ops@example.com.tw", ["P@ss9", "P%40ss9"]),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", ["TIiajkdnlazkcOXrIdevi7FQ"]),
        ("ntfy://rg:n7fyPass@ntfy.example.com.tw/roomguard-alerts", ["n7fyPass"]),
    ],
)
def test_url_secrets_cover_the_secret_part_of_common_apprise_urls(url: str, secrets: list[str]) -> None:
    redactor = SecretRedactingFilter()
    redactor.add(url_secrets(url))
    for secret in secrets:
        line = f"POST https://api.example/bot{secret}/sendMessage failed"
        assert secret not in redactor.redact(line)
