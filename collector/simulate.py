"""`roomguard simulate`: serve a site's devices from the bundled simulators (I/O shell)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import typer

from devices.registry import ProfileRegistry
from devices.sim.room import SimDeviceSpec, SimulatedRoom
from siteconfig.config import DeviceConfig, SiteConfig


def device_spec(device: DeviceConfig, registry: ProfileRegistry, bind_host: str | None) -> SimDeviceSpec:
    """What the simulator needs to serve one configured device (secrets resolved here)."""
    profile = registry.get(device.profile)
    unit_id: int | None = None
    community: str | None = None
    v3: dict[str, Any] | None = None
    if device.modbus is not None:
        host, port, unit_id = device.modbus.host, device.modbus.port, device.modbus.unit_id
    elif device.snmp is not None:
        host, port = device.snmp.host, device.snmp.port
        if device.snmp.version == "v3" and device.snmp.v3 is not None:
            cfg = device.snmp.v3
            # A v3 device is told apart on the shared simulator port by its context name.
            community = cfg.context_name or device.id
            v3 = {
                "user": cfg.user,
                "auth_protocol": cfg.auth_protocol,
                "auth_key": cfg.auth_key.resolve(),
                "priv_protocol": cfg.priv_protocol,
                "priv_key": cfg.priv_key.resolve(),
            }
        elif device.snmp.community is not None:
            community = device.snmp.community.resolve()
    else:
        raise typer.BadParameter(f"device {device.id}: only Modbus TCP and SNMP devices can be simulated")
    return SimDeviceSpec(
        id=device.id,
        device_class=profile.device_class,
        profile_model=profile.model,
        protocol=profile.protocol,
        host=bind_host or host,
        port=port,
        unit_id=unit_id,
        community=community,
        v3=v3,
        zone=device.zone,
        settings=tuple(sorted(device.settings.items())),
    )


async def run_simulator(
    site: SiteConfig, *, http_port: int, speed: float, scenarios: list[str], seconds: float
) -> None:
    """Start the simulated room and its HTTP control; run until Ctrl-C or `seconds`."""
    registry = ProfileRegistry.builtin()
    sim_cfg = site.simulator
    bind = sim_cfg.host if sim_cfg else "127.0.0.1"
    specs = [device_spec(d, registry, None) for d in site.devices if d.modbus_rtu is None]
    traps = site.snmp_traps
    trap_target: tuple[str, int] | None = None
    trap_community: str | None = None
    if traps is not None and traps.communities:  # the simulated cards send v2c traps only
        # A wildcard listen address is not a destination: the poller listens on this host then.
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(traps.listen_host, traps.listen_host)
        trap_target, trap_community = (host, traps.listen_port), traps.communities[0].resolve()
    room = SimulatedRoom(
        specs,
        registry,
        speed=speed,
        seed=sim_cfg.seed if sim_cfg and sim_cfg.seed else 0,
        trap_target=trap_target,
        trap_community=trap_community,
    )
    port = http_port or (sim_cfg.http_port if sim_cfg else 8099)
    await room.start()
    await room.start_http(bind, port)
    for name in [*(scenarios or []), *([sim_cfg.scenario] if sim_cfg and sim_cfg.scenario else [])]:
        room.trigger(name)
    typer.echo(
        f"simulating {len(specs)} devices of site {site.site.id}; control: http://{bind}:{port}/scenarios"
    )
    for s in specs:
        where = f"unit {s.unit_id}" if s.protocol == "modbus" else "community/context (secret)"
        typer.echo(f"  {s.id:<14} {s.protocol:<6} {s.host}:{s.port} {where}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds or None):
            await stop.wait()
    await room.stop()
