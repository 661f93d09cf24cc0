# ruff: noqa: RUF001, RUF002 - zh-TW templates use full-width punctuation, as Traditional Chinese does.
"""Alert rules: the schema of the site file's `alerts:` rules (pydantic v2) and their catalog check.

A rule is one of eight kinds, told apart by `kind`. Every rule has an id (a slug: it becomes part of the
alert's MQTT topic), a severity, a scope (which devices it watches) and optional message templates in
Traditional Chinese and English whose placeholders are checked here, at load, not when an alert fires.
Models are validated once at load; the engine never validates per sample (rules.py → engine.RuleIndex).
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Protocol, Self

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from devices.catalog import Catalog, CatalogMetric
from devices.door import DOOR_STATES
from devices.reading import DeviceClass
from devices.yamlload import Issue, issues_error

Severity = Literal["info", "warning", "critical"]
Op = Literal["above", "below"]
LabelName = Literal["site", "room", "zone", "rack", "device", "class", "metric"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_METRIC = re.compile(r"^[a-z][a-z0-9_]*$")
_METRIC_GLOB = re.compile(r"^[a-z0-9_*?]+$")


def _error(kind: str, msg: str) -> PydanticCustomError:
    # The message travels in ctx so braces in it ({value} placeholders) cannot break pydantic's formatting.
    return PydanticCustomError(kind, "{msg}", {"msg": msg})


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise _error(
            "slug",
            "must be a slug: lowercase letters, digits, '-' or '_' (max 63); a rule id becomes part of "
            "the alert's MQTT topic",
        )
    return value


def _metric(value: str) -> str:
    if not _METRIC.match(value):
        raise _error("metric_name", "a metric name is lower_snake_case (see devices/catalog.yaml)")
    return value


def _metric_glob(value: str) -> str:
    if not _METRIC_GLOB.match(value) or value[0].isdigit() or value[0] == "_":
        raise _error("metric_pattern", "a metric name or a glob of one (alarm_*), lower_snake_case")
    return value


def _raise(issues: Sequence[Issue]) -> PydanticCustomError:
    """`issues_error` whose summary (what a caller outside the YAML loader sees) names the valid choices."""
    parts = []
    for i in issues:
        where = ".".join(str(p) for p in i.get("loc", ()))
        valid = i.get("expected")
        parts.append(
            (f"{where}: " if where else "")
            + i.get("msg", "invalid")
            + (f" (valid: {', '.join(str(v) for v in valid)})" if valid else "")
        )
    return issues_error(issues, "; ".join(parts))


Slug = Annotated[str, AfterValidator(_slug)]
MetricName = Annotated[str, AfterValidator(_metric)]
MetricPattern = Annotated[str, AfterValidator(_metric_glob)]
PositiveSeconds = Annotated[float, Field(gt=0)]
Seconds = Annotated[float, Field(ge=0)]


def is_glob(name: str) -> bool:
    """True when a metric or event name is a glob (`alarm_*`), not one name."""
    return any(c in name for c in "*?[")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------- scope


class Labels(Protocol):
    """What a scope looks at on a device (alerts.inputs.Labels is the engine's implementation)."""

    @property
    def site(self) -> str: ...
    @property
    def room(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def device_class(self) -> DeviceClass | None: ...
    @property
    def zone(self) -> str | None: ...
    @property
    def rack(self) -> str | None: ...
    def tag(self, name: str) -> str | None:
        """The value of tag `name`, or None."""
        ...


@dataclass(frozen=True, slots=True)
class ScopeMatcher:
    """A compiled scope: frozensets (None = no constraint), so a match is a few set lookups."""

    site: str | None
    rooms: frozenset[str] | None
    zones: frozenset[str] | None
    racks: frozenset[str] | None
    devices: frozenset[str] | None
    classes: frozenset[DeviceClass] | None
    tags: tuple[tuple[str, str], ...]

    @property
    def universal(self) -> bool:
        """True when the scope selects nothing: every device matches (the engine skips the check)."""
        return (
            self.site is None
            and not self.tags
            and all(s is None for s in (self.rooms, self.zones, self.racks, self.devices, self.classes))
        )

    def matches(self, lb: Labels) -> bool:
        """Does a device with these labels fall under every selector the scope gives?"""
        if self.site is not None and lb.site != self.site:
            return False
        if self.rooms is not None and lb.room not in self.rooms:
            return False
        if self.devices is not None and lb.device not in self.devices:
            return False
        if self.classes is not None and lb.device_class not in self.classes:
            return False
        if self.zones is not None and lb.zone not in self.zones:
            return False
        if self.racks is not None and lb.rack not in self.racks:
            return False
        return not self.tags or all(lb.tag(k) == v for k, v in self.tags)


class Scope(_Strict):
    """Which devices a rule watches: a device matches when it matches every selector given."""

    site: str | None = Field(None, description="Site id.")
    rooms: list[str] = Field(default_factory=list, description="Room ids (any of).")
    zones: list[str] = Field(default_factory=list, description="Zone ids (any of).")
    racks: list[str] = Field(default_factory=list, description="Rack ids (any of).")
    devices: list[str] = Field(default_factory=list, description="Device ids (any of).")
    classes: list[DeviceClass] = Field(default_factory=list, description="Device classes (any of).")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags the device must carry (all of).")

    def compile(self) -> ScopeMatcher:
        """The matcher the engine uses on every sample."""

        def fs(xs: Sequence[Any]) -> frozenset[Any] | None:
            return frozenset(xs) if xs else None

        return ScopeMatcher(
            self.site,
            fs(self.rooms),
            fs(self.zones),
            fs(self.racks),
            fs(self.devices),
            fs(self.classes),
            tuple(sorted(self.tags.items())),
        )


# ---------------------------------------------------------------------------------------- messages

# Placeholders every device-bound alert can use; each kind adds its own (see `placeholders`).
DEVICE_PARAMS = frozenset({"rule", "severity", "site", "room", "device", "class", "zone", "rack", "since"})
SERIES_PARAMS = DEVICE_PARAMS | {"metric", "value", "unit"}


class Messages(_Strict):
    """Message templates with named placeholders: `{device} 溫度 {value} {unit}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    zh_TW: str = Field(
        validation_alias=AliasChoices("zh_TW", "zh-TW"), min_length=1, description="Traditional Chinese."
    )
    en: str = Field(min_length=1, description="English.")

    def get(self, lang: str) -> str:
        """The template of `lang` ('zh_TW' or 'en')."""
        return self.zh_TW if lang == "zh_TW" else self.en


def template_issues(template: str, valid: frozenset[str], loc: tuple[str | int, ...]) -> list[Issue]:
    """Problems of one template: unknown placeholders (named, with the valid ones), positional or
    attribute fields, format specs (the engine formats values itself), unbalanced braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [
            {"loc": loc, "msg": f"template does not parse: {exc} (write {{{{ and }}}} for literal braces)"}
        ]
    issues: list[Issue] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name == "" or not name.isidentifier():
            issues.append(
                {"loc": loc, "msg": f"placeholder {{{name}}} must be a plain name", "expected": sorted(valid)}
            )
        elif name not in valid:
            issues.append(
                {
                    "loc": loc,
                    "msg": f"unknown placeholder {{{name}}} in this rule's messages",
                    "input": name,
                    "expected": sorted(valid),
                }
            )
        elif spec or conversion:
            issues.append(
                {"loc": loc, "msg": f"placeholder {{{name}}} takes no format: the engine formats values"}
            )
    return issues


# --------------------------------------------------------------------------------------- rule base


class PowerChain(_Strict):
    """UPS alerts carry the margin between battery runtime and the generator's start-and-transfer time."""

    transfer_s: PositiveSeconds = Field(
        description="Seconds from mains failure until the generator carries the load (start + transfer)."
    )
    genset: str | None = Field(
        None,
        description="Generator device id; default: the genset in the UPS's room, else the site's gensets.",
    )
    fresh_s: PositiveSeconds = Field(
        300.0, description="Runtime and generator readings older than this count as unknown."
    )


class _RuleBase(_Strict):
    id: Slug = Field(description="Rule id (slug), unique in the site; part of every alert's dedup key.")
    severity: Severity = "warning"
    scope: Scope = Field(default_factory=Scope, description="Which devices the rule watches.")
    messages: Messages | None = Field(None, description="Templates; defaults per kind when absent.")
    description: str = ""
    inhibits: list[Slug] = Field(
        default_factory=list, description="Rule ids whose alerts this one suppresses while it fires."
    )
    inhibit_equal: list[LabelName] = Field(
        default_factory=lambda: list[LabelName](("site", "room")),
        description="Labels that must be equal for the inhibition to apply.",
    )

    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset()
    BASE_PARAMS: ClassVar[frozenset[str]] = SERIES_PARAMS

    @property
    def hold_s(self) -> float:
        """How long the condition must hold before the alert fires (0: at once)."""
        return float(getattr(self, "hold_for_s", 0.0))

    def placeholders(self) -> frozenset[str]:
        """Placeholders this rule's templates may use."""
        extra = self.EXTRA_PARAMS
        if getattr(self, "power_chain", None) is not None:
            extra = extra | {"margin"}
        return self.BASE_PARAMS | extra

    def default_messages(self) -> Messages:
        """Templates used when the rule gives none (the engine appends forecast and margin to these)."""
        return Messages(zh_TW="{device} {metric} = {value} {unit}", en="{device} {metric} = {value} {unit}")

    @model_validator(mode="after")
    def _templates(self) -> Self:
        if self.messages is None:
            return self
        valid = self.placeholders()
        issues = template_issues(self.messages.zh_TW, valid, ("messages", "zh_TW")) + template_issues(
            self.messages.en, valid, ("messages", "en")
        )
        if issues and "margin" not in valid and any(i.get("input") == "margin" for i in issues):
            issues.append({"loc": ("messages",), "msg": "{margin} needs a power_chain section on the rule"})
        if issues:
            raise _raise(issues)
        return self


def _op_words(op: Op) -> tuple[str, str]:
    return ("高於", "above") if op == "above" else ("低於", "below")


class _LevelRule(_RuleBase):
    """Threshold semantics shared by `threshold` and `dewpoint`."""

    op: Op = Field(description="above: too high is bad; below: too low is bad.")
    value: float = Field(description="Trigger level: fires strictly beyond it (above: value > limit).")
    clear: float | None = Field(
        None,
        description="Clear level on the safe side (hysteresis): resolves at or beyond it "
        "(above: value <= clear). Default: the trigger level.",
    )
    hold_for_s: Seconds = Field(0.0, description="Seconds beyond the trigger level before firing.")
    forecast_window_s: PositiveSeconds = Field(900.0, description="Window of the time-to-limit trend.")
    forecast_to: float | None = Field(
        None, description="Level the forecast counts down to (e.g. the critical limit); default: value."
    )

    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"limit", "clear", "op", "forecast"})

    @property
    def clear_level(self) -> float:
        """The level that resolves a firing alert."""
        return self.value if self.clear is None else self.clear

    def triggered(self, x: float) -> bool:
        """Is `x` strictly beyond the trigger level?"""
        return x > self.value if self.op == "above" else x < self.value

    def cleared(self, x: float) -> bool:
        """Is `x` at or beyond the clear level, on the safe side?"""
        c = self.clear_level
        return x <= c if self.op == "above" else x >= c

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        c = self.clear
        if c is not None and (c > self.value if self.op == "above" else c < self.value):
            side = "at or below" if self.op == "above" else "at or above"
            raise _raise(
                [
                    {
                        "loc": ("clear",),
                        "input": c,
                        "msg": f"clear must be on the safe side of the trigger: {side} value "
                        f"{self.value:g} for op {self.op} (it is the level that ends the alert)",
                    }
                ]
            )
        return self

    def default_messages(self) -> Messages:
        """'{device} {metric} {value} {unit}，高於 {limit} {unit}' and English alike."""
        zh, en = _op_words(self.op)
        return Messages(
            zh_TW=f"{{device}} {{metric}} {{value}} {{unit}}，{zh} {{limit}} {{unit}}",
            en=f"{{device}} {{metric}} {{value}} {{unit}} {en} {{limit}} {{unit}}",
        )


