"""The example site (deploy/examples/site.yaml) rewritten for a test run: free ports, test services.

Every port of the example is moved to a free one (a port shared by several devices stays shared), so a
test never collides with a running demo or another run; the `mqtt` and `influxdb` sections can be
pointed at the test's own broker and database.
"""

from __future__ import annotations

import re
from pathlib import Path

from testkit.ports import reserve_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "examples" / "site.yaml"

# The secrets the example site references, with test values.
SECRETS = {
    "ROOMGUARD_SNMP_COMMUNITY_UPS1": "ups1-ro",
    "ROOMGUARD_SNMP_COMMUNITY_ENV1": "env1-ro",
    "ROOMGUARD_SNMP_COMMUNITY_ENV2": "env2-ro",
    "ROOMGUARD_SNMP_COMMUNITY_NETBOTZ": "netbotz-ro",
    "ROOMGUARD_SNMP_COMMUNITY_DOOR": "door-ro",
    "ROOMGUARD_SNMPV3_AUTH_KEY": "e2e-auth-pass-phrase",
    "ROOMGUARD_SNMPV3_PRIV_KEY": "e2e-priv-pass-phrase",
    "ROOMGUARD_SNMP_TRAP_COMMUNITY": "trap-ro",
    "ROOMGUARD_MQTT_PASSWORD": "x",
    "ROOMGUARD_MQTT_COLLECTOR_PASSWORD": "x",
    "ROOMGUARD_MQTT_INGEST_PASSWORD": "x",
    "ROOMGUARD_MQTT_ALERTS_PASSWORD": "x",
    "ROOMGUARD_MQTT_COMPLIANCE_PASSWORD": "x",
    "ROOMGUARD_ALERT_WEBHOOK_KEY": "e2e-webhook-key",
    "ROOMGUARD_INFLUX_TOKEN": "x",
    "ROOMGUARD_INFLUX_PASSWORD": "x",
}


def free_port() -> int:
    """A port free for both TCP (Modbus, HTTP) and UDP (SNMP, traps) on loopback (testkit/ports.py)."""
    return reserve_port()


def _replace_section(text: str, name: str, body: str) -> str:
    """Replace the top-level YAML section `name:` (up to the next top-level key) with `body`."""
    pattern = re.compile(rf"(?ms)^{name}:.*?(?=^\S|\Z)")
    assert pattern.search(text), f"no {name}: section in the example site"
    return pattern.sub(body.rstrip("\n") + "\n", text, count=1)


def example_site(dest: Path, *, mqtt: str | None = None, influxdb: str | None = None) -> tuple[Path, int]:
    """Write the rewritten example to `dest`; returns its path and the simulator's control port.

    `mqtt` / `influxdb` are replacement sections (YAML text starting with `mqtt:` / `influxdb:`).
    """
    text = EXAMPLE.read_text()
    # Ports as keys, and in loopback URLs (the alert webhook receiver).
    pattern = re.compile(r"\b(port|http_port|listen_port): (\d+)|(http://127\.0\.0\.1):(\d+)")
    olds = {m.group(2) or m.group(4) for m in pattern.finditer(text)}
    mapping = {old: free_port() for old in sorted(olds)}

    def moved(m: re.Match[str]) -> str:
        if m.group(1):
            return f"{m.group(1)}: {mapping[m.group(2)]}"
        return f"{m.group(3)}:{mapping[m.group(4)]}"

    text = pattern.sub(moved, text)
    if mqtt is not None:
        text = _replace_section(text, "mqtt", mqtt)
    if influxdb is not None:
        text = _replace_section(text, "influxdb", influxdb)
    dest.write_text(text)
    http = re.search(r"http_port: (\d+)", text)
    assert http is not None
    return dest, int(http.group(1))
