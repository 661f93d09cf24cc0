"""What every device profile has, whatever its protocol (one YAML file per device model)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.reading import DeviceClass

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ProfileBase(BaseModel):
    """Common header of a device profile; protocol-specific profiles extend it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Profile id, equal to the file name without .yaml.")
    vendor: str
    title: str = Field(description="Human name of the device model.")
    device_class: DeviceClass
    sources: list[str] = Field(
        default_factory=list, description="Manuals, MIBs or drivers the map was taken from."
    )
    notes: str = ""
    absent: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical metrics of the device class this model cannot provide → why "
        "(checked against devices/catalog.yaml).",
    )

    @field_validator("absent")
    @classmethod
    def _reasons(cls, v: dict[str, str]) -> dict[str, str]:
        for name, reason in v.items():
            if not _NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a lower_snake_case metric name")
            if not reason.strip():
                raise ValueError(f"{name}: give the reason the device cannot provide it")
        return v