# ------------------------------------------------------------------------------------------- kinds


class ThresholdRule(_LevelRule):
    """Fires when a numeric metric is beyond `value` for `hold_for_s`; resolves at the `clear` level."""

    kind: Literal["threshold"]
    metric: MetricName
    power_chain: PowerChain | None = None


class DewpointRule(_LevelRule):
    """Threshold on the dew point derived from temperature and RH of one device in one poll."""

    kind: Literal["dewpoint"]
    temp_metric: MetricName = "temp_c"
    rh_metric: MetricName = "rh_pct"

    EXTRA_PARAMS: ClassVar[frozenset[str]] = _LevelRule.EXTRA_PARAMS | {"temp", "rh"}

    @property
    def derived_metric(self) -> str:
        """The derived series' metric name: temp_c → dew_point_c, probe2_temp_c → probe2_dew_point_c."""
        return self.temp_metric.removesuffix("temp_c") + "dew_point_c"

    @model_validator(mode="after")
    def _units(self) -> Self:
        issues: list[Issue] = []
        if not self.temp_metric.endswith("temp_c"):
            issues.append({"loc": ("temp_metric",), "msg": "must be a temperature in °C (…temp_c)"})
        if not self.rh_metric.endswith("rh_pct"):
            issues.append({"loc": ("rh_metric",), "msg": "must be a relative humidity in % (…rh_pct)"})
        if issues:
            raise _raise(issues)
        return self


