"""The site file's `alerts:` section: where notifications go, when, how often, and which rules apply.

The rules themselves are validated by the alert rule schema (kinds, scopes, templates, the metric
catalog); this module owns the delivery side: channels (secrets as references), routes by severity and
room, on-call shifts in the site's time zone, escalation, rate limit, grouping and flap damping.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from devices.catalog import builtin_catalog
from devices.yamlload import Issue, issues_error
from siteconfig.alert_rules import Rule, validate_rules_against_catalog
from siteconfig.config_types import Port, Seconds, Slug, StrictModel
from siteconfig.secrets import SecretRef

Severity = Literal["info", "warning", "critical"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class SmtpChannel(StrictModel):
    """E-mail through an SMTP server (the site's own relay)."""

    type: Literal["smtp"]
    host: str = Field(min_length=1, description="SMTP server.")
    port: Port = Field(587, description="587 with starttls, 465 with ssl, 25 plain.")
    security: Literal["starttls", "ssl", "none"] = Field("starttls", description="Transport security.")
    username: str | None = Field(None, description="Login name, if the server wants one.")
    password: SecretRef | None = Field(None, description="Login password (secret reference).")
    sender: str = Field(description="From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    timeout_s: Seconds = Field(15.0, description="Seconds per attempt.")

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not _EMAIL.match(v):
            raise ValueError("an e-mail address (name@example.com)")
        return v

    @field_validator("to")
    @classmethod
    def _recipients(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not _EMAIL.match(a)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def _login(self) -> Self:
        if self.password is not None and self.username is None:
            raise issues_error([{"loc": ("password",), "msg": "password given without username"}])
        return self


class WebhookChannel(StrictModel):
    """An HTTP endpoint that receives the alert payload, signed with HMAC-SHA256 (docs/alerts.md)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://", description="Receiver URL.")
    key: SecretRef = Field(description="Shared HMAC key (secret reference); the receiver verifies with it.")
    timeout_s: Seconds = Field(10.0, description="Seconds per attempt.")
    verify_tls: bool = Field(True, description="Verify the receiver's certificate (https).")


class AppriseChannel(StrictModel):
    """Any Apprise URL: LINE, Telegram, Slack, Teams, ntfy, e-mail, … (the URL holds tokens: a secret)."""

    type: Literal["apprise"]
    url: SecretRef = Field(description="The Apprise URL, e.g. {env: ROOMGUARD_LINE_URL}.")


class MqttChannel(StrictModel):
    """The retained alert topic {prefix}/{site}/alerts/{id} on the site's broker (docs/mqtt.md)."""

    type: Literal["mqtt"]


AlertChannel = Annotated[
    SmtpChannel | WebhookChannel | AppriseChannel | MqttChannel, Field(discriminator="type")
]


class Route(StrictModel):
    """Which alerts go to which channels; every matching route is used."""

    severities: list[Severity] = Field(
        default_factory=lambda: list[Severity](["info", "warning", "critical"]),
        description="Severities this route takes (default all).",
    )
    rooms: list[Slug] = Field(default_factory=list, description="Rooms this route takes (default all).")
    channels: list[Slug] = Field(min_length=1, description="Channel names from alerts.channels.")
    on_call: bool = Field(
        False, description="Also send to the channels of whoever is on call now (alerts.on_call)."
    )


def _clock(value: Any) -> Any:
    if isinstance(value, str):
        # HH:MM as people write it; HH:MM:00 as a dumped configuration writes it back (round trip).
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)(?::00)?", value)
        if m is None:
            raise ValueError("a time of day HH:MM (24-hour, site time zone)")
        return time(int(m[1]), int(m[2]))
    if isinstance(value, int):  # YAML 1.1 reads 08:00 as sexagesimal 480
        raise ValueError("quote the time of day: '08:00'")
    return value


class OnCallShift(StrictModel):
    """Who is on call when, in the site's time zone; a shift may run past midnight (22:00 to 06:00)."""

    name: str = Field(min_length=1, description="Who (a person or a team).")
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS), description="Days the shift starts on (default every day)."
    )
    start: time = Field(description="Start, HH:MM.")
    end: time = Field(description="End, HH:MM (earlier than start: the next day).")
    channels: list[Slug] = Field(min_length=1, description="Channel names that reach this person.")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        return _clock(v)


class Escalation(StrictModel):
    """Re-notify while nobody acknowledges, then tell a second list."""

    renotify_every_s: Seconds = Field(900.0, description="Seconds between reminders while unacknowledged.")
    max_renotify: int = Field(3, ge=0, description="Reminders before escalating.")
    then_channels: list[Slug] = Field(
        default_factory=list, description="Second contact list after the reminders (channel names)."
    )


class RateLimit(StrictModel):
    """Per channel: at most this many messages per window; the rest are summarised, never dropped."""

    max_messages: int = Field(20, ge=1, description="Messages per channel and window.")
    window_s: Seconds = Field(600.0, description="Window length in seconds.")


class AlertsConfig(StrictModel):
    """Alert rules and where their notifications go."""

    default_rules: bool = Field(
        True, description="Use the shipped machine-room rule pack (ASHRAE bands, UPS, generator, doors, …)."
    )
    rules: list[Rule] = Field(
        default_factory=list, description="Site rules (added to the pack; a rule with a pack id replaces it)."
    )
    disabled_rules: list[Slug] = Field(default_factory=list, description="Pack rule ids not to use.")
    channels: dict[Slug, AlertChannel] = Field(default_factory=dict, description="Named channels.")
    routes: list[Route] = Field(default_factory=list, description="Severity/room → channels.")
    on_call: list[OnCallShift] = Field(default_factory=list, description="On-call shifts.")
    escalation: Escalation = Field(default_factory=Escalation, description="Reminders and escalation.")
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="Per-channel rate limit.")
    group_wait_s: float = Field(
        10.0, ge=0, description="Alerts of one rule in one room within this time go out as one message."
    )
    flap_window_s: Seconds = Field(
        600.0, description="An alert that fires again within this time of resolving is flapping."
    )
    flap_max_notifications: int = Field(
        2, ge=1, description="Notifications of one flapping alert per flap window."
    )
    generator_transfer_s: Seconds = Field(
        30.0,
        description="Generator start-and-transfer time (seconds) the UPS runtime is compared with "
        "(the power-chain margin in UPS alerts).",
    )

    @model_validator(mode="after")
    def _channel_names(self) -> Self:
        known = set(self.channels)
        issues: list[Issue] = []

        def check(names: list[str], loc: tuple[str | int, ...]) -> None:
            for i, name in enumerate(names):
                if name not in known:
                    issues.append(
                        {
                            "loc": (*loc, i),
                            "input": name,
                            "msg": "unknown channel",
                            "expected": sorted(known),
                        }
                    )

        for i, route in enumerate(self.routes):
            check(route.channels, ("routes", i, "channels"))
        for i, shift in enumerate(self.on_call):
            check(shift.channels, ("on_call", i, "channels"))
        check(self.escalation.then_channels, ("escalation", "then_channels"))
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                issues.append({"loc": ("rules", i, "id"), "input": rule.id, "msg": "rule id used twice"})
            seen.add(rule.id)
        # A rule on a metric its device class does not have would never fire: say so at load.
        issues += [
            {**issue, "loc": ("rules", *issue.get("loc", ()))}
            for issue in validate_rules_against_catalog(self.rules, builtin_catalog())
        ]
        if issues:
            raise issues_error(issues)
        return self
