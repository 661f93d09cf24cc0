"""The site file's `alerts:` and `records:` sections: channels with secret references, routes, on-call
shifts, escalation; every mistake located at its line with the valid choices."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from devices.yamlload import ConfigError
from siteconfig.alerts_config import SmtpChannel, WebhookChannel
from siteconfig.config import load_site

BASE = """\
site: {id: s1, name: S}
rooms: [{id: mr1, name: 機房一}]
"""
ALERTS = """\
alerts:
  channels:
    ops-mail: {type: smtp, host: 127.0.0.1, port: 2525, security: none, sender: rg@example.com,
               to: [ops@example.com]}
    hook: {type: webhook, url: "https://ops.example.com/roomguard", key: {env: T_HOOK_KEY}}
    line: {type: apprise, url: {env: T_LINE_URL}}
    bus: {type: mqtt}
  routes:
    - {severities: [critical], channels: [ops-mail, hook]}
    - {rooms: [mr1], channels: [bus], on_call: true}
  on_call:
    - {name: 值班 A, days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00", channels: [line]}
    - {name: 夜班, start: "22:00", end: "06:00", channels: [line]}
  escalation: {renotify_every_s: 600, max_renotify: 2, then_channels: [line]}
"""


def _errors(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_site(_write(tmp_path, text))
    return err.value.format()


def test_a_full_alerts_section_loads(tmp_path: Path) -> None:
    site = load_site(_write(tmp_path, BASE + ALERTS))
    assert site.alerts is not None
    mail, hook = site.alerts.channels["ops-mail"], site.alerts.channels["hook"]
    assert isinstance(mail, SmtpChannel)
    assert mail.to == ["ops@example.com"]
    assert isinstance(hook, WebhookChannel)
    assert hook.key.describe() == "env:T_HOOK_KEY"
    night = site.alerts.on_call[1]
    assert (night.start, night.end, len(night.days)) == (time(22, 0), time(6, 0), 7)
    assert site.alerts.escalation.then_channels == ["line"]
    assert site.alerts.default_rules is True
    assert site.records.url is None  # the state directory's records.db


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_unknown_channel_is_located_with_the_valid_names(tmp_path: Path) -> None:
    text = BASE + ALERTS.replace("channels: [ops-mail, hook]", "channels: [ops-mail, hock]")
    out = _errors(tmp_path, text)
    assert "site.yaml:11:53:" in out
    assert "alerts.routes[0].channels[1]: unknown channel; did you mean 'hook'?" in out
    assert "valid choices: bus, hook, line, ops-mail" in out


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("sender: rg@example.com", "sender: roomguard", "alerts.channels.ops-mail.sender"),
        ("type: mqtt", "type: pager", "alerts.channels.bus"),
        ('start: "22:00"', 'start: "25:00"', "a time of day HH:MM"),
        ('url: "https://ops.example.com/roomguard"', "url: ops.example.com", "alerts.channels.hook.url"),
        (
            "then_channels: [line]",
            "then_channels: [sms]",
            "alerts.escalation.then_channels[0]: unknown channel",
        ),
    ],
)
def test_mistakes_name_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in ALERTS
    assert message in _errors(tmp_path, BASE + ALERTS.replace(old, new))


def test_a_webhook_key_written_inline_is_refused(tmp_path: Path) -> None:
    text = BASE + ALERTS.replace("key: {env: T_HOOK_KEY}", "key: s3cret-inline")
    out = _errors(tmp_path, text)
    assert "alerts.channels.hook.key" in out
    assert "s3cret-inline" not in out


def test_a_records_url_with_a_password_is_refused(tmp_path: Path) -> None:
    text = BASE + "records: {url: 'postgresql://rg:hunter2@db.example.com/roomguard'}\n"
    out = _errors(tmp_path, text)
    assert "records.url: the URL holds a password" in out
    assert "hunter2" not in out
    ok = load_site(
        _write(tmp_path, BASE + "records: {url: 'postgresql://rg@db/roomguard', password: {env: T_DB}}\n")
    )
    assert ok.records.url == "postgresql://rg@db/roomguard"


RULES = """\
alerts:
  rules:
    - {id: hot-aisle, kind: threshold, scope: {classes: [env]}, metric: temp_c, op: above, value: 35,
       clear: 34}
    - {id: ups-low, kind: match, scope: {classes: [ups]}, metric: battery_state, states: [low]}
    - {id: cold, kind: threshold, metric: temp_c, op: below, value: 15, clear: 17,
       messages: {zh-TW: "{device} 太冷 {valu}", en: "{device} cold {value}"}}
"""


def test_rules_are_checked_at_load_against_the_catalog_and_their_templates(tmp_path: Path) -> None:
    out = _errors(tmp_path, BASE + RULES)
    assert "site.yaml:9:8: alerts.rules[2].messages.zh_TW: unknown placeholder {valu}" in out
    # With the templates right, the catalog check runs (it needs every rule parsed first).
    out = _errors(tmp_path, BASE + RULES.replace("{valu}", "{value}"))
    assert "site.yaml:7:67: alerts.rules[1].metric: device class ups has no metric battery_state" in out
    assert "battery_status" in out, "the valid choices are listed"
    good = RULES.replace("battery_state", "battery_status").replace("{valu}", "{value}")
    site = load_site(_write(tmp_path, BASE + good))
    assert site.alerts is not None
    assert [r.id for r in site.alerts.rules] == ["hot-aisle", "ups-low", "cold"]
