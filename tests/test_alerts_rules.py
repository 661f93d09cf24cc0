"""Alert rule schema: every kind parses, bad rules fail at load with located errors naming valid choices."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.inputs import Labels
from devices.catalog import builtin_catalog
from devices.reading import DeviceClass
from devices.yamlload import ConfigError, Issue, load_yaml_model
from siteconfig.alert_rules import (
    DewpointRule,
    EventRule,
    GroupRule,
    MatchRule,
    OfflineRule,
    RateRule,
    RuleSet,
    Scope,
    StaleRule,
    ThresholdRule,
    validate_rules_against_catalog,
)

ALL_KINDS: list[dict[str, Any]] = [
    {"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 26},
    {"id": "heating", "kind": "rate", "metric": "temp_c", "change": 5, "window_s": 900},
    {"id": "silent", "kind": "stale", "metric": "temp_c", "after_s": 600},
    {"id": "on-battery", "kind": "match", "metric": "on_battery", "equals": True, "severity": "critical"},
    {"id": "condensation", "kind": "dewpoint", "op": "above", "value": 15, "clear": 14},
    {
        "id": "crac-n1",
        "kind": "group",
        "scope": {"classes": ["crac"]},
        "healthy_when": {"metric": "unit_state", "states": ["on"]},
        "min_healthy": 3,
    },
    {"id": "forced", "kind": "event", "event": "door", "names": ["forced_open"], "resolve_names": ["closed"]},
    {"id": "offline", "kind": "offline", "hold_for_s": 60},
]


def load(*rules: dict[str, Any]) -> RuleSet:
    return RuleSet.model_validate({"rules": list(rules)})


def test_every_kind_parses_into_its_model() -> None:
    rs = load(*ALL_KINDS)
    types = [type(r) for r in rs.rules]
    assert types == [
        ThresholdRule,
        RateRule,
        StaleRule,
        MatchRule,
        DewpointRule,
        GroupRule,
        EventRule,
        OfflineRule,
    ]
    assert validate_rules_against_catalog(rs.rules, builtin_catalog()) == []


def test_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="threshold"):
        load({"id": "x", "kind": "thresold", "metric": "temp_c"})


def test_clear_must_be_on_the_safe_side() -> None:
    with pytest.raises(ValidationError, match="safe side"):
        load({"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 28})
    with pytest.raises(ValidationError, match="safe side"):
        load({"id": "dry", "kind": "threshold", "metric": "rh_pct", "op": "below", "value": 30, "clear": 25})
    # Equal (no hysteresis) and omitted (defaults to the trigger level) are allowed.
    eq = load({"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27, "clear": 27})
    omitted = load({"id": "hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 27})
    assert isinstance(eq.rules[0], ThresholdRule)
    assert isinstance(omitted.rules[0], ThresholdRule)
    assert eq.rules[0].clear_level == omitted.rules[0].clear_level == 27


def test_threshold_boundaries_are_strict_trigger_inclusive_clear() -> None:
    rule = load(ALL_KINDS[0]).rules[0]
    assert isinstance(rule, ThresholdRule)
    assert (rule.triggered(27.0), rule.triggered(27.01)) == (False, True)
    assert (rule.cleared(26.0), rule.cleared(26.01)) == (True, False)


def test_unknown_placeholder_names_itself_and_the_valid_ones() -> None:
    rule = {**ALL_KINDS[0], "messages": {"zh-TW": "{device} 溫度 {valeu}", "en": "{device} {value} {unit}"}}
    with pytest.raises(ValidationError) as exc:
        load(rule)
    text = str(exc.value)
    assert "unknown placeholder {valeu}" in text
    assert "messages.zh_TW" in text
    for valid in ("value", "limit", "forecast", "device", "room"):
        assert valid in text


def test_placeholders_accept_either_zh_tw_spelling_and_refuse_formats() -> None:
    ok = load({**ALL_KINDS[0], "messages": {"zh_TW": "{device} {value}", "en": "{device} {value}"}})
    assert ok.rules[0].messages is not None
    with pytest.raises(ValidationError, match="takes no format"):
        load({**ALL_KINDS[0], "messages": {"zh_TW": "{value:.1f}", "en": "{value}"}})
    with pytest.raises(ValidationError, match="plain name"):
        load({**ALL_KINDS[0], "messages": {"zh_TW": "{}", "en": "{value}"}})
    with pytest.raises(ValidationError, match="does not parse"):
        load({**ALL_KINDS[0], "messages": {"zh_TW": "{value", "en": "{value}"}})


def test_margin_placeholder_needs_a_power_chain() -> None:
    ups = {"id": "low-runtime", "kind": "threshold", "metric": "runtime_s", "op": "below", "value": 900}
    msgs = {"zh_TW": "{device} {margin}", "en": "{device} {margin}"}
    with pytest.raises(ValidationError, match="needs a power_chain"):
        load({**ups, "messages": msgs})
    ok = load({**ups, "messages": msgs, "power_chain": {"transfer_s": 30}})
    assert isinstance(ok.rules[0], ThresholdRule)
    assert ok.rules[0].power_chain is not None


def test_kind_specific_placeholders() -> None:
    group = {**ALL_KINDS[5], "messages": {"zh_TW": "{healthy}/{total}", "en": "{unhealthy}"}}
    assert load(group).rules
    with pytest.raises(ValidationError, match=r"unknown placeholder \{forecast\}"):
        load({**ALL_KINDS[5], "messages": {"zh_TW": "{forecast}", "en": "x"}})
    with pytest.raises(ValidationError, match=r"unknown placeholder \{value\}"):
        load({**ALL_KINDS[7], "messages": {"zh_TW": "{value}", "en": "x"}})


def test_match_needs_exactly_one_condition() -> None:
    with pytest.raises(ValidationError, match="exactly one condition"):
        load({"id": "m", "kind": "match", "metric": "on_battery"})
    with pytest.raises(ValidationError, match="only one condition"):
        load(
            {"id": "m", "kind": "match", "metric": "control_mode", "states": ["stop"], "not_states": ["auto"]}
        )


def test_rule_ids_are_unique_slugs_and_inhibits_name_rules() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        load(ALL_KINDS[0], ALL_KINDS[0])
    with pytest.raises(ValidationError, match="slug"):
        load({**ALL_KINDS[0], "id": "Hot Room"})
    with pytest.raises(ValidationError, match="inhibits names no other rule"):
        load({**ALL_KINDS[7], "inhibits": ["nope"]})
    assert load(ALL_KINDS[0], {**ALL_KINDS[7], "inhibits": ["hot"]}).rules[1].inhibits == ["hot"]


def test_door_event_names_are_door_states() -> None:
    with pytest.raises(ValidationError, match="not a door state") as exc:
        load({"id": "d", "kind": "event", "event": "door", "names": ["forced"]})
    assert "forced_open" in str(exc.value)
    # Trap names are the profiles' business; globs are fine.
    assert load({"id": "t", "kind": "event", "event": "trap", "names": ["upsTrap*"]}).rules


def test_extra_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        load({**ALL_KINDS[0], "hold_for": 30})


def test_dewpoint_metrics_must_be_temperature_and_humidity() -> None:
    with pytest.raises(ValidationError, match="temperature"):
        load({**ALL_KINDS[4], "temp_metric": "rh_pct"})
    probe = load({**ALL_KINDS[4], "temp_metric": "probe2_temp_c", "rh_metric": "probe2_rh_pct"}).rules[0]
    assert isinstance(probe, DewpointRule)
    assert probe.derived_metric == "probe2_dew_point_c"


# ------------------------------------------------------------------------------------ catalog check


def issues_of(*rules: dict[str, Any]) -> list[Issue]:
    return validate_rules_against_catalog(load(*rules).rules, builtin_catalog())


def test_catalog_metric_missing_from_the_scoped_class_lists_valid_choices() -> None:
    issues = issues_of(
        {
            "id": "hot",
            "kind": "threshold",
            "scope": {"classes": ["env"]},
            "metric": "temperature_c",
            "op": "above",
            "value": 27,
        }
    )
    assert len(issues) == 1
    assert issues[0]["loc"] == (0, "metric")
    assert issues[0]["msg"] == "device class env has no metric temperature_c"
    assert "temp_c" in issues[0]["expected"]
    assert "probe<n>_temp_c" in issues[0]["expected"]


def test_catalog_each_scoped_class_must_have_the_metric() -> None:
    issues = issues_of(
        {
            "id": "hot",
            "kind": "threshold",
            "scope": {"classes": ["env", "ups"]},
            "metric": "temp_c",
            "op": "above",
            "value": 27,
        }
    )
    assert [i["msg"] for i in issues] == ["device class ups has no metric temp_c"]
    unscoped = issues_of({"id": "x", "kind": "stale", "metric": "tempc", "after_s": 60})
    assert unscoped[0]["msg"] == "no device class has metric tempc"


def test_catalog_types_and_states() -> None:
    issues = issues_of(
        {
            "id": "a",
            "kind": "match",
            "scope": {"classes": ["ups"]},
            "metric": "on_battery",
            "states": ["true"],
        },
        {
            "id": "b",
            "kind": "match",
            "scope": {"classes": ["genset"]},
            "metric": "control_mode",
            "not_states": ["atuo"],
        },
        {
            "id": "c",
            "kind": "threshold",
            "scope": {"classes": ["genset"]},
            "metric": "control_mode",
            "op": "above",
            "value": 1,
        },
        {
            "id": "d",
            "kind": "match",
            "scope": {"classes": ["genset"]},
            "metric": "control_mode",
            "equals": True,
        },
        {
            "id": "e",
            "kind": "match",
            "scope": {"classes": ["genset"]},
            "metric": "alarm_*",
            "states": ["shutdown", "warning"],
        },
        {
            "id": "f",
            "kind": "match",
            "scope": {"classes": ["genset"]},
            "metric": "alarm_*",
            "states": ["tripped"],
        },
    )
    by_rule = {i["loc"][0]: i for i in issues}
    assert by_rule[0]["msg"] == "on_battery is bool: use equals: true or false"
    assert by_rule[0]["loc"] == (0, "states")
    assert by_rule[1]["loc"] == (1, "not_states", 0)
    assert by_rule[1]["msg"] == "not a state of control_mode"
    assert "auto" in by_rule[1]["expected"]
    assert by_rule[2]["msg"] == "control_mode is enum; this rule needs a number"
    assert by_rule[3]["msg"].startswith("control_mode is enum, not bool: use states with stop, auto")
    assert 4 not in by_rule  # alarm_* globs the catalog's alarm_<name>; shutdown and warning are states
    assert by_rule[5]["msg"] == "not a state of alarm_<name>"
    assert len(issues) == 5


def test_catalog_group_member_condition() -> None:
    bad = issues_of(
        {
            "id": "ups-n1",
            "kind": "group",
            "scope": {"classes": ["ups"]},
            "healthy_when": {"metric": "output_source", "states": ["mains"]},
            "min_healthy": 2,
        }
    )
    assert bad[0]["loc"] == (0, "healthy_when", "states", 0)
    assert "normal" in bad[0]["expected"]


def test_located_errors_through_the_yaml_loader(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n"
        "  - id: hot\n"
        "    kind: threshold\n"
        "    metric: temp_c\n"
        "    op: above\n"
        "    value: 27\n"
        "    clear: 28\n"
        "  - id: cold\n"
        "    kind: threshold\n"
        "    metric: temp_c\n"
        "    op: below\n"
        "    value: 15\n"
        "    messages: {zh-TW: '{device} {lim}', en: '{device}'}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as exc:
        load_yaml_model(path, RuleSet)
    errors = {e.line: e for e in exc.value.errors}
    assert errors[7].key_path.endswith("rules[0].clear")
    assert "safe side" in errors[7].message
    assert errors[13].message.startswith("unknown placeholder {lim}")
    assert "limit" in errors[13].valid_choices


def test_scope_matcher_needs_every_given_selector() -> None:
    lb = Labels("tpe1", "room-a", "env-1", DeviceClass.ENV, "z1", "r1", (("owner", "ops"),))
    assert Scope().compile().matches(lb)
    assert Scope(site="tpe1", rooms=["room-a", "room-b"], zones=["z1"], racks=["r1"]).compile().matches(lb)
    assert Scope(classes=[DeviceClass.ENV], devices=["env-1"], tags={"owner": "ops"}).compile().matches(lb)
    assert not Scope(site="khh1").compile().matches(lb)
    assert not Scope(rooms=["room-b"]).compile().matches(lb)
    assert not Scope(zones=["z2"]).compile().matches(lb)
    assert not Scope(racks=["r2"]).compile().matches(lb)
    assert not Scope(devices=["env-2"]).compile().matches(lb)
    assert not Scope(classes=[DeviceClass.UPS]).compile().matches(lb)
    assert not Scope(tags={"owner": "facilities"}).compile().matches(lb)
    assert not Scope(zones=["z1"]).compile().matches(Labels("tpe1", "room-a", "env-2", DeviceClass.ENV))