class RateRule(_RuleBase):
    """Fires when a metric changes by `change` or more within `window_s` (rise, fall or either)."""

    kind: Literal["rate"]
    metric: MetricName
    op: Literal["rise", "fall", "any"] = "rise"
    change: float = Field(gt=0, description="Change in the metric's unit that fires (5 = 5 °C).")
    window_s: PositiveSeconds = Field(description="Look-back window of the change.")
    clear_change: float | None = Field(
        None, ge=0, description="Resolves once the change in the window is below this (default: change)."
    )
    hold_for_s: Seconds = 0.0

    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"change", "delta", "window_min", "op", "limit"})

    @property
    def clear_level(self) -> float:
        """The change below which a firing rate alert resolves."""
        return self.change if self.clear_change is None else self.clear_change

    @model_validator(mode="after")
    def _clear(self) -> Self:
        if self.clear_change is not None and self.clear_change > self.change:
            raise _raise(
                [{"loc": ("clear_change",), "input": self.clear_change, "msg": "must not exceed change"}]
            )
        return self

    def default_messages(self) -> Messages:
        """'{device} {metric} {window_min} 分鐘內變化 {delta} {unit}' and English alike."""
        return Messages(
            zh_TW="{device} {metric} {window_min} 分鐘內變化 {delta} {unit}（上限 {change} {unit}）",
            en="{device} {metric} changed {delta} {unit} within {window_min} min (limit {change} {unit})",
        )


