"""Typed transport errors, each mapped to the quality its readings get."""

from __future__ import annotations

from devices.reading import Quality


class TransportError(Exception):
    """A device could not be read; `quality` says how the readings are flagged."""

    quality: Quality = Quality.COMM_ERROR


class DeviceTimeout(TransportError):
    """The device did not answer within the request timeout."""


class DeviceRefused(TransportError):
    """The connection was refused or reset (nothing listening, gateway down)."""


class AuthFailure(TransportError):
    """Credentials were rejected (SNMPv3 wrong user, auth key or privacy key)."""

    quality = Quality.AUTH_ERROR


class NoSuchObject(TransportError):
    """The device does not implement what was asked (SNMP noSuchObject, Modbus illegal address)."""

    quality = Quality.UNAVAILABLE


class DeviceProtocolError(TransportError):
    """The device answered with a protocol-level error (Modbus exception, SNMP errorStatus)."""


class DecodeError(Exception):
    """Raw data could not be turned into a value (wrong length, bad type)."""
