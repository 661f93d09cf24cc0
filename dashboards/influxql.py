"""InfluxQL targets for the SDK's panel builders, and the catalog lookup every query goes through.

The SDK ships no InfluxDB query type; a `cog.variants.Dataquery` subclass whose `to_json()` gives the raw
InfluxQL target Grafana's InfluxDB datasource understands works with every panel builder. Field names
come from the metric catalog (`field()` raises for a name the catalog does not have), so a renamed metric
breaks the build, not the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

from devices.catalog import builtin_catalog
from devices.reading import DeviceClass

ResultFormat = Literal["time_series", "table"]

# The datasource every panel and variable uses (dashboards/provisioning/datasources/roomguard.yaml).
DATASOURCE_UID = "roomguard-influxdb"
DATASOURCE_TYPE = "influxdb"

# The template variables of every dashboard, as InfluxQL regex conditions (multi-value: Grafana expands a
# selection to (a|b) and "All" to the variable's allValue `.*`).
SITE = '"site" =~ /^$site$/'
ROOM = '"room" =~ /^$room$/'
DEVICE = '"device" =~ /^$device$/'
PER_INTERVAL = "GROUP BY time($__interval)"

# The device classes a physical device can have (system and compliance are roomguard's own readings).
OWN_CLASSES = frozenset({DeviceClass.SYSTEM, DeviceClass.COMPLIANCE})


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target: {"refId", "query", "rawQuery": true, "resultFormat"} (and an alias)."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat, alias: str = "") -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it."""
        out: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for `InfluxQLQuery`, what `Panel.with_target()` takes."""

    def __init__(
        self, query: str, *, ref_id: str = "A", fmt: ResultFormat = "time_series", alias: str = ""
    ) -> None:
        self._internal = InfluxQLQuery(ref_id, query, fmt, alias)

    def build(self) -> InfluxQLQuery:
        """The target."""
        return self._internal


@dataclass(frozen=True)
class Field:
    """A catalog metric as stored in InfluxDB: measurement (the device class), field name, unit."""

    measurement: str
    name: str
    unit: str

    @property
    def q(self) -> str:
        """The field name quoted for InfluxQL."""
        return f'"{self.name}"'

    @property
    def m(self) -> str:
        """The measurement quoted for InfluxQL."""
        return f'"{self.measurement}"'


def field(device_class: DeviceClass, name: str) -> Field:
    """The catalog's metric `name` of `device_class`; KeyError when the catalog has no such metric."""
    entry = builtin_catalog().find(device_class, name)
    if entry is None or entry.is_pattern:
        raise KeyError(f"{device_class}.{name} is not a metric of the catalog (devices/catalog.yaml)")
    return Field(str(device_class), name, entry.unit)


def device_classes() -> list[str]:
    """The catalog's classes of physical devices, in catalog order."""
    return [str(c) for c in builtin_catalog().classes if c not in OWN_CLASSES]


def measurements_regex(classes: list[str]) -> str:
    """A FROM clause for several measurements: /^(a|b)$/."""
    return "/^(" + "|".join(classes) + ")$/"
