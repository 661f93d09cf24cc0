"""`roomguard` sub-commands owned by the collector: collect, polling, simulation, probes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Annotated

import typer

from bus.logs import configure_logging
from collector.collect_cli import collect
from collector.render import format_poll, format_poll_line, format_summary_line, format_trap
from devices.reading import PollResult
from devices.registry import ProfileRegistry
from siteconfig.cli import SiteArg, load_site_or_exit
from siteconfig.config import SiteConfig

probe_app = typer.Typer(
    help="Commissioning probes for a device being wired up. 調試新設備用。", no_args_is_help=True
)


def profiles() -> None:
    """List the built-in device profiles, and the settings a site file must choose for each unit."""
    from devices.modbus_profile import ModbusProfile

    for p in ProfileRegistry.builtin().all():
        typer.echo(f"{p.model:<24} {p.protocol:<6} {p.device_class.value:<8} {p.vendor}: {p.title}")
        for name, setting in (p.settings if isinstance(p, ModbusProfile) else {}).items():
            choices = " | ".join(setting.choices)
            typer.echo(f"{'':<24} settings: {name}: {choices} (per unit in the site file)")


def poll(
    path: SiteArg,
    once: Annotated[bool, typer.Option("--once", help="Poll every device once and exit.")] = False,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds (0 = run until Ctrl-C).")] = 0,
    device: Annotated[list[str] | None, typer.Option(help="Only these device ids (repeatable).")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Every metric of every poll, not one line per poll.")
    ] = False,
    verbose: Annotated[bool, typer.Option("-v", help="Log at debug level.")] = False,
) -> None:
    """Poll the site's devices and print each device's readings with quality."""
    configure_logging(verbose, level=logging.WARNING, fmt="%(levelname)s %(message)s")
    site = load_site_or_exit(path)
    asyncio.run(_poll(site, once=once, seconds=seconds, only=set(device or []), full=full))


async def _poll(site: SiteConfig, *, once: bool, seconds: float, only: set[str], full: bool = False) -> None:
    from collector.poller import Poller
    from collector.targets import TargetBuilder
    from collector.trap_listen import trap_receiver, trap_sender
    from devices.traps import TrapEvent

    targets = TargetBuilder(site, ProfileRegistry.builtin()).targets(only or None)
    tz = site.site.timezone

    async def show(result: PollResult) -> None:
        typer.echo(format_poll(result, tz) if full else format_poll_line(result, tz))

    def show_trap(event: TrapEvent) -> None:
        device = trap_sender(site, event)
        typer.echo(format_trap(event, device, tz))
        if device is not None and event.event.get("access_granted") is True:
            poller.note_access_granted(device, event.ts)

    poller = Poller(
        targets, show, jitter_pct=site.defaults.jitter_pct, backoff_max_s=site.defaults.backoff_max_s
    )
    try:
        if once:
            results = await poller.poll_once()
            for r in results:
                typer.echo(format_poll(r, tz))
            typer.echo(format_summary_line(results))
            return
        receiver = trap_receiver(site, show_trap)
        if receiver is not None:
            await receiver.start()
        task = asyncio.create_task(poller.run())
        try:
            async with asyncio.timeout(seconds or None):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        finally:
            if receiver is not None:
                await receiver.stop()
    finally:
        await poller.close()


def simulate(
    path: SiteArg,
    http_port: Annotated[int, typer.Option(help="Port of the scenario control API (0 = from config).")] = 0,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 1.0,
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario to start with (repeatable).")] = None,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0,
) -> None:
    """Serve every configured device over real Modbus TCP and SNMP on loopback, with scenarios."""
    from collector.simulate import run_simulator

    site = load_site_or_exit(path)
    asyncio.run(
        run_simulator(site, http_port=http_port, speed=speed, scenarios=scenario or [], seconds=seconds)
    )


def scenario(
    path: SiteArg,
    name: Annotated[str | None, typer.Argument(help="Scenario to start (omit to list them).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop the scenario instead of starting it.")] = False,
    device: Annotated[
        str | None, typer.Option(help="Target device id (default: first of its class).")
    ] = None,
    http_port: Annotated[int, typer.Option(help="Control API port (0 = from the site file).")] = 0,
) -> None:
    """List, start or clear a scenario on the running `roomguard simulate` of this site. 觸發模擬情境。"""
    from collector.scenario_cli import ScenarioError, call, format_scenarios, simulator_url

    site = load_site_or_exit(path, secrets=False)
    sim = site.simulator
    base = simulator_url(sim.host if sim else "127.0.0.1", http_port or (sim.http_port if sim else 8099))
    try:
        if name is None:
            typer.echo(format_scenarios(call(base, "GET")))
            return
        answer = call(base, "DELETE" if clear else "POST", name, device)
    except ScenarioError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    active = ", ".join(a["scenario"] for a in answer.get("active", [])) if isinstance(answer, dict) else ""
    typer.echo(f"{'cleared' if clear else 'started'} {name}; active now: {active or 'none'}")


def probe_modbus(
    host: Annotated[str, typer.Argument(help="Device or gateway address.")],
    port: Annotated[int, typer.Option(help="TCP port.")] = 502,
    unit: Annotated[int, typer.Option(help="Unit (slave) id.")] = 1,
    table: Annotated[str, typer.Option(help="holding or input.")] = "holding",
    address: Annotated[int, typer.Option(help="First register, 0-based wire address.")] = 0,
    count: Annotated[int, typer.Option(help="Number of registers.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 2.0,
    profile: Annotated[
        str | None,
        typer.Option(
            help="Read this profile's points instead and suggest the choice of each of its settings "
            "(e.g. sht20-xy-md02 resolution x10 | x100) for the site file.",
        ),
    ] = None,
) -> None:
    """Read a register range and show it decoded under all four byte/word orders, with hints."""
    from devices.probe_modbus import format_probe
    from devices.probe_modbus import probe_modbus as run_probe

    if profile is not None:
        asyncio.run(_probe_profile_settings(host, port, unit, profile, timeout))
        return
    if table not in ("holding", "input"):
        typer.echo(f"--table: got {table!r}; valid choices: holding, input", err=True)
        raise typer.Exit(2)
    report = asyncio.run(run_probe(host, port, unit, table, address, count, timeout))
    typer.echo(format_probe(report))


async def _probe_profile_settings(host: str, port: int, unit: int, model: str, timeout_s: float) -> None:
    from devices.errors import TransportError
    from devices.modbus_profile import ModbusProfile
    from devices.modbus_transport import ModbusTcpTransport
    from devices.probe_settings import format_setting_probes, probe_settings

    modbus = {p.model: p for p in ProfileRegistry.builtin().all() if isinstance(p, ModbusProfile)}
    chosen = modbus.get(model)
    if chosen is None:
        typer.echo(f"--profile: got {model!r}; valid choices: {', '.join(sorted(modbus))}", err=True)
        raise typer.Exit(2)
    transport = ModbusTcpTransport(host, port, timeout_s)
    try:
        probes = await probe_settings(chosen, transport, unit)
    except TransportError as exc:
        typer.echo(f"{host}:{port} unit {unit}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        await transport.close()
    typer.echo(f"{host}:{port} unit {unit} read as {model}")
    typer.echo(format_setting_probes(chosen, probes), nl=False)


def probe_snmp(
    host: Annotated[str, typer.Argument(help="Agent address.")],
    port: Annotated[int, typer.Option(help="UDP port.")] = 161,
    root: Annotated[str, typer.Option(help="Subtree to walk.")] = "1.3.6.1",
    community_env: Annotated[str, typer.Option(help="Environment variable holding the v2c community.")] = (
        "ROOMGUARD_SNMP_COMMUNITY"
    ),
    limit: Annotated[int, typer.Option(help="Stop after this many varbinds.")] = 2000,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 2.0,
) -> None:
    """Walk a subtree and name the built-in profile that matches the agent."""
    from devices.probe_snmp import format_snmp_probe, match_profiles
    from devices.probe_snmp import probe_snmp as run_probe
    from devices.snmp_profile import SnmpProfile
    from devices.snmp_transport import SnmpTarget, SnmpV2c

    community = os.environ.get(community_env)
    if not community:
        typer.echo(
            f"set the community in ${community_env} (secrets are never taken on the command line)", err=True
        )
        raise typer.Exit(2)
    target = SnmpTarget(host, port, timeout, 1, SnmpV2c(community))
    report = asyncio.run(run_probe(target, root=root, limit=limit))
    snmp_profiles = [p for p in ProfileRegistry.builtin().all() if isinstance(p, SnmpProfile)]
    typer.echo(format_snmp_probe(report, match_profiles(report, snmp_profiles)))


def register(app: typer.Typer) -> None:
    """Mount the collector's commands on the root `roomguard` app."""
    app.command("collect")(collect)
    app.command("profiles")(profiles)
    app.command("poll")(poll)
    app.command("simulate")(simulate)
    app.command("scenario")(scenario)
    probe_app.command("modbus")(probe_modbus)
    probe_app.command("snmp")(probe_snmp)
    app.add_typer(probe_app, name="probe")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the roomguard command")
