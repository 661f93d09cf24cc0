"""The trap listener of a running poller: resolves the site's trap credentials, names the sender."""

from __future__ import annotations

from collections.abc import Callable

from devices.snmp_transport import SnmpV3
from devices.traps import TrapEvent, TrapReceiver, TrapV3User
from siteconfig.config import SiteConfig


def trap_receiver(site: SiteConfig, callback: Callable[[TrapEvent], None]) -> TrapReceiver | None:
    """A receiver for the site's `snmp_traps` settings, or None when traps are not configured."""
    cfg = site.snmp_traps
    if cfg is None:
        return None
    users = [
        TrapV3User(
            SnmpV3(
                user=u.user,
                auth_protocol=u.auth_protocol,
                auth_key=u.auth_key.resolve(),
                priv_protocol=u.priv_protocol,
                priv_key=u.priv_key.resolve(),
            ),
            engine_id=u.engine_id.removeprefix("0x"),
        )
        for u in cfg.v3_users
    ]
    return TrapReceiver(
        cfg.listen_host, cfg.listen_port, [c.resolve() for c in cfg.communities], users, callback
    )


def trap_sender(site: SiteConfig, event: TrapEvent) -> str | None:
    """The configured device that sent `event`: same SNMP host and port, narrowed by device class.

    Several simulated or proxied agents can share one address; the trap's class (UPS, door) then picks
    the one device of that class there. None when it cannot be told.
    """
    host, _, port = event.source.rpartition(":")
    at_address = [d for d in site.devices if d.snmp is not None and d.snmp.host == host]
    same_port = [d for d in at_address if port.isdigit() and d.snmp is not None and d.snmp.port == int(port)]
    candidates = same_port or at_address
    if len(candidates) > 1 and event.device_class is not None:
        from devices.registry import ProfileRegistry

        registry = ProfileRegistry.builtin()
        candidates = [d for d in candidates if registry.get(d.profile).device_class is event.device_class]
    return candidates[0].id if len(candidates) == 1 else None
