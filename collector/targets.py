"""Turns a site configuration into poll targets: one reader per device, one transport per endpoint."""

from __future__ import annotations

from collector.poller import PollTarget
from devices.door import DoorTracker
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusSerialTransport, ModbusTcpTransport
from devices.reader import DeviceReader
from devices.reading import DeviceClass, DeviceRef
from devices.registry import ProfileRegistry
from devices.snmp_reader import SnmpReader
from devices.snmp_transport import Credentials, SnmpTarget, SnmpV2c, SnmpV3
from siteconfig.config import DeviceConfig, SiteConfig


class TargetBuilder:
    """Builds readers, sharing one Modbus transport per TCP endpoint or serial bus.

    A Modbus TCP gateway in front of an RS-485 bus, or a serial port itself, allows one transaction at
    a time; sharing the transport (and its lock) is what keeps two devices on one bus from colliding.
    """

    def __init__(self, site: SiteConfig, registry: ProfileRegistry) -> None:
        self._site = site
        self._registry = registry
        self._tcp: dict[tuple[str, int], ModbusTcpTransport] = {}
        self._serial: dict[str, ModbusSerialTransport] = {}

    def targets(self, only: set[str] | None = None) -> list[PollTarget]:
        """Poll targets for every configured device (or only those named)."""
        return [self.target(d) for d in self._site.devices if not only or d.id in only]

    def target(self, device: DeviceConfig) -> PollTarget:
        """The poll target of one device."""
        profile = self._registry.get(device.profile)
        ref = DeviceRef(
            site=self._site.site.id,
            room=device.room,
            device=device.id,
            device_class=profile.device_class,
            model=profile.model,
            tags=self._tags(device),
        )
        interval = device.poll_interval_s or self._site.defaults.poll_interval_s
        timeout = device.timeout_s or self._site.defaults.timeout_s
        door = None
        if profile.device_class is DeviceClass.DOOR:
            door_cfg = device.door
            door = DoorTracker(
                held_open_after_s=door_cfg.held_open_after_s if door_cfg else 60.0,
                access_grant_window_s=door_cfg.access_grant_window_s if door_cfg else 10.0,
            )
        return PollTarget(
            ref=ref,
            reader=self._reader(device, profile, timeout),
            interval_s=interval,
            timeout_s=timeout,
            door=door,
            retries=self._site.defaults.retries,  # the poll deadline covers the transport's retries
        )

    def _tags(self, device: DeviceConfig) -> dict[str, str]:
        tags = dict(device.tags)
        if device.zone:
            tags["zone"] = device.zone
        if device.rack:
            tags["rack"] = device.rack
        return tags

    def _reader(self, device: DeviceConfig, profile: object, timeout: float) -> DeviceReader:
        retries = self._site.defaults.retries
        if device.modbus is not None:
            key = (device.modbus.host, device.modbus.port)
            tcp = self._tcp.get(key)
            if tcp is None:
                tcp = self._tcp[key] = ModbusTcpTransport(device.modbus.host, device.modbus.port, timeout)
            return ModbusReader(profile, tcp, device.modbus.unit_id)  # type: ignore[arg-type]
        if device.modbus_rtu is not None:
            rtu = device.modbus_rtu
            bus = self._serial.get(rtu.serial_port)
            if bus is None:
                bus = self._serial[rtu.serial_port] = ModbusSerialTransport(
                    rtu.serial_port,
                    rtu.baudrate,
                    rtu.parity,
                    rtu.stopbits,
                    rtu.bytesize,
                    timeout,
                    rtu.inter_frame_delay_s,
                )
            return ModbusReader(profile, bus, rtu.unit_id)  # type: ignore[arg-type]
        if device.snmp is not None:
            snmp = device.snmp
            target = SnmpTarget(snmp.host, snmp.port, timeout, retries, snmp_credentials(device))
            return SnmpReader(profile, target)  # type: ignore[arg-type]
        raise ValueError(f"device {device.id}: no transport configured")


def snmp_credentials(device: DeviceConfig) -> Credentials:
    """Resolve a device's SNMP secrets (from environment or files) into transport credentials."""
    snmp = device.snmp
    assert snmp is not None
    if snmp.version == "v3":
        assert snmp.v3 is not None
        v3 = snmp.v3
        return SnmpV3(
            user=v3.user,
            auth_protocol=v3.auth_protocol,
            auth_key=v3.auth_key.resolve(),
            priv_protocol=v3.priv_protocol,
            priv_key=v3.priv_key.resolve(),
            context=v3.context_name,
        )
    assert snmp.community is not None
    return SnmpV2c(snmp.community.resolve())
