"""What people do with alerts goes into the hash-chained audit log in the same transaction as the write
(a real SQLite records database): ack, silence and unsilence with an actor write one entry each with
before/after, the chain verifies, a refused write leaves neither history nor audit entry; and the pure
helpers the CLI and the web share (durations, "this alert" matchers, matcher names, the CLI actor)."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from alerts.inputs import Labels, Sample
from alerts.lifecycle import AlertView, Policy, SilenceView
from alerts.service import AlertService
from alerts.silences import alert_matchers, check_matcher_names, matcher_names, parse_duration
from devices.reading import DeviceClass
from records.audit import Actor, AuditEntry, cli_actor, verify
from records.db import make_engine, session_factory
from records.migrate import upgrade
from siteconfig.alert_rules import RuleSet

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
ENV1 = Labels("tpe1", "room-a", "env-1", DeviceClass.ENV)
RULES = RuleSet.model_validate(
    {
        "rules": [
            {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 26}
        ]
    }
)
HOT = "hot:tpe1:room-a:env-1:temp_c"
WHO = Actor("chen", "cli:edge-1/ops")


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = tmp_path / "records.db"
    upgrade(db)
    e = make_engine(db)
    yield e
    e.dispose()


@pytest.fixture
def svc(engine: Engine) -> AlertService:
    s = AlertService(session_factory(engine), RULES, Policy(group_wait_s=0))
    s.ingest([Sample(ENV1, "temp_c", at(0), 28.0)], at(0))
    return s


def audit(engine: Engine) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        report = verify(s)
        assert report.ok, report.problems
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_an_ack_with_an_actor_is_audited_with_before_and_after(svc: AlertService, engine: Engine) -> None:
    svc.ack(HOT, "chen", "on the way", at(10), actor=WHO)
    [e] = audit(engine)
    assert (e.actor, e.source, e.action, e.entity, e.entity_id, e.note, e.at) == (
        "chen", "cli:edge-1/ops", "alert.ack", "alert", HOT, "on the way", at(10),
    )  # fmt: skip
    assert e.before == {"acked_by": None, "acked_at": None, "ack_note": None}
    assert e.after == {"acked_by": "chen", "acked_at": at(10).isoformat(), "ack_note": "on the way"}
    # A second ack is recorded too; the first one stands, so before equals after.
    svc.ack(HOT, "lin", None, at(20), actor=Actor("lin", "api:192.0.2.7"))
    second = audit(engine)[1]
    assert (second.actor, second.before, second.after) == ("lin", e.after, e.after)


def test_without_an_actor_nothing_is_audited(svc: AlertService, engine: Engine) -> None:
    svc.ack(HOT, "chen", None, at(10))
    sid = svc.silence({"room": "room-a"}, at(10), at(70), "x", "chen", at(10))
    svc.unsilence(sid, "chen", at(20))
    assert audit(engine) == []


def test_a_failed_ack_or_silence_writes_nothing(svc: AlertService, engine: Engine) -> None:
    before = svc.history()
    with pytest.raises(KeyError):
        svc.ack("hot:nowhere", "chen", "x", at(10), actor=WHO)
    with pytest.raises(ValueError, match="reason"):
        svc.silence({"room": "room-a"}, at(10), at(70), " ", "chen", at(10), actor=WHO)
    with pytest.raises(KeyError):
        svc.unsilence(999, "chen", at(10), actor=WHO)
    assert audit(engine) == []
    assert svc.history() == before
    assert svc.silences(at(10), include_ended=True) == []


def test_silence_and_unsilence_are_audited(svc: AlertService, engine: Engine) -> None:
    sid = svc.silence({"rule": "hot", "room": ["room-a"]}, at(10), at(3610), "sensor swap", "chen", at(5),
                      kind="maintenance", actor=WHO)  # fmt: skip
    svc.unsilence(sid, "chen", at(100), actor=WHO)
    made, ended = audit(engine)
    assert (made.action, made.entity, made.entity_id, made.note, made.before) == (
        "alert.silence", "silence", str(sid), "sensor swap", None,
    )  # fmt: skip
    assert made.after == {
        "kind": "maintenance", "matchers": {"rule": "hot", "room": ["room-a"]},
        "starts_at": at(10).isoformat(), "ends_at": at(3610).isoformat(), "reason": "sensor swap",
        "created_by": "chen", "removed_by": None, "removed_at": None,
    }  # fmt: skip
    assert (ended.action, ended.entity_id) == ("alert.unsilence", str(sid))
    assert ended.before == {"removed_by": None, "removed_at": None}
    assert ended.after == {"removed_by": "chen", "removed_at": at(100).isoformat()}
    record = svc.get_silence(sid)
    assert record is not None
    assert (record.removed_by, record.removed_at) == ("chen", at(100))
    assert svc.get_silence(sid + 1) is None


def test_the_cli_actor_names_this_machine_and_login() -> None:
    actor = cli_actor("chen")
    assert (actor.name, actor.source) == ("chen", f"cli:{socket.gethostname()}/{getpass.getuser()}")


# -- the shared pure helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1.5d", 129600), (" 45s ", 45)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "-1h", "0m", "h"])
def test_bad_durations_name_the_valid_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30m, 2h, 1d"):
        parse_duration(text)


def test_this_alert_matchers_match_only_it_even_with_glob_characters_in_labels() -> None:
    a = AlertView(
        key="hot:tpe1:room-a:rack[1]*:temp_c", rule_id="hot", severity="warning", state="firing",
        labels={"site": "tpe1", "room": "room-a", "device": "rack[1]*", "metric": "temp_c"}, value=28.0,
        limit=27.0, started_at=T0, resolved_at=None, last_event_at=T0, texts={},
    )  # fmt: skip
    matchers = alert_matchers(a)
    assert matchers["rule"] == "hot"
    silence = SilenceView(1, "silence", matchers, T0, at(60))
    assert silence.matches("hot", a.labels)
    assert not silence.matches("hot", {**a.labels, "device": "rack1-xyz"})  # a glob would have matched
    assert not silence.matches("cold", a.labels)


def test_matcher_names_are_the_standard_ones_and_the_labels_seen(svc: AlertService) -> None:
    names = matcher_names(svc.label_names())
    assert names == ("rule", "site", "room", "device", "metric", "class", "zone", "rack")
    assert matcher_names({"owner", "room"})[-1] == "owner"
    check_matcher_names({"room": "x", "rule": "hot"}, names)
    with pytest.raises(ValueError, match=r"unknown matcher 'rooom'; valid: rule, site, room"):
        check_matcher_names({"rooom": "x"}, names)


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_silences_and_unsilences_audited_as_cli_host_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from roomguard import app
    from testkit.example_site import SECRETS, example_site

    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    path = example_site(tmp_path / "site.yaml")[0]
    state = tmp_path / "state"

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, ["alerts", *args, "--state-dir", str(state)])
        assert result.exit_code == code, result.output
        return result.output

    out = run(
        "silence", str(path), "--match", "room=mr1", "--for", "2h", "--reason", "UPS work", "--by", "chen"
    )
    sid = out.split()[1]
    run("unsilence", str(path), sid, "--by", "chen")
    run("silence", str(path), "--match", "room=mr1", "--for", "5x", "--reason", "r", "--by", "chen", code=2)
    run("ack", str(path), "nope", "--by", "chen", code=2)
    engine = make_engine(state / "records.db")
    try:
        entries = audit(engine)
    finally:
        engine.dispose()
    source = f"cli:{socket.gethostname()}/{getpass.getuser()}"
    assert [(e.action, e.entity_id, e.actor, e.source) for e in entries] == [
        ("alert.silence", sid, "chen", source),
        ("alert.unsilence", sid, "chen", source),
    ]
    assert entries[0].after["matchers"] == {"room": "mr1"}