class StaleRule(_RuleBase):
    """Fires when a metric (or, without `metric`, any metric of a device) had no good value for after_s."""

    kind: Literal["stale"]
    metric: MetricName | None = None
    after_s: PositiveSeconds

    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"after_min", "limit"})

    def default_messages(self) -> Messages:
        """'{device} {metric} 已 {after_min} 分鐘無有效資料' and English alike."""
        return Messages(
            zh_TW="{device} {metric} 已超過 {after_min} 分鐘無有效資料",
            en="{device} {metric}: no good data for over {after_min} min",
        )


class _Condition(_Strict):
    """Exactly one of states / not_states / equals (and, for group members, above / below)."""

    states: list[str] | None = Field(None, min_length=1, description="Fires (holds) in any of these states.")
    not_states: list[str] | None = Field(None, min_length=1, description="Fires (holds) in none of these.")
    equals: bool | None = Field(None, description="For bool metrics: true or false.")

    CONDITION_FIELDS: ClassVar[tuple[str, ...]] = ("states", "not_states", "equals")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [f for f in self.CONDITION_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            msg = "give exactly one condition" if not given else f"give only one condition, not {given}"
            raise _raise([{"msg": msg, "expected": list(self.CONDITION_FIELDS)}])
        return self

    def holds(self, value: object) -> bool:
        """Does a good value satisfy the condition? (Wrong types never do.)"""
        if self.equals is not None:
            return isinstance(value, bool) and value is self.equals
        if self.states is not None:
            return isinstance(value, str) and value in self.states
        if self.not_states is not None:
            return isinstance(value, str) and value not in self.not_states
        return False

    def expected_text(self) -> str:
        """'on, standby' / 'not auto' / 'true': what the condition asks, for messages."""
        if self.equals is not None:
            return str(self.equals).lower()
        if self.states is not None:
            return ", ".join(self.states)
        return "not " + ", ".join(self.not_states or ())


class MatchRule(_RuleBase, _Condition):
    """Fires while a bool or enum metric (or every metric of a glob, alarm_*) matches the condition."""

    kind: Literal["match"]
    metric: MetricPattern
    hold_for_s: Seconds = 0.0
    power_chain: PowerChain | None = None

    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"expected"})

    def default_messages(self) -> Messages:
        """'{device} {metric} = {value}' in both languages."""
        return Messages(zh_TW="{device} {metric} = {value}", en="{device} {metric} = {value}")


