"""Site configuration: the example loads, secrets stay secret, broken files get located errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from devices.yamlload import ConfigError, LocatedError, load_yaml_model, read_yaml
from siteconfig.check import check_config_command, main
from siteconfig.config import (
    DeviceConfig,
    ProfileInfo,
    SecretError,
    SecretRef,
    SiteConfig,
    load_site,
    summarize,
)
from siteconfig.sitecheck import builtin_profile_info

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "deploy" / "examples" / "site.yaml"
BAD = Path(__file__).resolve().parent / "data" / "bad_configs"

# The profiles the example names (written in parallel by other engineers): name → (protocol, class[,
# settings and their choices]).
KNOWN: dict[str, tuple[Any, ...]] = {
    "rfc1628-ups": ("snmp", "ups"),
    "apc-smartups-modbus": ("modbus", "ups"),
    "dse-gencomm": ("modbus", "genset"),
    "liebert-gp-crac": ("snmp", "crac"),
    "schneider-inrow-sc": ("modbus", "crac"),
    "sht20-xy-md02": ("modbus", "env", {"resolution": ("x10", "x100")}),
    "geist-watchdog15": ("snmp", "env"),
    "netbotz-env": ("snmp", "env"),
    "netbotz-door": ("snmp", "door"),
    "modbus-door-io": ("modbus", "door"),
    "modbus-contact-io": ("modbus", "contact"),
}
NAMES = sorted(KNOWN)


def info(name: str) -> ProfileInfo | None:
    return ProfileInfo(*KNOWN[name]) if name in KNOWN else None


SECRETS = {
    "ROOMGUARD_SNMP_COMMUNITY_UPS1": "ups1-Zq9-secret",
    "ROOMGUARD_SNMPV3_AUTH_KEY": "auth-Zq9-secret",
    "ROOMGUARD_SNMPV3_PRIV_KEY": "priv-Zq9-secret",
    "ROOMGUARD_MQTT_PASSWORD": "mqtt-Zq9-secret",
}


@pytest.fixture
def site() -> SiteConfig:
    return load_site(EXAMPLE, NAMES, info)


# --- the example -------------------------------------------------------------------------------


def test_example_loads(site: SiteConfig) -> None:
    assert site.site.id == "tpe-hq"
    assert site.site.timezone == "Asia/Taipei"
    assert len(site.devices) == 14
    classes = sorted(KNOWN[d.profile][1] for d in site.devices)
    assert (classes.count("ups"), classes.count("env"), classes.count("door")) == (2, 6, 2)
    crac = site.device("crac-1")
    assert crac.snmp is not None
    assert crac.snmp.v3 is not None
    assert (crac.snmp.v3.auth_protocol, crac.snmp.v3.priv_protocol) == ("sha256", "aes128")
    assert crac.snmp.v3.security_level == "authPriv"
    # Three probes behind one gateway: same endpoint, distinct unit ids.
    sht = [d.modbus for d in site.devices if d.profile == "sht20-xy-md02"]
    assert len({(m.host, m.port) for m in sht if m}) == 1
    assert sorted(m.unit_id for m in sht if m) == [1, 2, 3]
    assert site.poll_interval_s(site.device("door-main")) == 1
    assert site.poll_interval_s(site.device("ups-1")) == site.defaults.poll_interval_s


def test_example_every_host_is_loopback(site: SiteConfig) -> None:
    for d in site.devices:
        transport = d.modbus or d.snmp or d.modbus_rtu
        assert getattr(transport, "host", "127.0.0.1") == "127.0.0.1", d.id


def test_example_matches_shipped_profiles(site: SiteConfig) -> None:
    """Profiles that already exist in devices/profiles/ agree with the example's transports."""
    for d in site.devices:
        shipped = builtin_profile_info(d.profile)
        if shipped is None:
            continue  # not written yet
        assert shipped.protocol == d.protocol, d.id
        assert shipped.device_class == KNOWN[d.profile][1], d.id


