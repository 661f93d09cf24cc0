"""deploy/install.sh on this machine, twice in a row, every path in a temporary directory.

The second run must change nothing (credentials, CA, site file, venv), the rendered units must pass
`systemd-analyze verify`, and the broker configuration it installed must start a real mosquitto that a
client reaches over TLS with the CA of make-certs and a generated password, under the site's ACL.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from siteconfig.config import load_site
from testkit.ports import reserve_port
from testkit.services import Influxd

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
UNIT_DIR = ROOT / "deploy" / "systemd"
SERVICES = ("collector", "ingest", "alerts", "compliance", "api")
GENERATED = (
    "mqtt_password",
    "mqtt_collector_password",
    "mqtt_ingest_password",
    "mqtt_alerts_password",
    "mqtt_compliance_password",
    "influx_password",
)


@dataclass
class Install:
    """One install tree and what its two runs printed and left."""

    root: Path
    env: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]]
    first: dict[str, bytes]  # files whose bytes must not change, after the first run
    mqtt_port: int
    tls_port: int
    influxd: Influxd

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "roomguard"

    @property
    def creds(self) -> Path:
        return self.etc / "credentials"

    @property
    def mosquitto(self) -> Path:
        return self.root / "etc" / "mosquitto"

    @property
    def units(self) -> Path:
        return self.root / "systemd"

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "venv"


def _kept_files(inst_root: Path) -> list[Path]:
    etc = inst_root / "etc"
    return [
        *(etc / "roomguard" / "credentials" / n for n in GENERATED),
        etc / "mosquitto" / "certs" / "roomguard-ca.crt",
        etc / "mosquitto" / "certs" / "roomguard-ca.key",
        etc / "mosquitto" / "certs" / "roomguard-broker.crt",
        etc / "mosquitto" / "certs" / "roomguard-broker.key",
        etc / "mosquitto" / "roomguard.passwd",
        inst_root / "opt" / "venv" / ".roomguard-source",
    ]


@pytest.fixture(scope="module")
def installed() -> Iterator[Install]:
    # Not under pytest's tmp dir: that is 0700 root, and mosquitto (which drops root for its own user)
    # must reach the certificates, password file and ACL the way it does under /etc/mosquitto.
    root = Path(tempfile.mkdtemp(prefix="roomguard-install-", dir="/tmp"))
    root.chmod(0o755)
    mqtt_port, tls_port = reserve_port(), reserve_port()
    # A real InfluxDB for the database step (setup-db through roomguard-admin), with authentication
    # off as on a loopback-only box.
    influxd = Influxd(root / "influxd", continuous_queries=True)
    influxd.start()
    env = {
        **os.environ,
        "ROOMGUARD_PREFIX": str(root / "opt"),
        "ROOMGUARD_ETC": str(root / "etc" / "roomguard"),
        "ROOMGUARD_STATE": str(root / "state"),
        "ROOMGUARD_SYSTEMD_DIR": str(root / "systemd"),
        "MOSQUITTO_ETC": str(root / "etc" / "mosquitto"),
        "MOSQUITTO_DATA": str(root / "mosquitto-data"),
        "ROOMGUARD_MQTT_PORT": str(mqtt_port),
        "ROOMGUARD_MQTT_TLS_PORT": str(tls_port),
        "ROOMGUARD_INFLUX_URL": influxd.url,
        "ROOMGUARD_SBIN": str(root / "sbin"),
        "ROOMGUARD_CERT_HOSTS": "localhost",
        "ROOMGUARD_CERT_IPS": "127.0.0.1",
    }

    def run() -> subprocess.CompletedProcess[str]:
        # A generous limit: the first run builds the venv (pip, its cache warm or not).
        return subprocess.run(
            ["bash", str(ROOT / "deploy" / "install.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    try:
        first = run()
        assert first.returncode == 0, f"first run failed:\n{first.stdout}\n{first.stderr}"
        kept = {str(p): p.read_bytes() for p in _kept_files(root)}
        # An administrator edits the site file; the second run must keep the edit.
        site = root / "etc" / "roomguard" / "site.yaml"
        site.write_text(site.read_text() + "# edited by the administrator\n")
        kept[str(site)] = site.read_bytes()
        second = run()
        yield Install(root, env, [first, second], kept, mqtt_port, tls_port, influxd)
    finally:
        influxd.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_runs_twice_cleanly_and_the_second_run_changes_nothing(installed: Install) -> None:
    first, second = installed.runs
    assert first.returncode == 0
    assert second.returncode == 0, f"second run failed:\n{second.stdout}\n{second.stderr}"
    assert "nothing changed" in second.stdout, second.stdout
    for path, before in installed.first.items():
        assert Path(path).read_bytes() == before, f"{path} changed on the second run"
    assert "# edited by the administrator" in (installed.etc / "site.yaml").read_text()
    # No systemd as PID 1 here: the units are installed, not started, and the summary says so.
    assert "NOT started" in second.stdout
    assert "systemctl daemon-reload && systemctl enable --now roomguard.target" in second.stdout
    # The database step ran through roomguard-admin: created on the first run, found in place after.
    assert "InfluxDB database set up" in first.stdout, first.stdout + first.stderr
    assert "nothing to change" in second.stdout, second.stdout + second.stderr


def test_the_database_has_its_retention_policies_and_rollups(installed: Install) -> None:
    site = load_site(installed.etc / "site.yaml")
    assert site.influxdb is not None
    db = site.influxdb.database
    policies = {row["name"]: row for row in installed.influxd.rows(f'SHOW RETENTION POLICIES ON "{db}"')}
    assert {"raw", "rollup_1m"} <= set(policies), policies
    assert policies["raw"]["default"] is True
    queries = str(installed.influxd.query("SHOW CONTINUOUS QUERIES", database=None))
    assert f"INTO {db}.rollup_1m." in queries.replace('"', ""), queries


def test_roomguard_admin_runs_commands_with_the_box_credentials(installed: Install) -> None:
    """`roomguard-admin check-config` reads every secret through the credentials laid out as systemd
    would, as the service user, and leaves nothing behind."""
    _write_admin_secrets(installed)
    admin = installed.root / "sbin" / "roomguard-admin"
    assert os.readlink(admin) == str(installed.root / "opt" / "bin" / "roomguard-admin")
    # A run directory of this test's own: another suite on the machine may use /run at the same time.
    rundir = installed.root / "run"
    rundir.mkdir(exist_ok=True)
    env = {**os.environ, "ROOMGUARD_ADMIN_RUNDIR": str(rundir)}
    seen: list[str] = []
    watcher = threading.Thread(target=_watch, args=(rundir, seen), daemon=True)
    watcher.start()
    out = subprocess.run([str(admin), "check-config"], capture_output=True, text=True, timeout=120, env=env)
    watcher.join()
    assert out.returncode == 0, out.stdout + out.stderr
    assert seen, "roomguard-admin did not lay the credentials out in ROOMGUARD_ADMIN_RUNDIR"
    assert not list(rundir.iterdir())  # the laid-out credentials are gone
    # Without the administrator's SNMP secrets the same command names what is missing.
    snmp = sorted((installed.creds / "snmp").iterdir())
    moved = snmp[0].rename(installed.root / snmp[0].name)
    try:
        out = subprocess.run(
            [str(admin), "check-config"], capture_output=True, text=True, timeout=120, env=env
        )
    finally:
        moved.rename(snmp[0])
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"snmp_{snmp[0].name}" in out.stderr, out.stderr


def test_the_venv_runs_roomguard(installed: Install) -> None:
    out = subprocess.run(
        [str(installed.venv / "bin" / "roomguard"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "check-config" in out.stdout
    # Installed, not editable: the package lives in the venv, not in this checkout.
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import siteconfig; print(siteconfig.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed.root,  # not this checkout, which `python -c` would put first on sys.path
    )
    assert where.stdout.startswith(str(installed.venv)), where


def _mode_owner(path: Path) -> tuple[int, str, str]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def test_modes_and_owners(installed: Install) -> None:
    assert _mode_owner(installed.root / "state") == (0o700, "roomguard", "roomguard")
    assert _mode_owner(installed.etc) == (0o750, "root", "roomguard")
    assert _mode_owner(installed.etc / "site.yaml") == (0o640, "root", "roomguard")
    for d in (installed.creds, installed.creds / "snmp", installed.creds / "alerts"):
        assert _mode_owner(d) == (0o700, "root", "root"), d
    for name in GENERATED:
        path = installed.creds / name
        assert _mode_owner(path) == (0o600, "root", "root"), path
        assert len(path.read_text().strip()) >= 24, f"{name}: too short for a generated password"
    assert len({(installed.creds / n).read_text() for n in GENERATED}) == len(GENERATED)
    certs = installed.mosquitto / "certs"
    assert _mode_owner(certs / "roomguard-ca.key") == (0o600, "root", "root")
    assert _mode_owner(certs / "roomguard-broker.key") == (0o640, "root", "mosquitto")
    assert _mode_owner(installed.mosquitto / "roomguard.passwd") == (0o640, "root", "mosquitto")
    # No secret in the site file: every MQTT and database password is a credential reference.
    site = load_site(installed.etc / "site.yaml")
    for loc, ref in site.secret_refs():
        assert ref.env is None, loc
        assert str(ref.file).startswith("${CREDENTIALS_DIRECTORY}/"), loc


def test_systemd_analyze_verify_accepts_every_rendered_unit(installed: Install) -> None:
    rendered = sorted(installed.units.iterdir())
    assert [p.name for p in rendered] == sorted(
        [
            *(f"roomguard-{s}.service" for s in SERVICES),
            "roomguard.target",
            "roomguard-backup.service",
            "roomguard-backup.timer",
        ]
    )
    for unit in rendered:
        out = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120
        )
        ours = [line for line in (out.stdout + out.stderr).splitlines() if "roomguard" in line]
        assert out.returncode == 0, f"{unit.name}:\n{out.stdout}{out.stderr}"
        assert not ours, f"{unit.name}:\n{out.stdout}{out.stderr}"
    for name in SERVICES:
        text = (installed.units / f"roomguard-{name}.service").read_text()
        # Rendered with this install's paths, none of the defaults left.
        assert f"ExecStart={installed.venv}/bin/roomguard " in text
        assert "/etc/roomguard" not in text.replace(str(installed.etc), "")
        assert "/opt/roomguard" not in text
        assert "/var/lib/roomguard" not in text


def _parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd unit INI: sections of keys, each with every value (keys repeat: LoadCredential=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("name", SERVICES)
def test_unit_hardening(name: str) -> None:
    unit = _parse_unit(UNIT_DIR / f"roomguard-{name}.service")
    svc = unit["Service"]

    def one(key: str) -> str:
        assert len(svc.get(key, [])) == 1, f"{name}: {key}= {svc.get(key)}"
        return svc[key][0]

    assert one("User") == one("Group") == "roomguard"
    assert one("ProtectSystem") == "strict"
    for key in (
        "NoNewPrivileges",
        "PrivateTmp",
        "ProtectHome",
        "ProtectKernelTunables",
        "ProtectKernelModules",
    ):
        assert one(key) == "yes", key
    assert one("StateDirectory") == "roomguard"
    assert one("StateDirectoryMode") == "0700"
    assert one("ConfigurationDirectory") == "roomguard"
    assert set(one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert one("SystemCallFilter") == "@system-service"
    assert one("Restart") in {"always", "on-failure"}
    assert float(one("RestartSec")) > 0
    assert unit["Unit"]["StartLimitIntervalSec"]
    assert unit["Unit"]["StartLimitBurst"]
    assert "EnvironmentFile" not in svc, "secrets come through LoadCredential=, not the environment"
    creds = {c.split(":", 1)[0] for c in svc["LoadCredential"]}
    # The API has no broker role of its own: it reads the bus with the site's plain (observer) account.
    account = "mqtt_password" if name == "api" else f"mqtt_{name}_password"
    assert {account, "influx_password"} <= creds
    exec_start = one("ExecStart").split()
    assert exec_start[0] == "/opt/roomguard/venv/bin/roomguard"
    command = {"collector": ["collect"], "ingest": ["ingest"], "api": ["api"]}.get(name, [name, "serve"])
    assert exec_start[1:] == [*command, "/etc/roomguard/site.yaml", "--state-dir", "/var/lib/roomguard"]
    if name == "collector":
        # The one capability of the set: binding the SNMP trap port 162.
        assert one("CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
        assert one("AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
        # Serial ports for Modbus RTU instead of PrivateDevices=.
        assert one("PrivateDevices") == "no"
        assert one("DevicePolicy") == "closed"
        assert any(d.startswith("char-ttyUSB") for d in svc["DeviceAllow"])
        assert one("SupplementaryGroups") == "dialout"
    else:
        assert one("CapabilityBoundingSet") == "", f"{name} must hold no capability"
        assert "AmbientCapabilities" not in svc
        assert one("PrivateDevices") == "yes"
        assert "DeviceAllow" not in svc


def test_target_groups_the_units() -> None:
    target = _parse_unit(UNIT_DIR / "roomguard.target")
    assert set(target["Unit"]["Wants"][0].split()) == {f"roomguard-{s}.service" for s in SERVICES}
    for name in SERVICES:
        unit = _parse_unit(UNIT_DIR / f"roomguard-{name}.service")
        assert unit["Unit"]["PartOf"] == ["roomguard.target"]
        assert unit["Install"]["WantedBy"] == ["roomguard.target"]


def _watch(rundir: Path, seen: list[str], limit_s: float = 60) -> None:
    """Note the names of what appears in `rundir` until something has (or the limit passes)."""
    deadline = time.monotonic() + limit_s
    while not seen and time.monotonic() < deadline:
        seen.extend(p.name for p in rundir.iterdir())
        time.sleep(0.01)


def _write_admin_secrets(installed: Install) -> None:
    """The administrator's part: SNMP and notification secrets, as files of credentials/snmp/ and /alerts/."""
    for _, ref in load_site(installed.etc / "site.yaml").secret_refs():
        name = str(ref.file).removeprefix("${CREDENTIALS_DIRECTORY}/")
        for prefix in ("snmp_", "alerts_"):
            if name.startswith(prefix):
                path = installed.creds / prefix.rstrip("_") / name.removeprefix(prefix)
                path.write_text(f"test-{name}\n")
                path.chmod(0o600)


