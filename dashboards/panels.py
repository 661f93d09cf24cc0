"""Panel helpers: every panel gets a zh-TW title, an English description, a unit, the datasource and a
no-value text that tells an outage ("無資料 no data") from data that does not exist yet ("尚無資料 no data
yet": a test run, a quiet room, a check never run), which the real-InfluxDB test relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID, Query

# noValue of a panel whose data may legitimately not exist yet (events, tests, failures): the test of
# every panel's query accepts an empty answer only for panels marked with it.
NO_DATA_YET = "尚無資料 no data yet"
# noValue of every other panel: no answer means the pipeline is not delivering.
NO_DATA = "無資料 no data: check collector and ingest"

DATASOURCE = dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

# Catalog units → Grafana unit ids.
GRAFANA_UNITS = {
    "°C": "celsius", "%": "percent", "V": "volt", "A": "amp", "W": "watt", "Hz": "hertz", "s": "s",
    "kPa": "pressurekpa", "rpm": "rotrpm", "kWh": "kwatth",
}  # fmt: skip

Step = tuple[float | None, str]
AnyPanel = timeseries.Panel | stat.Panel | table.Panel | statetimeline.Panel


def grafana_unit(catalog_unit: str, default: str = "none") -> str:
    """The Grafana unit id of a catalog unit ('' → `default`)."""
    return GRAFANA_UNITS.get(catalog_unit, default) if catalog_unit else default


def thresholds(*steps: Step) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (from -infinity)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def value_map(mapping: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value → (text, color) mappings for enum and bool fields."""
    return [
        dm.ValueMap(
            options={
                k: dm.ValueMappingResult(text=text, color=color, index=i)
                for i, (k, (text, color)) in enumerate(mapping.items())
            }
        )
    ]


def _common(
    p: Any,
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    *,
    sparse: bool,
    w: int,
    h: int,
    steps: Sequence[Step] = (),
    mappings: dict[str, tuple[str, str]] | None = None,
) -> Any:
    p = (
        p.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .no_value(NO_DATA_YET if sparse else NO_DATA)
        .span(w)
        .height(h)
        .targets(list(queries))
    )
    if steps:
        p = p.thresholds(thresholds(*steps))
    if mappings:
        p = p.mappings(value_map(mappings))
    return p


def graph(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    *,
    steps: Sequence[Step] = (),
    sparse: bool = False,
    w: int = 12,
    h: int = 8,
    lo: float | None = None,
    hi: float | None = None,
) -> timeseries.Panel:
    """A time series; thresholds are drawn as bands (line + area)."""
    p = _common(timeseries.Panel(), title, description, queries, unit, sparse=sparse, w=w, h=h, steps=steps)
    if steps:
        style = cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.LINE_AND_AREA)
        p = p.thresholds_style(style)
    if lo is not None:
        p = p.min(lo)
    if hi is not None:
        p = p.max(hi)
    panel: timeseries.Panel = p.span_nulls(True)
    return panel


def single(
    title: str,
    description: str,
    queries: Sequence[Query],
    unit: str,
    *,
    steps: Sequence[Step] = (),
    mappings: dict[str, tuple[str, str]] | None = None,
    sparse: bool = False,
    w: int = 6,
    h: int = 5,
) -> stat.Panel:
    """A stat showing the last value of each series, colored by its thresholds."""
    p = _common(
        stat.Panel(),
        title,
        description,
        queries,
        unit,
        sparse=sparse,
        w=w,
        h=h,
        steps=steps,
        mappings=mappings,
    )
    panel: stat.Panel = p.reduce_options(
        cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    ).color_mode(cm.BigValueColorMode.BACKGROUND)
    return panel


def states(
    title: str,
    description: str,
    queries: Sequence[Query],
    mappings: dict[str, tuple[str, str]],
    *,
    sparse: bool = False,
    w: int = 12,
    h: int = 8,
) -> statetimeline.Panel:
    """A state timeline of an enum or bool field, each state with its text and color."""
    p = _common(
        statetimeline.Panel(), title, description, queries, "none", sparse=sparse, w=w, h=h, mappings=mappings
    )
    panel: statetimeline.Panel = p.merge_values(True).show_value(cm.VisibilityMode.AUTO)
    return panel


def rows(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "none",
    mappings: dict[str, tuple[str, str]] | None = None,
    steps: Sequence[Step] = (),
    sparse: bool = False,
    w: int = 12,
    h: int = 8,
) -> table.Panel:
    """A table of rows (events, the compliance board)."""
    p = _common(
        table.Panel(),
        title,
        description,
        queries,
        unit,
        sparse=sparse,
        w=w,
        h=h,
        steps=steps,
        mappings=mappings,
    )
    panel: table.Panel = p
    return panel


def number_panels(panels: Sequence[cogbuilder.Builder[dm.Panel]]) -> list[cogbuilder.Builder[dm.Panel]]:
    """The panels with ids 1, 2, … in order (stable ids: links and the tests name panels by them)."""
    out: list[cogbuilder.Builder[dm.Panel]] = []
    for i, p in enumerate(panels, start=1):
        out.append(p.id(i))  # type: ignore[attr-defined]
    return out
