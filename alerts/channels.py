"""The notification channels a site file names, built with their secrets resolved (never logged)."""

from __future__ import annotations

from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.base import Channel
from alerts.notify.mqtt_channel import MqttChannel
from alerts.notify.smtp import SmtpChannel
from alerts.notify.webhook import WebhookChannel
from bus.broker import broker_settings
from siteconfig.alerts_config import (
    AppriseChannel as AppriseConfig,
)
from siteconfig.alerts_config import (
    MqttChannel as MqttConfig,
)
from siteconfig.alerts_config import (
    SmtpChannel as SmtpConfig,
)
from siteconfig.alerts_config import (
    WebhookChannel as WebhookConfig,
)
from siteconfig.config import SiteConfig


def alerts_client_id(site: SiteConfig) -> str:
    """MQTT client id of the site's alerts process (its durable session)."""
    return f"roomguard-alerts-{site.site.id}"


def build_channels(site: SiteConfig) -> dict[str, Channel]:
    """Every channel of `site.alerts`, by name (ValueError naming the channel if one cannot be built)."""
    cfg = site.alerts
    if cfg is None:
        return {}
    out: dict[str, Channel] = {}
    for name, ch in cfg.channels.items():
        if isinstance(ch, SmtpConfig):
            out[name] = SmtpChannel(
                name,
                ch.host,
                ch.port,
                ch.sender,
                ch.to,
                security=ch.security,
                username=ch.username,
                password=ch.password.resolve() if ch.password is not None else None,
                timeout_s=ch.timeout_s,
            )
        elif isinstance(ch, WebhookConfig):
            out[name] = WebhookChannel(
                name, ch.url, ch.key.resolve(), timeout_s=ch.timeout_s, verify_tls=ch.verify_tls
            )
        elif isinstance(ch, AppriseConfig):
            out[name] = AppriseChannel(name, ch.url.resolve())
        elif isinstance(ch, MqttConfig):
            settings = broker_settings(site, f"{alerts_client_id(site)}-notify", role="alerts")
            out[name] = MqttChannel(name, settings, topic_prefix=site.mqtt.topic_prefix, site=site.site.id)
    return out
