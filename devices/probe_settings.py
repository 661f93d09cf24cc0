"""Commissioning helper: read a unit once and say which choice of each profile setting fits it."""

from __future__ import annotations

from dataclasses import dataclass

from devices.modbus_profile import ModbusProfile, ProfileSetting, Table
from devices.modbus_reader import ModbusReader, RegisterSource
from devices.reading import Metric, Quality


class _ReadOnce:
    """Register source that reads each block from the device once and answers repeats from memory.

    Every choice decodes the same raw registers: one read means the choices are compared on one
    moment's values, and a slow RS-485 unit is asked once.
    """

    def __init__(self, source: RegisterSource) -> None:
        self._source = source
        self._seen: dict[tuple[Table, int, int, int], list[int] | list[bool]] = {}

    async def read(self, table: Table, address: int, count: int, unit_id: int) -> list[int] | list[bool]:
        """The block from the device the first time, from memory after."""
        key = (table, address, count, unit_id)
        if key not in self._seen:
            self._seen[key] = await self._source.read(table, address, count, unit_id)
        return self._seen[key]


@dataclass(frozen=True, slots=True)
class ChoiceFit:
    """One choice of a setting applied to the unit's reading: the values and what is out of range."""

    choice: str
    metrics: dict[str, Metric]
    outside: dict[str, str]  # probed point → why it does not fit ("outside 5..45", "unavailable")

    @property
    def fits(self) -> bool:
        """Every probed point is a good reading inside its expected range."""
        return not self.outside


@dataclass(frozen=True, slots=True)
class SettingProbe:
    """What the unit's reading says about one setting: every choice's fit and the suggestion, if any."""

    setting: str
    description: str
    fits: list[ChoiceFit]

    @property
    def suggested(self) -> str | None:
        """The only choice that fits, or None when none or several do."""
        fitting = [f.choice for f in self.fits if f.fits]
        return fitting[0] if len(fitting) == 1 else None


def judge(setting: ProfileSetting, choice: str, metrics: dict[str, Metric]) -> ChoiceFit:
    """Compare one choice's decoded values with the setting's commissioning ranges (pure)."""
    outside: dict[str, str] = {}
    for point, (lo, hi) in setting.probe.items():
        m = metrics.get(point)
        if m is None or m.quality is not Quality.GOOD or not isinstance(m.value, int | float):
            outside[point] = "no reading" if m is None else str(m.quality)
        elif not lo <= m.value <= hi:
            outside[point] = f"outside {lo:g}..{hi:g}"
    return ChoiceFit(choice, metrics, outside)


async def probe_settings(profile: ModbusProfile, source: RegisterSource, unit_id: int) -> list[SettingProbe]:
    """Read the unit once and decode it under every choice of every setting of `profile`."""
    once = _ReadOnce(source)
    baseline = {name: next(iter(s.choices)) for name, s in profile.settings.items()}
    out: list[SettingProbe] = []
    for name, setting in profile.settings.items():
        fits: list[ChoiceFit] = []
        for choice in setting.choices:
            configured = profile.configured({**baseline, name: choice})
            metrics = {m.name: m for m in await ModbusReader(configured, once, unit_id).read()}
            fits.append(judge(setting, choice, metrics))
        out.append(SettingProbe(name, setting.description, fits))
    return out


def format_setting_probes(profile: ModbusProfile, probes: list[SettingProbe]) -> str:
    """Human-readable verdict per setting and the `settings:` line to put in the site file."""
    if not probes:
        return f"profile {profile.model} has no settings to choose: nothing to suggest\n"
    lines: list[str] = []
    suggestion: dict[str, str] = {}
    for probe in probes:
        lines.append(f"setting {probe.setting}: {probe.description}")
        for fit in probe.fits:
            shown = ", ".join(
                f"{name} {_shown(fit.metrics.get(name))}"
                + (f" ({fit.outside[name]})" if name in fit.outside else "")
                for name in sorted({*fit.outside, *profile.settings[probe.setting].probe})
            )
            lines.append(f"  {probe.setting} {fit.choice:<8} {shown}{'   <- fits' if fit.fits else ''}")
        if probe.suggested is not None:
            suggestion[probe.setting] = probe.suggested
        else:
            fitting = [f.choice for f in probe.fits if f.fits]
            why = f"several choices fit ({', '.join(fitting)})" if fitting else "no choice fits"
            lines.append(
                f"  cannot tell {probe.setting}: {why}; check the unit's documentation or compare with a "
                "reference instrument"
            )
    if len(suggestion) == len(probes):
        pairs = ", ".join(f"{k}: {v}" for k, v in suggestion.items())
        lines.append(f"suggested for the site file: settings: {{{pairs}}}")
    return "\n".join(lines) + "\n"


def _shown(m: Metric | None) -> str:
    if m is None or m.value is None:
        return "-"
    return (
        f"{m.value:g}" if isinstance(m.value, int | float) and not isinstance(m.value, bool) else str(m.value)
    )
