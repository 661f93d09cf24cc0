"""The Grafana dashboards (dashboards/): regenerating reproduces the committed files byte for byte, every
panel is titled, described and has a unit, and after the simulated room ran through MQTT into a real
InfluxDB every panel's query (template variables substituted as Grafana would) answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.boards import BOARDS
from dashboards.build import HERE, differing, render
from dashboards.panels import NO_DATA, NO_DATA_YET
from devices.catalog import builtin_catalog
from testkit.example_site import ROOT, SECRETS, example_site
from testkit.services import Influxd, Mosquitto

JSON_FILES = sorted((HERE / "json").glob("*.json"))
CJK = re.compile(r"[\u4e00-\u9fff]")
NUMERIC_PANELS = {"timeseries", "stat", "gauge"}


def _panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in JSON_FILES:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            yield f"{path.stem}#{panel['id']}", panel


def test_regenerating_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    # Regenerate with: roomguard dashboards build
    assert differing() == []
    assert {p.name for p in JSON_FILES} == {f"{name}.json" for name in BOARDS}
    files = render()
    for rel, text in files.items():
        assert (HERE / rel).read_bytes() == text.encode("utf-8"), rel
        assert text.endswith("\n")


def test_build_command_writes_and_checks(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "roomguard", "dashboards", "build", "--out", str(tmp_path), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert cli("--check").returncode == 1
    assert cli().returncode == 0
    assert cli("--check").returncode == 0
    (tmp_path / "json" / "power.json").write_text("{}\n")
    out = cli("--check")
    assert out.returncode == 1
    assert "power.json" in out.stderr
    assert "room.json" not in out.stderr


def test_every_panel_has_a_zh_tw_title_an_english_description_and_a_unit() -> None:
    panels = list(_panels())
    assert len(panels) >= 30
    for where, panel in panels:
        assert CJK.search(panel["title"]), where
        assert re.search(r"[A-Za-z]{3}", panel["title"]), where  # and the English name
        assert panel["description"], where
        assert not CJK.search(panel["description"]), where
        defaults = panel["fieldConfig"]["defaults"]
        if panel["type"] in NUMERIC_PANELS:
            assert defaults.get("unit") not in (None, ""), where
        assert defaults["noValue"] in (NO_DATA, NO_DATA_YET), where
        assert panel["datasource"]["uid"] == "roomguard-influxdb", where
        assert panel["targets"], where
        assert all(t["rawQuery"] for t in panel["targets"]), where


def test_every_catalog_class_is_on_some_dashboard() -> None:
    text = "\n".join(t["query"] for _, p in _panels() for t in p["targets"])
    for cls in builtin_catalog().classes:
        assert f'"{cls}"' in text or f"|{cls}|" in text or f"({cls}|" in text or f"|{cls})" in text, cls


def test_provisioning_uses_no_literal_secret() -> None:
    ds = (HERE / "provisioning" / "datasources" / "roomguard.yaml").read_text()
    assert "password: $__env{ROOMGUARD_INFLUX_PASSWORD}" in ds
    assert "dbName: roomguard" in ds
    for secret in set(SECRETS.values()) - {"x"}:
        assert secret not in ds


# ------------------------------------------------------------------------------ against a real InfluxDB


def _values(result: dict[str, Any]) -> list[str]:
    return [str(v[-1]) for r in result["results"] for s in r.get("series", []) for v in s["values"]]


def _substitute(query: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        query = query.replace(f"${name}", values[name])
    assert not re.search(r"\$(?!tag_)[A-Za-z_{]", query), f"a variable left in {query}"
    return query


@pytest.mark.integration
def test_every_panel_query_answers_after_the_demo_pipeline_ran(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Every target of every committed panel answers; the rollup continuous queries that `setup-db`
    created turn the same readings into 1-minute points of every measurement."""
    database = "dashboards_e2e"
    influxd = Influxd(tmp_path / "influxd", continuous_queries=True)
    influxd.start()
    try:
        _panels_and_rollups(mosquitto, influxd, database, tmp_path)
    finally:
        influxd.stop()