class MemberCondition(_Condition):
    """What makes one group member healthy: a state/bool condition or a level on one metric."""

    metric: MetricName
    above: float | None = Field(None, description="Healthy while the value is above this.")
    below: float | None = Field(None, description="Healthy while the value is below this.")

    CONDITION_FIELDS: ClassVar[tuple[str, ...]] = ("states", "not_states", "equals", "above", "below")

    def holds(self, value: object) -> bool:
        """Is a member with this good value healthy?"""
        if self.above is None and self.below is None:
            return _Condition.holds(self, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.above is not None:
            return value > self.above
        return self.below is not None and value < self.below


GroupLabel = Literal["site", "room", "zone"]


class GroupRule(_RuleBase):
    """Redundancy: fires when fewer than `min_healthy` devices in a group are healthy (N+1 lost)."""

    kind: Literal["group"]
    healthy_when: MemberCondition
    min_healthy: int = Field(ge=1)
    group_by: list[GroupLabel] = Field(
        default_factory=lambda: list[GroupLabel](("site", "room")), min_length=1
    )
    member_stale_s: PositiveSeconds = Field(
        300.0, description="A member without a good reading for this long, or offline, is unhealthy."
    )
    hold_for_s: Seconds = 0.0

    BASE_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {"rule", "severity", "site", "room", "zone", "class", "metric", "since"}
    )
    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset(
        {"healthy", "total", "min_healthy", "unhealthy", "limit"}
    )

    @model_validator(mode="after")
    def _site_first(self) -> Self:
        if len(set(self.group_by)) != len(self.group_by):
            raise _raise([{"loc": ("group_by",), "msg": "a label is listed twice"}])
        return self

    def default_messages(self) -> Messages:
        """'{room} 正常 {healthy}/{total}，少於 {min_healthy}' and English alike."""
        return Messages(
            zh_TW="{room} {class} 正常運轉 {healthy}/{total} 台，少於所需 {min_healthy} 台（{unhealthy}）",
            en="{room} {class}: {healthy} of {total} healthy, fewer than {min_healthy} ({unhealthy})",
        )


