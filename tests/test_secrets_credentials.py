"""`{file: "${CREDENTIALS_DIRECTORY}/…"}`: secret files inside the directory systemd gives each unit.

systemd.exec(5) "Credentials": a unit with LoadCredential= finds its secrets under
$CREDENTIALS_DIRECTORY, /run/credentials/<unit>/, which differs per unit; the site file names the
variable, the unit supplies it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from siteconfig.check import check_config_command
from siteconfig.secrets import SecretError, SecretRef
from testkit.example_site import EXAMPLE, SECRETS


def test_braced_variable_expands_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mqtt_collector_password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    ref = SecretRef.model_validate({"file": "${CREDENTIALS_DIRECTORY}/mqtt_collector_password"})
    assert ref.resolve() == "s3cret"
    # The reference, never the expanded path or the value, is what describe() shows.
    assert ref.describe() == "file:${CREDENTIALS_DIRECTORY}/mqtt_collector_password"


def test_expanded_absolute_path_ignores_the_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "k").write_text("v")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    ref = SecretRef.model_validate({"file": "${CREDENTIALS_DIRECTORY}/k"})
    assert ref.file_path(tmp_path / "elsewhere") == creds / "k"
    assert ref.resolve(tmp_path / "elsewhere") == "v"


def test_unset_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    ref = SecretRef.model_validate({"file": "${CREDENTIALS_DIRECTORY}/influx_password"})
    with pytest.raises(SecretError) as err:
        ref.resolve()
    text = str(err.value)
    assert "CREDENTIALS_DIRECTORY is not set" in text
    assert "${CREDENTIALS_DIRECTORY}/influx_password" in text
    assert "LoadCredential=" in text


def test_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty value would turn the path into /influx_password: refuse it the same way.
    monkeypatch.setenv("ROOMGUARD_T_DIR", "")
    ref = SecretRef.model_validate({"file": "${ROOMGUARD_T_DIR}/influx_password"})
    with pytest.raises(SecretError, match="ROOMGUARD_T_DIR is not set"):
        ref.resolve()


@pytest.mark.parametrize("path", ["$CREDENTIALS_DIRECTORY/x", "${CREDENTIALS_DIRECTORY/x", "/etc/${1BAD}/x"])
def test_other_dollar_forms_are_refused_at_load(path: str) -> None:
    with pytest.raises(ValidationError, match=r"\$\{NAME\}"):
        SecretRef.model_validate({"file": path})


def test_a_bad_variable_form_in_a_site_file_names_the_field(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        EXAMPLE.read_text().replace(
            "password: {env: ROOMGUARD_INFLUX_PASSWORD}", "password: {file: $CREDENTIALS_DIRECTORY/influx}"
        )
    )
    code, text = check_config_command(site)
    assert code == 2
    assert "influxdb.password.file" in text
    assert "${NAME}" in text


def test_plain_paths_are_unchanged(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("p\n")
    ref = SecretRef.model_validate({"file": "plain"})
    assert ref.file_path(tmp_path) == tmp_path / "plain"
    assert ref.resolve(tmp_path) == "p"


def _credentials_site(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text().replace(
        "password: {env: ROOMGUARD_INFLUX_PASSWORD}",
        'password: {file: "${CREDENTIALS_DIRECTORY}/influx_password"}',
    )
    assert "${CREDENTIALS_DIRECTORY}/influx_password" in text
    site = tmp_path / "site.yaml"
    site.write_text(text)
    return site


def test_check_config_names_the_field_when_the_directory_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    site = _credentials_site(tmp_path)
    code, text = check_config_command(site, resolve_secrets=True)
    assert code == 2
    assert "influxdb.password" in text
    assert "CREDENTIALS_DIRECTORY is not set" in text
    # With the unit's directory in place the same file resolves.
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "influx_password").write_text("x\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    code, text = check_config_command(site, resolve_secrets=True)
    assert code == 0, text
