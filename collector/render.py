"""Plain-text rendering of poll results for the terminal (pure)."""

from __future__ import annotations

from devices.reading import PollResult, Quality, Value


def format_value(value: Value) -> str:
    """A value as a person reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_poll(result: PollResult, tz_name: str = "Asia/Taipei") -> str:
    """One device's poll: a header line, then one line per metric with its quality."""
    from zoneinfo import ZoneInfo

    local = result.ts.astimezone(ZoneInfo(tz_name))
    ref = result.ref
    state = "OK" if result.error is None else f"{result.quality.value.upper()} {result.error}"
    lines = [
        f"{ref.device} [{ref.device_class.value} {ref.model}] {local:%Y-%m-%d %H:%M:%S%z} "
        f"{result.duration_s * 1000:.0f} ms {state}"
    ]
    width = max((len(m.name) for m in result.metrics), default=0)
    for m in result.metrics:
        shown = format_value(m.value) if m.quality is Quality.GOOD else "-"
        flag = "" if m.quality is Quality.GOOD else f"  ({m.quality.value})"
        lines.append(f"  {m.name:<{width}}  {shown}{flag}")
    return "\n".join(lines)


def format_summary_line(results: list[PollResult]) -> str:
    """How many devices answered, e.g. '20/21 devices good; dead: ups-b (comm_error)'."""
    bad = [r for r in results if r.error is not None]
    tail = "; ".join(f"{r.ref.device} ({r.quality.value})" for r in bad)
    return f"{len(results) - len(bad)}/{len(results)} devices good" + (f"; failing: {tail}" if bad else "")
