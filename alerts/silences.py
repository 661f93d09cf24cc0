"""What people write when they silence alerts, checked the same way for the CLI and the web (pure):
durations like `30m`, matcher names, and the matchers that silence exactly one alert."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta

from alerts.lifecycle import AlertView

# The names every alert can carry: `rule` (the rule id) and the labels the engine sets; device tags
# (site file `tags:`) are further label names, known once an alert has carried them.
STANDARD_MATCHERS = ("rule", "site", "room", "device", "metric", "class", "zone", "rack")
DURATION_FORM = "a number and s, m, h or d, e.g. 30m, 2h, 1d"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# fnmatch's special characters, each written as a one-character class so it matches only itself.
_GLOB = re.compile(r"([*?\[])")


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1.5d` as a positive timedelta; ValueError naming the valid form."""
    m = _DURATION.match(text.strip())
    if m is None or float(m[1]) <= 0:
        raise ValueError(f"got {text!r}; {DURATION_FORM}")
    return timedelta(seconds=float(m[1]) * _UNIT_S[m[2]])


def literal(value: str) -> str:
    """A matcher value that matches `value` only (its glob characters escaped)."""
    return _GLOB.sub(r"[\1]", value)


def alert_matchers(alert: AlertView) -> dict[str, str | list[str]]:
    """The matchers that silence this alert: its rule and every one of its labels, taken literally."""
    out: dict[str, str | list[str]] = {"rule": literal(alert.rule_id)}
    out.update((k, literal(v)) for k, v in sorted(alert.labels.items()))
    return out


def matcher_names(seen: Iterable[str] = ()) -> tuple[str, ...]:
    """The valid matcher names: the standard ones, then label names `seen` on stored alerts."""
    extra = sorted(set(seen) - set(STANDARD_MATCHERS))
    return (*STANDARD_MATCHERS, *extra)


def check_matcher_names(matchers: Mapping[str, object], valid: Iterable[str]) -> None:
    """ValueError naming the first unknown matcher name and the valid ones (a misspelt name would
    silently mute nothing)."""
    names = tuple(valid)
    for name in matchers:
        if name not in names:
            raise ValueError(f"unknown matcher {name!r}; valid: {', '.join(names)}")
