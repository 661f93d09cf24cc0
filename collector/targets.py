"""Turns a site configuration into poll targets: one reader per device, one transport per endpoint."""

from __future__ import annotations

from collector.poller import PollTarget
from devices.door import DoorTracker
from devices.modbus_profile import ModbusProfile
from devices.modbus_reader import ModbusReader
from devices.modbus_transport import ModbusSerialTransport, ModbusTcpTransport
from devices.reader import DeviceReader
from devices.reading import DeviceClass, DeviceRef
from devices.registry import ProfileRegistry
from devices.snmp_profile import SnmpProfile
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
        # A shared transport waits as long as its slowest device needs, whichever device is built first:
        # with the first device's timeout, a slower unit behind the same gateway would time out falsely.
        self._endpoint_timeout: dict[tuple[str, int] | str, float] = {}
        for d in site.devices:
            key = _endpoint(d)
            if key is not None:
                timeout = self._timeout(d)
                self._endpoint_timeout[key] = max(timeout, self._endpoint_timeout.get(key, 0.0))

    def targets(self, only: set[str] | None = None) -> list[PollTarget]:
        """Poll targets for every configured device (or only those named)."""
        return [self.target(d) for d in self._site.devices if not only or d.id in only]

    def target(self, device: DeviceConfig) -> PollTarget:
        """The poll target of one device."""
        profile = self._registry.for_unit(device.profile, device.settings)
        ref = DeviceRef(
            site=self._site.site.id,
            room=device.room,
            device=device.id,
            device_class=profile.device_class,
            model=profile.model,
            tags=self._tags(device),
        )
        interval = device.poll_interval_s or self._site.defaults.poll_interval_s
        timeout = self._timeout(device)
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

    def _timeout(self, device: DeviceConfig) -> float:
        return device.timeout_s or self._site.defaults.timeout_s

    def _reader(
        self, device: DeviceConfig, profile: ModbusProfile | SnmpProfile, timeout: float
    ) -> DeviceReader:
        retries = self._site.defaults.retries  # every transport: the poll deadline counts on them
        if device.modbus is not None or device.modbus_rtu is not None:
            if not isinstance(profile, ModbusProfile):
                raise ValueError(
                    f"device {device.id}: profile {profile.model} is {profile.protocol}, not modbus"
                )
            return self._modbus_reader(device, profile, retries)
        if device.snmp is not None:
            if not isinstance(profile, SnmpProfile):
                raise ValueError(
                    f"device {device.id}: profile {profile.model} is {profile.protocol}, not snmp"
                )
            snmp = device.snmp
            target = SnmpTarget(snmp.host, snmp.port, timeout, retries, snmp_credentials(device))
            return SnmpReader(profile, target)
        raise ValueError(f"device {device.id}: no transport configured")

    def _modbus_reader(self, device: DeviceConfig, profile: ModbusProfile, retries: int) -> ModbusReader:
        key = _endpoint(device)
        assert key is not None
        timeout = self._endpoint_timeout[key]
        if device.modbus is not None:
            address = (device.modbus.host, device.modbus.port)
            tcp = self._tcp.get(address)
            if tcp is None:
                tcp = self._tcp[address] = ModbusTcpTransport(
                    device.modbus.host, device.modbus.port, timeout, retries=retries
                )
            return ModbusReader(profile, tcp, device.modbus.unit_id)
        rtu = device.modbus_rtu
        assert rtu is not None
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
                retries=retries,
            )
        return ModbusReader(profile, bus, rtu.unit_id)

    def transports(self) -> list[ModbusTcpTransport | ModbusSerialTransport]:
        """The shared Modbus transports built so far (one per TCP endpoint or serial port)."""
        return [*self._tcp.values(), *self._serial.values()]


def _endpoint(device: DeviceConfig) -> tuple[str, int] | str | None:
    """The shared Modbus endpoint of a device: (host, port) for TCP, the port path for RTU, else None."""
    if device.modbus is not None:
        return (device.modbus.host, device.modbus.port)
    if device.modbus_rtu is not None:
        return device.modbus_rtu.serial_port
    return None


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