def test_summarize_mentions_every_device_and_no_secret(
    site: SiteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    text = summarize(site, info)
    for d in site.devices:
        assert d.id in text
        assert d.profile in text
    assert "Devices: 14" in text
    assert "by class: contact 1, crac 2, door 2, env 6, genset 1, ups 2" in text
    assert "by transport: modbus 8, snmp 6" in text
    assert "modbus-tcp 127.0.0.1:15020 unit 3" in text
    assert "snmp v3 roomguard@127.0.0.1:16100" in text
    for v in SECRETS.values():
        assert v not in text


def test_check_config_ok(site: SiteConfig) -> None:
    code, text = check_config_command(EXAMPLE, NAMES, info)
    assert code == 0
    assert text == summarize(site, info)


def test_check_config_resolve_secrets_reports_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("ROOMGUARD_"):
            monkeypatch.delenv(k)
    code, text = check_config_command(EXAMPLE, NAMES, info, resolve_secrets=True)
    assert code == 2
    missing = "devices[0].snmp.community: secret environment variable ROOMGUARD_SNMP_COMMUNITY_UPS1"
    assert missing in text
    assert "mqtt.password" in text
    # Every line is FILE:LINE:COL: key: message, and one line per variable, not per use.
    first = next(line for line in text.splitlines() if missing in line)
    assert re.match(rf"{re.escape(str(EXAMPLE))}:\d+:\d+: ", first), first
    lines = text.splitlines()[:-1]
    assert len(lines) == len({line.split("variable ")[1].split()[0] for line in lines})


def test_a_secret_variable_used_twice_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROOMGUARD_TEST_SHARED", raising=False)
    site = tmp_path / "site.yaml"
    devices = "".join(
        f"  - {{id: ups-{i}, name: U{i}, room: r1, profile: rfc1628-ups,"
        f" snmp: {{host: 127.0.0.1, community: {{env: ROOMGUARD_TEST_SHARED}}}}}}\n"
        for i in (1, 2, 3)
    )
    site.write_text("site: {id: s, name: S}\nrooms: [{id: r1, name: R}]\ndevices:\n" + devices)
    code, text = check_config_command(site, NAMES, info, resolve_secrets=True)
    assert code == 2
    assert text.count("ROOMGUARD_TEST_SHARED is not set") == 1, text
    assert f"{site}:4:" in text  # the first use: devices[0]'s community
    assert "also used by devices[1].snmp.community, devices[2].snmp.community" in text
    # `poll` (and every command that connects) says the same in one line and exits 2: no traceback.
    env = {k: v for k, v in os.environ.items() if k != "ROOMGUARD_TEST_SHARED"}
    out = subprocess.run(
        [sys.executable, "-m", "roomguard", "poll", str(site), "--once"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[0].startswith(f"{site}:4:"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 2, out.stderr


# --- secrets -----------------------------------------------------------------------------------


def test_secret_ref_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_SECRET", "s3cr3t-value")
    ref = SecretRef(env="RG_TEST_SECRET")
    assert ref.resolve() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(ref.resolve_secret())
    assert ref.resolve_secret().get_secret_value() == "s3cr3t-value"
    assert ref.describe() == "env:RG_TEST_SECRET"


def test_secret_ref_file(tmp_path: Path) -> None:
    (tmp_path / "community").write_text("from-file\n", encoding="utf-8")
    assert SecretRef(file=tmp_path / "community").resolve() == "from-file"
    assert SecretRef.model_validate({"file": "community"}).resolve(base_dir=tmp_path) == "from-file"


def test_secret_ref_missing_names_variable_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RG_TEST_UNSET", raising=False)
    with pytest.raises(SecretError, match="RG_TEST_UNSET"):
        SecretRef(env="RG_TEST_UNSET").resolve()
    with pytest.raises(SecretError, match=r"nope\.txt"):
        SecretRef(file=tmp_path / "nope.txt").resolve()


@pytest.mark.parametrize("data", [{}, {"env": "A", "file": "/x"}, {"env": "1BAD"}, {"value": "x"}])
def test_secret_ref_shape(data: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        SecretRef.model_validate(data)


def test_secrets_never_in_repr_or_errors(site: SiteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    dump = repr(site) + str(site) + site.model_dump_json()
    for v in SECRETS.values():
        assert v not in dump
    assert "ROOMGUARD_SNMP_COMMUNITY_UPS1" in dump  # the reference is fine to show
    refs = dict(site.secret_refs())
    assert refs[("devices", 0, "snmp", "community")].resolve() == SECRETS["ROOMGUARD_SNMP_COMMUNITY_UPS1"]
    assert refs[("devices", 3, "snmp", "v3", "priv_key")].describe() == "env:ROOMGUARD_SNMPV3_PRIV_KEY"
    # Direct validation (no YAML loader) must not echo an inline secret either.
    raw = read_yaml(EXAMPLE)
    raw["devices"][0]["snmp"]["community"] = "inline-Zq9-secret"
    with pytest.raises(ValidationError) as err:
        SiteConfig.model_validate(raw, context={"profile_names": NAMES, "profile_info": info})
    assert "inline-Zq9-secret" not in str(err.value)
    assert "use {env: VAR} or {file: PATH}" in str(err.value)


# --- broken configs ------------------------------------------------------------------------------


def _expectations(case: Path, file: str) -> tuple[int, list[str], list[str]]:
    count, wanted, unwanted = -1, [], []
    for line in case.with_suffix(".expect").read_text(encoding="utf-8").splitlines():
        if line.startswith("errors: "):
            count = int(line.removeprefix("errors: "))
        elif line.startswith("not: "):
            unwanted.append(line.removeprefix("not: "))
        elif line:
            wanted.append(line.replace("{file}", file))
    return count, wanted, unwanted


BAD_CASES = sorted(BAD.glob("*.yaml"))


def test_enough_bad_configs() -> None:
    assert len(BAD_CASES) >= 8
    assert all(c.with_suffix(".expect").exists() for c in BAD_CASES)


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda p: p.stem)
def test_bad_config_load_site(case: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_site(case, NAMES, info)
    text = err.value.format()
    count, wanted, unwanted = _expectations(case, str(case))
    assert len(err.value.errors) == count, text
    for w in wanted:
        assert w in text, f"{w!r} not in:\n{text}"
    for u in unwanted:
        assert u not in text
    assert all(isinstance(e, LocatedError) and e.file == str(case) for e in err.value.errors)
    assert text.count("\n") == count - 1  # one line per error


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda p: p.stem)
def test_bad_config_cli_function(case: Path) -> None:
    code, text = check_config_command(case, NAMES, info)
    assert code == 2
    count, wanted, unwanted = _expectations(case, str(case))
    for w in wanted:
        assert w in text
    for u in unwanted:
        assert u not in text
    assert text.endswith(f"{count} error{'s' if count != 1 else ''} in {case}")


def test_located_error_fields() -> None:
    with pytest.raises(ConfigError) as err:
        load_site(BAD / "bad_enum.yaml", NAMES, info)
    (e,) = err.value.errors
    assert (e.line, e.column, e.key_path) == (13, 16, "devices[0].snmp.version")
    assert e.bad_value == "v4"
    assert e.valid_choices == ("v2c", "v3")


def test_unknown_profile_lists_default_names(tmp_path: Path) -> None:
    """Without an explicit list the valid names are the shipped profile files."""
    with pytest.raises(ConfigError) as err:
        load_site(BAD / "unknown_profile.yaml")
    (e,) = err.value.errors
    assert e.key_path == "devices[0].profile"
    assert set(e.valid_choices) == {p.stem for p in (REPO / "devices" / "profiles").glob("*.yaml")}


def test_cli_main_exit_code_end_to_end() -> None:
    case = BAD / "bad_enum.yaml"
    proc = subprocess.run(
        [sys.executable, "-c", "from siteconfig.check import main; main()", str(case)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    expected = f"{case}:13:16: devices[0].snmp.version: not a valid choice (got 'v4'; valid choices: v2c, v3)"
    assert expected in proc.stderr
    assert proc.stdout == ""


def test_cli_main_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


# --- yamlload on its own ------------------------------------------------------------------------


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    color: Color


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item]


def test_yamlload_enum_choices_and_nested_path(tmp_path: Path) -> None:
    f = tmp_path / "doc.yaml"
    f.write_text("items:\n  - name: a\n    color: red\n  - name: b\n    colour: blue\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(f, Doc)
    lines = err.value.format().splitlines()
    assert lines == [
        f"{f}:4:5: items[1].color: required key is missing",
        f"{f}:5:5: items[1].colour: unknown key; did you mean 'color'? (valid choices: name, color)",
    ]
    f.write_text("items:\n  - {name: a, color: blu}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(f, Doc)
    assert err.value.format() == (
        f"{f}:2:22: items[0].color: not a valid choice (got 'blu'; valid choices: red, green)"
    )


def test_yamlload_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_model(tmp_path / "none.yaml", Doc)
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(f, Doc)
    assert err.value.errors[0].line == 1


def test_device_model_is_usable_directly() -> None:
    dev = DeviceConfig.model_validate(
        {
            "id": "ups-1",
            "name": "UPS",
            "room": "mr1",
            "profile": "rfc1628-ups",
            "snmp": {"host": "10.0.0.5", "community": {"env": "X"}},
        },
        context={"profile_names": NAMES, "profile_info": info},
    )
    assert (dev.protocol, dev.transport_kind) == ("snmp", "snmp")
    assert dev.endpoint() == "snmp v2c 10.0.0.5:161"


def test_a_site_dumped_as_json_validates_again() -> None:
    """Before: the trading session's times dumped as 09:00:00 were refused when read back (HH:MM only)."""
    site = SiteConfig.model_validate(
        {"site": {"id": "rt", "name": "round trip"}, "rooms": [{"id": "mr1", "name": "主機房"}]}
    )
    again = SiteConfig.model_validate(site.model_dump(mode="json", exclude_none=True))
    assert again.compliance.trading_session == site.compliance.trading_session