def _panels_and_rollups(mosquitto: Mosquitto, influxd: Influxd, database: str, tmp_path: Path) -> None:
    site, http_port = example_site(
        tmp_path / "site.yaml",
        mqtt=(
            f"mqtt: {{host: 127.0.0.1, port: {mosquitto.port}, username: {mosquitto.username},"
            " password: {env: ROOMGUARD_MQTT_PASSWORD}}\n"
        ),
        influxdb=f"influxdb: {{url: 'http://127.0.0.1:{influxd.port}', api: v1, database: {database}}}\n",
    )
    started_ms = int(time.time() * 1000)
    env = {**os.environ, **SECRETS, "ROOMGUARD_MQTT_PASSWORD": mosquitto.password}
    # The database as an install sets it up: the raw policy as default, the rollup policy and its CQs.
    setup = subprocess.run(
        [sys.executable, "-m", "roomguard", "ingest", str(site), "setup-db"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stdout + setup.stderr
    log = tmp_path / "run.log"
    wanted = {str(c) for c in builtin_catalog().classes}
    procs: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as out:
        try:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "roomguard", "simulate", str(site), "--http-port", str(http_port)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            time.sleep(2)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "roomguard", "run", str(site), "--state-dir", str(tmp_path / "state")],
                cwd=ROOT, env=env, stdout=out, stderr=out,
            ))  # fmt: skip
            # Every class in the database (compliance evaluates on start, the collector's health every
            # 10 s), then a few more polls so that rates and intervals have two points.
            deadline = time.monotonic() + 120
            have: set[str] = set()
            while time.monotonic() < deadline and not wanted <= have:
                have = set(_values(influxd.query("SHOW MEASUREMENTS", database)))
                time.sleep(1)
            assert wanted <= have, f"missing {sorted(wanted - have)}; log: {log.read_text()[-3000:]}"
            time.sleep(12)
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()

    now_ms = int(time.time() * 1000) + 1000
    builtin = {
        "timeFilter": f"time >= {started_ms - 60_000}ms and time <= {now_ms}ms",
        "__interval_ms": "5000",
        "__interval": "5s",
        "interval": "5s",
    }
    empty_marked, answered = [], 0
    for path in JSON_FILES:
        board = json.loads(path.read_text(encoding="utf-8"))
        values = dict(builtin)
        for var in board["templating"]["list"]:
            found = _values(influxd.query(_substitute(var["query"], values), database))
            assert found, f"{path.stem}: variable {var['name']} has no values"
            values[var["name"]] = var["allValue"] if var.get("includeAll") else re.escape(sorted(found)[0])
        for panel in board["panels"]:
            where = f"{path.stem}#{panel['id']} {panel['title']}"
            sparse = panel["fieldConfig"]["defaults"]["noValue"] == NO_DATA_YET
            for target in panel["targets"]:
                q = _substitute(target["query"], values)
                result = influxd.query(q, database)  # raises on an HTTP or query error
                series = [s for r in result["results"] for s in r.get("series", [])]
                if series:
                    answered += 1
                else:
                    assert sparse, f"{where} [{target['refId']}]: no data for {q}"
                    empty_marked.append(where)
    print(f"{answered} targets answered; empty and marked {NO_DATA_YET!r}: {empty_marked}")
    assert answered >= 40

    # The continuous queries run at each minute boundary over the minutes just past (RESAMPLE FOR): wait
    # for a 1-minute point of every measurement in the rollup policy (a wait, not a bound).
    rolled: set[str] = set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not wanted <= rolled:
        result = influxd.query(
            'SELECT count("count_quality") FROM "rollup_1m"./.*/ WHERE time > now() - 1h', database
        )
        rolled = {s["name"] for r in result["results"] for s in r.get("series", [])}
        time.sleep(2)
    assert wanted <= rolled, (
        f"no 1-minute rollup of {sorted(wanted - rolled)}; influxd: {influxd.log_tail(2000)}"
    )
    points = influxd.query(
        'SELECT "count_quality", "mean_temp_c" FROM "rollup_1m"."env"',
        database,
    )
    rows = [row for r in points["results"] for s in r.get("series", []) for row in s["values"]]
    assert rows, points
    assert all(row[0] % 60_000_000_000 == 0 for row in rows), rows  # on the minute (epoch ns)
    assert all(row[1] > 0 for row in rows), rows  # the polls of each minute counted
