"""Device-level quality of a poll that worked: does the profile fit the device that answered? (pure)

A device that answers every request with ILLEGAL DATA ADDRESS, or an SNMP agent that implements none of a
profile's objects, is reachable, yet reports nothing: each metric is `unavailable`. Calling that poll
`good` shows a misfit (wrong profile, wrong unit id, wrong MIB) as health. So a poll's quality is
`unavailable` when no measurement has a good value, `partial` when most of them are unavailable, and
`good` otherwise; the note says how many are missing and suggests the likely cause. Metrics named
`ident_*` identify the device (manufacturer, model) and are not measurements: a device that answers only
those still reports nothing about the room.
"""

from __future__ import annotations

from collections.abc import Sequence

from devices.reading import Metric, Quality

IDENT_PREFIX = "ident_"


def device_quality(metrics: Sequence[Metric]) -> tuple[Quality, str | None]:
    """The poll's quality from its metrics, and a note for `partial`/`unavailable` (None when good)."""
    measures = [m for m in metrics if not m.name.startswith(IDENT_PREFIX)]
    if not measures:
        return (Quality.GOOD, None) if metrics else (Quality.UNAVAILABLE, "the device returned no metrics")
    missing = sum(1 for m in measures if m.quality is not Quality.GOOD)
    if missing == len(measures):
        only = " (only identification answered)" if len(metrics) > len(measures) else ""
        note = f"no data: {missing} of {len(measures)} metrics unavailable{only} — wrong profile or unit id?"
        return Quality.UNAVAILABLE, note
    if missing * 2 > len(measures):
        return (
            Quality.PARTIAL,
            f"{missing} of {len(measures)} metrics unavailable (not implemented?) — wrong profile?",
        )
    return Quality.GOOD, None


__all__ = ["IDENT_PREFIX", "device_quality"]