class EventRule(_RuleBase):
    """Fires on a trap or door event; an instantaneous alert.

    It resolves `resolve_after_s` after the last matching event (a repeat while it fires extends it, no
    second firing), or at once on an event named in `resolve_names` (door `closed`). With
    `resolve_after_s: null` only a resolve event ends it; acknowledging is the lifecycle layer's business.
    """

    kind: Literal["event"]
    event: Literal["trap", "door"] | None = Field(None, description="Event kind; default: either.")
    names: list[str] = Field(
        min_length=1, description="Event names (trap names, door states); globs allowed."
    )
    resolve_names: list[str] = Field(default_factory=list, description="Events that end the alert.")
    resolve_after_s: PositiveSeconds | None = 300.0
    power_chain: PowerChain | None = None

    BASE_PARAMS: ClassVar[frozenset[str]] = DEVICE_PARAMS
    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"event", "source", "value"})

    @model_validator(mode="after")
    def _door_states(self) -> Self:
        if self.event != "door":
            return self
        issues: list[Issue] = []
        for field_name in ("names", "resolve_names"):
            for i, name in enumerate(getattr(self, field_name)):
                if not is_glob(name) and name not in DOOR_STATES:
                    issues.append(
                        {
                            "loc": (field_name, i),
                            "input": name,
                            "msg": "not a door state",
                            "expected": list(DOOR_STATES),
                        }
                    )
        if issues:
            raise _raise(issues)
        return self

    def default_messages(self) -> Messages:
        """'{device}：{event}' in both languages."""
        return Messages(zh_TW="{device}（{room}）事件：{event}", en="{device} ({room}) event: {event}")


class OfflineRule(_RuleBase):
    """Fires when a device (or a collector connection) has reported offline for `hold_for_s`."""

    kind: Literal["offline"]
    target: Literal["device", "collector"] = "device"
    hold_for_s: Seconds = 0.0

    BASE_PARAMS: ClassVar[frozenset[str]] = DEVICE_PARAMS
    EXTRA_PARAMS: ClassVar[frozenset[str]] = frozenset({"reason", "target"})

    def default_messages(self) -> Messages:
        """'{device} 離線：{reason}' and English alike."""
        return Messages(zh_TW="{device}（{room}）離線：{reason}", en="{device} ({room}) offline: {reason}")


Rule = Annotated[
    ThresholdRule | RateRule | StaleRule | MatchRule | DewpointRule | GroupRule | EventRule | OfflineRule,
    Field(discriminator="kind"),
]
AnyRule = (
    ThresholdRule | RateRule | StaleRule | MatchRule | DewpointRule | GroupRule | EventRule | OfflineRule
)


class RuleSet(_Strict):
    """The rules of a site (the `alerts:` section's `rules`): ids unique, inhibitions pointing at rules."""

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> Self:
        issues: list[Issue] = []
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                issues.append({"loc": ("rules", i, "id"), "input": rule.id, "msg": "rule id used twice"})
            seen.add(rule.id)
        ids = sorted(seen)
        for i, rule in enumerate(self.rules):
            for j, target in enumerate(rule.inhibits):
                if target not in seen or target == rule.id:
                    issues.append(
                        {
                            "loc": ("rules", i, "inhibits", j),
                            "input": target,
                            "msg": "inhibits names no other rule",
                            "expected": [x for x in ids if x != rule.id],
                        }
                    )
        if issues:
            raise _raise(issues)
        return self


# ----------------------------------------------------------------------------------- catalog check

Need = Literal["number", "condition", "any"]


def _example(name: str) -> str:
    # A concrete name a catalog pattern stands for, so a rule's glob can be tried against it.
    return name.replace("<n>", "1").replace("<name>", "x")


def _entries_for(entries: Sequence[CatalogMetric], metric: str) -> list[CatalogMetric]:
    if is_glob(metric):
        return [e for e in entries if fnmatch.fnmatchcase(_example(e.name), metric)]
    exact = [e for e in entries if e.name == metric]
    return exact or [e for e in entries if e.is_pattern and e.matches(metric)]


