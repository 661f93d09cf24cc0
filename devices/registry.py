"""Finds and loads device profiles: one YAML file per model, validated by its protocol's schema."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from devices.modbus_profile import ModbusProfile
    from devices.snmp_profile import SnmpProfile

    Profile = Union[ModbusProfile, SnmpProfile]  # noqa: UP007 - forward refs only

BUILTIN_DIR = Path(__file__).with_name("profiles")
PROTOCOLS = ("modbus", "snmp")


class ProfileError(ValueError):
    """A profile file is missing, unreadable or invalid; the message names the file and line."""


def load_profile(path: Path) -> Profile:
    """Load and validate one profile file, picking the schema from its `protocol:` key."""
    from devices.modbus_profile import ModbusProfile
    from devices.snmp_profile import SnmpProfile
    from devices.yamlload import ConfigError, load_yaml_model, read_yaml

    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        raise ProfileError(exc.format()) from exc
    protocol = raw.get("protocol") if isinstance(raw, dict) else None
    schema: type[ModbusProfile] | type[SnmpProfile]
    if protocol == "modbus":
        schema = ModbusProfile
    elif protocol == "snmp":
        schema = SnmpProfile
    else:
        raise ProfileError(f"{path}: protocol: got {protocol!r}; valid choices: {', '.join(PROTOCOLS)}")
    try:
        profile = load_yaml_model(path, schema)
    except ConfigError as exc:
        raise ProfileError(exc.format()) from exc
    if profile.model != path.stem:
        raise ProfileError(f"{path}: model: {profile.model!r} must equal the file name {path.stem!r}")
    return profile


class ProfileRegistry:
    """The profiles a site may use, by model name (explicit: no class scanning)."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self._profiles = dict(profiles)

    @classmethod
    def from_dirs(cls, *dirs: Path) -> ProfileRegistry:
        """Load every `*.yaml` in the given folders; later folders override earlier ones."""
        found: dict[str, Profile] = {}
        for d in dirs:
            for path in sorted(d.glob("*.yaml")):
                found[path.stem] = load_profile(path)
        return cls(found)

    @classmethod
    def builtin(cls) -> ProfileRegistry:
        """The profiles shipped with roomguard (loaded once per process)."""
        return _builtin()

    def get(self, model: str) -> Profile:
        """Return the profile for `model` or raise KeyError listing the valid names."""
        try:
            return self._profiles[model]
        except KeyError:
            raise KeyError(f"unknown profile {model!r}; valid choices: {', '.join(self.names())}") from None

    def for_unit(self, model: str, settings: Mapping[str, str]) -> Profile:
        """The profile for `model` with one unit's settings applied (ValueError naming the choices)."""
        from devices.modbus_profile import ModbusProfile

        profile = self.get(model)
        if isinstance(profile, ModbusProfile):
            return profile.configured(settings) if settings or profile.settings else profile
        if settings:
            raise ValueError(f"profile {model} has no setting {', '.join(sorted(settings))}; settings: none")
        return profile

    def names(self) -> list[str]:
        """Sorted model names."""
        return sorted(self._profiles)

    def all(self) -> list[Profile]:
        """Every profile, sorted by model name."""
        return [self._profiles[n] for n in self.names()]


@cache
def _builtin() -> ProfileRegistry:
    return ProfileRegistry.from_dirs(BUILTIN_DIR)


def builtin_profile_names() -> list[str]:
    """Model names of the shipped profiles, without parsing them (for config validation)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
