"""Commissioning helper: walk an unknown SNMP agent and name the profile that fits it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devices.errors import TransportError
from devices.snmp_codec import NO_SUCH, SnmpValue, oid_key
from devices.snmp_profile import SnmpProfile
from devices.snmp_transport import SnmpTarget

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"


@dataclass(slots=True)
class SnmpProbeReport:
    """What a probe found: identity, the walked OIDs (up to the limit) and any error."""

    target: str
    sys_object_id: str | None = None
    sys_descr: str | None = None
    sys_name: str | None = None
    values: dict[str, SnmpValue] = field(default_factory=dict)
    truncated: bool = False
    error: str | None = None

    def has(self, oid: str) -> bool:
        """True when `oid` or anything below it was seen."""
        prefix = oid + "."
        return oid in self.values or any(o.startswith(prefix) for o in self.values)


def _text(v: SnmpValue | None) -> str | None:
    if v is None or v is NO_SUCH:
        return None
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


async def probe_snmp(
    target: SnmpTarget, root: str = "1.3.6.1", limit: int = 5000, max_repetitions: int = 50
) -> SnmpProbeReport:
    """GET the system group, then GETBULK-walk `root` up to `limit` varbinds."""
    report = SnmpProbeReport(target=f"{target.host}:{target.port}")
    try:
        ident = await target.get([SYS_DESCR, SYS_OBJECT_ID, SYS_NAME])
        report.sys_descr = _text(ident.get(SYS_DESCR))
        report.sys_object_id = _text(ident.get(SYS_OBJECT_ID))
        report.sys_name = _text(ident.get(SYS_NAME))
        report.values = await target.walk_many([root], max_repetitions, limit=limit)
    except TransportError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    report.values.update({k: v for k, v in (("1.3.6.1.2.1.1.2.0", report.sys_object_id),) if v})
    report.truncated = len(report.values) >= limit
    return report


def _sys_oid_match(sys_oid: str | None, prefixes: list[str]) -> str | None:
    if not sys_oid:
        return None
    sys_oid = sys_oid.lstrip(".")
    return next((p for p in prefixes if sys_oid == p or sys_oid.startswith(p + ".")), None)


def match_profiles(report: SnmpProbeReport, profiles: Iterable[SnmpProfile]) -> list[tuple[str, str]]:
    """(model, reason) of every profile whose `match` fits; most specific first.

    A profile fits when its sysObjectID prefixes (if any) include the device's and every
    requires_oids entry (if any) was seen in the walk; a profile with neither never fits.
    """
    found: list[tuple[int, str, str]] = []
    for p in profiles:
        m = p.match
        if not m.sys_object_ids and not m.requires_oids:
            continue
        reasons: list[str] = []
        if m.sys_object_ids:
            hit = _sys_oid_match(report.sys_object_id, m.sys_object_ids)
            if hit is None:
                continue
            reasons.append(f"sysObjectID {report.sys_object_id} under {hit}")
        missing = [o for o in m.requires_oids if not report.has(o)]
        if missing:
            continue
        if m.requires_oids:
            reasons.append(f"implements {', '.join(m.requires_oids)}")
        score = (2 if m.sys_object_ids else 0) + len(m.requires_oids)
        found.append((score, p.model, "; ".join(reasons)))
    found.sort(key=lambda t: (-t[0], t[1]))
    return [(model, reason) for _, model, reason in found]


def format_snmp_probe(report: SnmpProbeReport, matches: list[tuple[str, str]]) -> str:
    """Human-readable probe result for the commissioning CLI."""
    lines = [
        f"SNMP probe of {report.target}",
        f"  sysDescr:    {report.sys_descr or '-'}",
        f"  sysObjectID: {report.sys_object_id or '-'}",
        f"  sysName:     {report.sys_name or '-'}",
        f"  walked:      {len(report.values)} OIDs" + (" (limit reached)" if report.truncated else ""),
    ]
    if report.error:
        lines.append(f"  error:       {report.error}")
    enterprises = sorted(
        {".".join(o.split(".")[:7]) for o in report.values if o.startswith("1.3.6.1.4.1.")}, key=oid_key
    )
    if enterprises:
        lines.append(f"  enterprise subtrees: {', '.join(enterprises)}")
    if matches:
        lines.append("  matching profiles:")
        lines.extend(f"    {model}: {reason}" for model, reason in matches)
    else:
        lines.append("  no shipped profile matches: write one (devices/profiles/<model>.yaml)")
    return "\n".join(lines)
