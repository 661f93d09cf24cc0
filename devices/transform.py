"""Raw number → engineering value: scale, offset, fixed point, enums, sentinels, unit conversion (pure)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.reading import Metric, Quality, Value

UnitConversion = Literal["f_to_c", "k_to_c"]


class Transform(BaseModel):
    """How a raw integer or float read from a device becomes a value in the profile's unit.

    Order of application: sentinel check on the raw value, then enum mapping (enum points stop
    there), then ``raw * scale / 2**binary_point + offset``, then unit conversion, then the
    plausibility fallback, then rounding.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(1.0, description="Multiplier applied to the raw value (0.1 for tenths).")
    offset: float = Field(0.0, description="Added after scaling.")
    binary_point: int | None = Field(
        None, ge=0, le=31, description="Binary fixed point: value = raw / 2**binary_point (APC Modbus)."
    )
    convert: UnitConversion | None = Field(None, description="Unit conversion after scaling.")
    enum: dict[int, str] | None = Field(None, description="Raw value → state name; the value is the name.")
    sentinels: list[int] = Field(
        default_factory=list, description="Raw values that mean 'not available' (quality unavailable)."
    )
    valid_range: tuple[float, float] | None = Field(
        None, description="Values outside this range after conversion are quality unavailable."
    )
    plausible_range: tuple[float, float] | None = Field(
        None, description="If the value falls outside, try each of alt_scales in turn (firmware quirks)."
    )
    alt_scales: list[float] = Field(default_factory=list)
    precision: int | None = Field(None, ge=0, le=9, description="Round to this many decimal places.")

    @model_validator(mode="after")
    def _alt_needs_range(self) -> Transform:
        if self.alt_scales and self.plausible_range is None:
            raise ValueError("alt_scales needs plausible_range")
        return self

    @property
    def is_identity(self) -> bool:
        """True when the raw value passes through unchanged."""
        return (
            self.scale == 1.0
            and self.offset == 0.0
            and self.binary_point is None
            and self.convert is None
            and self.plausible_range is None
            and self.precision is None
        )

    def apply(self, name: str, raw: int | float | None) -> Metric:
        """Turn one raw number into a Metric named `name`."""
        if raw is None:
            return Metric(name, None, Quality.UNAVAILABLE)
        if isinstance(raw, int) and raw in self.sentinels:
            return Metric(name, None, Quality.UNAVAILABLE)
        if self.enum is not None:
            if isinstance(raw, float) and raw.is_integer():
                raw = int(raw)
            state = self.enum.get(raw) if isinstance(raw, int) else None
            return Metric(name, state if state is not None else f"unknown_{raw}")
        value = self._scaled(raw, self.scale)
        if self.plausible_range is not None and not _within(value, self.plausible_range):
            for alt in self.alt_scales:
                candidate = self._scaled(raw, alt)
                if _within(candidate, self.plausible_range):
                    value = candidate
                    break
        if self.valid_range is not None and not _within(value, self.valid_range):
            return Metric(name, None, Quality.UNAVAILABLE)
        return Metric(name, self._rounded(value))

    def invert(self, value: Value) -> int | float:
        """Engineering value → raw number (used by the simulators to serve a value)."""
        if self.enum is not None:
            for raw, state in self.enum.items():
                if state == value:
                    return raw
            raise ValueError(f"{value!r} is not one of {sorted(self.enum.values())}")
        if not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number")
        v = float(value)
        if self.convert == "f_to_c":
            v = v * 9.0 / 5.0 + 32.0
        elif self.convert == "k_to_c":
            v = v + 273.15
        v = (v - self.offset) / self.scale
        if self.binary_point is not None:
            v = v * (1 << self.binary_point)
        return v

    def _scaled(self, raw: int | float, scale: float) -> float:
        v = float(raw) * scale
        if self.binary_point is not None:
            v = v / (1 << self.binary_point)
        v += self.offset
        if self.convert == "f_to_c":
            v = (v - 32.0) * 5.0 / 9.0
        elif self.convert == "k_to_c":
            v = v - 273.15
        return v

    def _rounded(self, v: float) -> float | int:
        if self.precision is not None:
            return round(v, self.precision)
        if self.is_identity or (v.is_integer() and self.scale == 1.0 and self.binary_point is None):
            return int(v) if v.is_integer() else v
        # Scaling by 0.1 leaves binary noise (229.90000000000003); 6 significant decimals is far
        # beyond any sensor's resolution.
        return round(v, 6)


def _within(v: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= v <= bounds[1]