def test_units_credentials_cover_every_secret_of_the_installed_site(
    installed: Install, tmp_path: Path
) -> None:
    """What systemd would hand each unit (LoadCredential=) resolves every secret of the installed site."""
    site_path = installed.etc / "site.yaml"
    _write_admin_secrets(installed)
    for name in SERVICES:
        unit = _parse_unit(installed.units / f"roomguard-{name}.service")
        given = tmp_path / name
        given.mkdir()
        # systemd.exec(5) LoadCredential=ID:PATH: a file becomes ID, a directory's files ID_<file>.
        for spec in unit["Service"]["LoadCredential"]:
            cred_id, _, path = spec.partition(":")
            source = Path(path)
            if source.is_dir():
                for f in source.iterdir():
                    shutil.copy(f, given / f"{cred_id}_{f.name}")
            else:
                shutil.copy(source, given / cred_id)
        out = subprocess.run(
            [str(installed.venv / "bin" / "roomguard"), "check-config", str(site_path)],
            env={**installed.env, "CREDENTIALS_DIRECTORY": str(given)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"roomguard-{name}.service would not start:\n{out.stderr}"


class _Client:
    """A paho client over TLS with the install's CA, collecting what it receives."""

    def __init__(self, inst: Install, user: str, password: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
        self.client.username_pw_set(user, password)
        self.client.tls_set(
            ca_certs=str(inst.mosquitto / "certs" / "roomguard-ca.crt"), cert_reqs=ssl.CERT_REQUIRED
        )
        self.connected = threading.Event()
        self.reason: object = None
        self.received: list[bytes] = []
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.received.append(bytes(msg.payload))
        self.client.on_subscribe = lambda *a: self.subscribed.set()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self.reason = reason
        self.connected.set()

    def connect(self, port: int) -> object:
        # "localhost": the name make-certs put in the broker certificate (hostname checking stays on).
        self.client.connect("localhost", port)
        self.client.loop_start()
        assert self.connected.wait(30), "no CONNACK within 30 s"
        return self.reason

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait_port(port: int, proc: subprocess.Popen[str], limit_s: float = 30) -> None:
    import socket

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mosquitto exited {proc.returncode}:\n{proc.communicate()[1]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"mosquitto did not listen on {port} within {limit_s:g} s")


def test_installed_broker_config_serves_tls_with_the_generated_passwords_and_acl(installed: Install) -> None:
    conf = installed.mosquitto / "conf.d" / "roomguard.conf"
    text = conf.read_text()
    assert f"listener {installed.tls_port}\n" in text
    assert f"listener {installed.mqtt_port} 127.0.0.1\n" in text
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    clients: list[_Client] = []
    try:
        _wait_port(installed.tls_port, proc)
        password = {n: (installed.creds / n).read_text().strip() for n in GENERATED}

        def client(user: str, secret: str) -> _Client:
            c = _Client(installed, user, secret)
            clients.append(c)
            return c

        wrong = client("roomguard-collector", "not-the-password")
        assert wrong.connect(installed.tls_port) != 0, "a wrong password must be refused"

        observer = client("roomguard", password["mqtt_password"])
        assert observer.connect(installed.tls_port) == 0
        topic = "roomguard/v1/tpe-hq/collector-t/ups-1/readings"
        observer.client.subscribe(topic, qos=1)
        assert observer.subscribed.wait(30)

        # The read-only account's publish is dropped by the ACL; the collector's goes through. Each
        # publish is acknowledged before the next is sent, so a forwarded denied message would come first.
        observer.client.publish(topic, b"denied", qos=1).wait_for_publish(30)
        collector = client("roomguard-collector", password["mqtt_collector_password"])
        assert collector.connect(installed.tls_port) == 0
        collector.client.publish(topic, b"allowed", qos=1).wait_for_publish(30)
        deadline = time.monotonic() + 30
        while not observer.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert observer.received[:1] == [b"allowed"], observer.received
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        proc.wait(30)


def test_make_certs_never_replaces_the_ca(tmp_path: Path) -> None:
    script = ROOT / "deploy" / "make-certs.sh"
    d = tmp_path / "certs"
    subprocess.run(
        [str(script), "--dir", str(d), "--host", "box1", "--ip", "127.0.0.1"], check=True, timeout=120
    )
    ca = (d / "roomguard-ca.crt").read_bytes(), (d / "roomguard-ca.key").read_bytes()
    broker = (d / "roomguard-broker.crt").read_bytes()
    subprocess.run(
        [str(script), "--dir", str(d), "--host", "box1", "--ip", "127.0.0.1"], check=True, timeout=120
    )
    assert (d / "roomguard-broker.crt").read_bytes() == broker, "same names: the certificate stays"
    # A new address: a new broker certificate, from the same CA.
    subprocess.run(
        [str(script), "--dir", str(d), "--host", "box1", "--ip", "10.1.2.3"], check=True, timeout=120
    )
    assert ((d / "roomguard-ca.crt").read_bytes(), (d / "roomguard-ca.key").read_bytes()) == ca
    assert (d / "roomguard-broker.crt").read_bytes() != broker
    san = subprocess.run(
        ["openssl", "x509", "-in", str(d / "roomguard-broker.crt"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"DNS:box1, IP Address:10\.1\.2\.3", san), san
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(d / "roomguard-ca.crt"), str(d / "roomguard-broker.crt")],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
