"""What every device profile has, whatever its protocol (one YAML file per device model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from devices.reading import DeviceClass


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
