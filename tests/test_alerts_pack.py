"""The shipped machine-room rule pack: valid, checked against the metric catalog, every number sourced,
and combined with a site's own rules as documented."""

from __future__ import annotations

import re

import pytest

from alerts.pack import DEFAULT_PACK, combine, load_pack, pack_path
from devices.catalog import builtin_catalog
from siteconfig.alert_rules import GroupRule, RuleSet, validate_rules_against_catalog


def test_the_pack_is_valid_and_fits_the_catalog() -> None:
    rules = load_pack().rules
    assert len(rules) >= 25
    assert validate_rules_against_catalog(rules, builtin_catalog()) == []


def test_every_limit_in_the_pack_names_its_source() -> None:
    """Each trigger level and N+1 count has a comment with a source tag from the file's header."""
    text = pack_path().read_text(encoding="utf-8")
    tags = set(re.findall(r"^#\s+\[([A-Z0-9-]+)\]", text, flags=re.MULTILINE))
    assert {"ASHRAE-R", "ASHRAE-A1", "ASHRAE-ROC", "NFPA110", "TIER", "IEC60038"} <= tags
    unsourced = [
        line.strip()
        for line in text.splitlines()
        if re.match(r"\s+(value|change|min_healthy):", line) and not any(f"[{tag}]" in line for tag in tags)
    ]
    assert unsourced == []


def test_an_offline_device_inhibits_every_metric_rule_of_the_pack() -> None:
    rules = load_pack().rules
    offline = next(r for r in rules if r.id == "device-offline")
    metric_rules = {r.id for r in rules if r.kind in ("threshold", "rate", "match", "dewpoint")}
    assert set(offline.inhibits) == metric_rules, "a new metric rule joins device-offline's inhibits"


def test_a_site_overrides_disables_and_adds_rules() -> None:
    site = [
        {"id": "temp-high", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 25, "clear": 24,
         "scope": {"classes": ["env"]}},
        {"id": "room-b-hot", "kind": "threshold", "metric": "temp_c", "op": "above", "value": 24,
         "scope": {"rooms": ["mr2"], "classes": ["env"]}},
    ]  # fmt: skip
    site_rules = RuleSet.model_validate({"rules": site}).rules
    combined = combine(load_pack().rules, site_rules, ["ups-input-voltage-low", "smoke"], 45.0)
    by_id = {r.id: r for r in combined.rules}
    assert by_id["temp-high"].value == 25  # type: ignore[union-attr]
    assert "room-b-hot" in by_id
    assert "smoke" not in by_id
    assert "ups-input-voltage-low" not in by_id
    assert "ups-input-voltage-low" not in by_id["ups-on-battery"].inhibits, "no inhibition of a missing rule"
    chain = by_id["ups-on-battery"].power_chain  # type: ignore[union-attr]
    assert chain is not None
    assert chain.transfer_s == 45.0
    assert isinstance(by_id["crac-redundancy-lost"], GroupRule)


def test_an_unknown_pack_names_the_packs() -> None:
    with pytest.raises(ValueError, match=f"no rule pack 'dc'; packs: {DEFAULT_PACK}"):
        pack_path("dc")


def test_outbox_drops_fire_on_a_new_drop_and_resolve_when_drops_stop() -> None:
    """The collector's dropped-readings counter only grows: a rise within 10 min fires, none resolves."""
    from datetime import UTC, datetime, timedelta

    from alerts.engine import RuleIndex, evaluate
    from alerts.inputs import Labels, Sample
    from devices.reading import DeviceClass, Quality

    index = RuleIndex([r for r in load_pack().rules if r.id == "outbox-drops"])
    lb = Labels("tpe-hq", "mr1", "collector-edge1", DeviceClass.SYSTEM)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    state, events = None, []
    for minute, dropped in [(0, 0), (1, 0), (2, 7), (3, 7), (20, 7), (21, 7)]:
        now = t0 + timedelta(minutes=minute)
        state, out = evaluate(
            index, state, [Sample(lb, "outbox_dropped_total", now, dropped, Quality.GOOD)], now
        )
        events += [(minute, e.kind) for e in out]
    assert events == [(2, "firing"), (20, "resolved")]