def _metric_refs(rule: AnyRule) -> Iterator[tuple[tuple[str, ...], str, Need, _Condition | None]]:
    if isinstance(rule, ThresholdRule | RateRule):
        yield ("metric",), rule.metric, "number", None
    elif isinstance(rule, DewpointRule):
        yield ("temp_metric",), rule.temp_metric, "number", None
        yield ("rh_metric",), rule.rh_metric, "number", None
    elif isinstance(rule, StaleRule) and rule.metric is not None:
        yield ("metric",), rule.metric, "any", None
    elif isinstance(rule, MatchRule):
        yield ("metric",), rule.metric, "condition", rule
    elif isinstance(rule, GroupRule):
        cond = rule.healthy_when
        level = cond.above is not None or cond.below is not None
        yield (
            ("healthy_when", "metric"),
            cond.metric,
            "number" if level else "condition",
            None if level else cond,
        )


def _kind_fits(entry: CatalogMetric, need: Need, cond: _Condition | None) -> bool:
    if need == "number":
        return entry.type in ("float", "int")
    if need == "condition" and cond is not None:
        return entry.type == ("bool" if cond.equals is not None else "enum")
    return True


def _type_issues(
    loc: tuple[str | int, ...], metric: str, entry: CatalogMetric, need: Need, cond: _Condition | None
) -> list[Issue]:
    if need == "number" and entry.type not in ("float", "int"):
        return [
            {"loc": loc, "input": metric, "msg": f"{entry.name} is {entry.type}; this rule needs a number"}
        ]
    if need != "condition" or cond is None:
        return []
    cloc = loc[:-1]
    if cond.equals is not None and entry.type != "bool":
        hint = f": use states with {', '.join(entry.values)}" if entry.values else ""
        return [{"loc": (*cloc, "equals"), "msg": f"{entry.name} is {entry.type}, not bool{hint}"}]
    wanted = cond.states if cond.states is not None else cond.not_states
    if wanted is None:
        return []
    which = "states" if cond.states is not None else "not_states"
    if entry.type == "bool":
        return [{"loc": (*cloc, which), "msg": f"{entry.name} is bool: use equals: true or false"}]
    if entry.type != "enum":
        return [{"loc": (*cloc, which), "msg": f"{entry.name} is {entry.type}: states need an enum metric"}]
    return [
        {
            "loc": (*cloc, which, k),
            "input": s,
            "msg": f"not a state of {entry.name}",
            "expected": entry.values,
        }
        for k, s in enumerate(wanted)
        if s not in entry.values
    ]


def validate_rules_against_catalog(rules: Sequence[AnyRule], catalog: Catalog) -> list[Issue]:
    """Rules that name a metric their scoped device classes do not have, or use it wrongly.

    Each issue's `loc` starts at the rule's index in `rules` (prefix it with the section's path, e.g.
    ("alerts", "rules"), and pass the issues to `issues_error` or `located`). A rule scoped to classes must
    find the metric in each of them; an unscoped rule in at least one class. Valid choices are listed.
    """
    issues: list[Issue] = []
    for i, rule in enumerate(rules):
        classes = list(rule.scope.classes) or list(catalog.classes)
        for field_loc, metric, need, cond in _metric_refs(rule):
            loc: tuple[str | int, ...] = (i, *field_loc)
            found: list[CatalogMetric] = []
            for cls in classes:
                entries = catalog.classes.get(cls, [])
                hits = _entries_for(entries, metric)
                found += hits
                if not hits and rule.scope.classes:
                    issues.append(
                        {
                            "loc": loc,
                            "input": metric,
                            "msg": f"device class {cls} has no metric {metric}",
                            "expected": [e.name for e in entries],
                        }
                    )
            if not found and not rule.scope.classes:
                names = sorted({e.name for cls in classes for e in catalog.classes.get(cls, [])})
                issues.append(
                    {
                        "loc": loc,
                        "input": metric,
                        "msg": f"no device class has metric {metric}",
                        "expected": names,
                    }
                )
            entries = list({e.name: e for e in found}.values())
            if is_glob(metric):
                # A glob spans entries of several types (alarm_* covers alarm_<name> and alarm_count):
                # judge the ones of the kind the condition asks for, or all if none is.
                entries = [e for e in entries if _kind_fits(e, need, cond)] or entries[:1]
            for entry in entries:
                issues += _type_issues(loc, metric, entry, need, cond)
    return issues
