"""Real servers for integration tests: mosquitto, InfluxDB 1.6 and VictoriaMetrics on free loopback ports.

Each server runs from a generated config in its own temp dir. `stop()` then `start()` brings it back on
the SAME port and data dir, which is what the outage tests need; `kill()` is the SIGKILL variant.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from testkit.ports import reserve_port

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
_LIVE: set[Service] = set()


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (testkit/ports.py)."""
    return reserve_port()


class ServiceStartError(RuntimeError):
    """A server did not come up (or exited); the message holds the tail of its log."""


class Service:
    """One server process: started from `argv()`, ready when `_ready()` says so, logs to `log_path`."""

    name = "service"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_tcp_port()
        self.log_path = workdir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def argv(self) -> list[str]:
        """Command line of the server."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server accepts requests."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL (http://127.0.0.1:PORT, or mqtt://… for the broker)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self.running and self._proc else None

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the server's log (start, stop and restart all append to one file)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def start(self) -> None:
        """Start the server (same port, same data) and wait until it accepts requests."""
        if self.running:
            return
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log.flush()
        # Own session: signals we send reach only this server, never the pytest process group.
        self._proc = subprocess.Popen(
            self.argv(), cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._close_log()
                raise ServiceStartError(f"{self.name} exited with {code} on start:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.kill()
        raise ServiceStartError(
            f"{self.name} not ready on port {self.port} within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Graceful stop (SIGTERM, the way systemd stops it); SIGKILL if it hangs."""
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        """Hard stop (SIGKILL): nothing flushed, as after a power cut of the process."""
        self._signal_and_wait(signal.SIGKILL)

    def _signal_and_wait(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None
        _LIVE.discard(self)
        self._close_log()
        # A restart on the same port must not race the old listener's close.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _accepts(self.port):
            time.sleep(0.05)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} port={self.port} running={self.running} dir={self.workdir}>"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _http(url: str, data: bytes | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, data=data, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


class Mosquitto(Service):
    """mosquitto 2.0 with a password file and persistence, as deploy/ configures it."""

    name = "mosquitto"
    username = "roomguard"
    password = "test-broker-pass"  # a test-only credential the tests use
    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        autosave_interval_s: int | None = None,
        *,
        tls: bool = False,
        require_certificate: bool = True,
        acl: str | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        """`tls`: an extra TLS listener on `tls_port` with a test CA in `tls_dir` (see `TestPki`).

        `acl`: the text of a mosquitto ACL file (mosquitto.conf(5) `acl_file`), in `acl_path`; change
        the file and call `reload()` to apply it.
        `extra_config`: lines appended at the end of the config (a bridge section, an `include_dir`).
        """
        super().__init__(workdir, port)
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        passwd = workdir / "passwd"
        # -c creates the file, -b takes the password from the command line (mosquitto_passwd(1)).
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(passwd), self.username, self.password],
            check=True,
            capture_output=True,
        )
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwd}",
            "persistence true",
            # mosquitto.conf(5): the location must end with a slash.
            f"persistence_location {self.data_dir}/",
            "log_dest stdout",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            "connection_messages true",
            "max_queued_messages 200000",  # mosquitto.conf(5) default 1000 drops an ingest outage's backlog
        ]
        self.acl_path = workdir / "acl"
        if acl is not None:
            self.acl_path.write_text(acl)
            lines.append(f"acl_file {self.acl_path}")
        self.tls_port: int | None = None
        self.pki: TestPki | None = None
        if tls:
            self.pki = TestPki(workdir / "pki")
            self.tls_port = free_tcp_port()
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.pki.ca_cert}",
                f"certfile {self.pki.server_cert}",
                f"keyfile {self.pki.server_key}",
                f"require_certificate {'true' if require_certificate else 'false'}",
            ]
        if autosave_interval_s is not None:
            # mosquitto.conf(5): the in-memory db is saved every N s (default 1800) and on SIGTERM;
            # only this bounds what a SIGKILL of the broker loses.
            lines.append(f"autosave_interval {autosave_interval_s}")
        if os.geteuid() == 0:
            # mosquitto.conf(5) `user`: started as root it drops to user "mosquitto", which cannot read
            # our root-owned 0600 password file or write the temp persistence dir. Stay root.
            lines.append("user root")
        # Last: after a `connection` line mosquitto.conf(5) reads bridge options until the next one.
        lines += extra_config
        self.config_path.write_text("\n".join(lines) + "\n")

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its ACL and password files (mosquitto(8), SIGNALS)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)

    @property
    def url(self) -> str:
        """mqtt://127.0.0.1:PORT (no credentials in it)."""
        return f"mqtt://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        """mosquitto -c CONFIG."""
        return ["mosquitto", "-c", str(self.config_path)]

    def _ready(self) -> bool:
        return _accepts(self.port) and (self.tls_port is None or _accepts(self.tls_port))


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


class TestPki:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca_cert, self.ca_key = self._ca("ca", "roomguard test CA")
        # A second, unrelated CA: trusting it instead of the real one must fail verification.
        self.other_ca_cert, _ = self._ca("other-ca", "roomguard unrelated CA")
        self.server_cert, self.server_key = self._leaf("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1")
        self.client_cert, self.client_key = self._leaf("client", "roomguard-test-client", "")

    def _ca(self, name: str, cn: str) -> tuple[Path, Path]:
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            key,
            "-out",
            cert,
        )
        return cert, key

    def _leaf(self, name: str, cn: str, ext: str) -> tuple[Path, Path]:
        cert, key, csr = self.dir / f"{name}.crt", self.dir / f"{name}.key", self.dir / f"{name}.csr"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", key, "-out", csr)
        extfile = self.dir / f"{name}.ext"
        extfile.write_text(ext + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.ca_cert,
            "-CAkey",
            self.ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            cert,
            "-extfile",
            extfile,
        )
        return cert, key


class Influxd(Service):
    """InfluxDB 1.6 with temp meta/data/wal dirs and only its HTTP API on loopback."""

    name = "influxd"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        database: str = "roomguard_test",
        *,
        continuous_queries: bool = False,
    ) -> None:
        """`continuous_queries`: run the CQ service, checking every second whether a query is due (1.x
        docs, "[continuous_queries] run-interval"; a CQ still runs only at its own interval boundaries)."""
        super().__init__(workdir, port)
        self.database = database
        cq = (
            'enabled = true\n  log-enabled = true\n  run-interval = "1s"'
            if continuous_queries
            else "enabled = false"
        )
        # The top-level bind-address is the RPC service used by backup/restore; it cannot be switched
        # off in 1.6, so keep it on loopback on a free port of its own.
        self.rpc_port = free_tcp_port()
        self.config_path = workdir / "influxdb.conf"
        meta, data, wal = workdir / "meta", workdir / "data", workdir / "wal"
        # Keys as in the 1.6 sample config. Upstream docs name `reporting-disabled`, while this build's
        # `influxd config` prints `reporting-enabled`; both are written (unknown keys are ignored).
        self.config_path.write_text(
            f"""reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{meta}"

[data]
  dir = "{data}"
  wal-dir = "{wal}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[continuous_queries]
  {cq}
"""
        )

    def argv(self) -> list[str]:
        """influxd run -config CONFIG."""
        return ["influxd", "run", "-config", str(self.config_path)]

    def _ready(self) -> bool:
        try:
            return _http(self.url + "/ping", timeout=0.5)[0] == 204
        except OSError:
            return False

    def start(self) -> None:
        """Start and make sure the test database exists (CREATE DATABASE is idempotent in 1.x)."""
        super().start()
        self.create_database(self.database)

    def create_database(self, name: str) -> None:
        """CREATE DATABASE through the HTTP API."""
        self.query(f'CREATE DATABASE "{name}"', database=None)

    def query(self, q: str, database: str | None = "") -> dict[str, Any]:
        """Run InfluxQL via POST /query and return the decoded JSON (raises on HTTP or query errors)."""
        params = {"q": q, "epoch": "ns"}
        db = self.database if database == "" else database
        if db:
            params["db"] = db
        status, body = _http(self.url + "/query", data=urllib.parse.urlencode(params).encode(), timeout=10)
        result: dict[str, Any] = json.loads(body)
        if status != 200 or "error" in result or any("error" in r for r in result.get("results", [])):
            raise RuntimeError(f"influxd query {q!r} failed: {status} {body[:500]!r}")
        return result

    def rows(self, q: str, database: str | None = "") -> list[dict[str, Any]]:
        """Rows of all series of a SELECT, each as {tag/column: value} (time in ns)."""
        out: list[dict[str, Any]] = []
        for res in self.query(q, database).get("results", []):
            for series in res.get("series", []):
                for values in series["values"]:
                    row = dict(zip(series["columns"], values, strict=True))
                    out.append({**series.get("tags", {}), **row})
        return out


class VictoriaMetrics(Service):
    """VictoriaMetrics single node; accepts InfluxDB line protocol on /write and /api/v2/write."""

    name = "victoria-metrics"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.data_dir = workdir / "data"

    def argv(self) -> list[str]:
        """victoria-metrics with test-friendly search flags."""
        return [
            "victoria-metrics",
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=1",  # months (`victoria-metrics -help`): test points are "now"
            # `-help`: latencyOffset (default 30s) hides points newer than now-30s from queries, and the
            # response cache would serve stale results between a test's writes; off for tests.
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]

    def _ready(self) -> bool:
        try:
            return _http(self.url + "/health", timeout=0.5) == (200, b"OK")
        except OSError:
            return False

    def flush(self) -> None:
        """Make rows written so far searchable now (they are buffered ~1 s otherwise).

        VictoriaMetrics docs (single-node, "Troubleshooting"): /internal/force_flush makes recently
        ingested data visible to queries; meant for tests and debugging.
        """
        status, body = _http(self.url + "/internal/force_flush", timeout=10)
        if status != 200:
            raise RuntimeError(f"force_flush: {status} {body[:200]!r}")

    def export(
        self, match: str, min_series: int = 0, min_samples: int = 0, timeout_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """Raw samples via /api/v1/export (JSON lines: labels, values, timestamps in ms).

        VictoriaMetrics answers a write with 204 before the rows reach its storage (seen with 1.79), so
        this polls until at least `min_series` series and `min_samples` samples in all are visible, or
        `timeout_s` passes (then it returns what it has and the caller's assertion shows the gap).
        """
        query = urllib.parse.urlencode({"match[]": match})
        deadline = time.monotonic() + timeout_s
        while True:
            self.flush()
            status, body = _http(f"{self.url}/api/v1/export?{query}", timeout=10)
            if status != 200:
                raise RuntimeError(f"export {match}: {status} {body[:500]!r}")
            series = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            samples = sum(len(s["values"]) for s in series)
            if (len(series) >= min_series and samples >= min_samples) or time.monotonic() > deadline:
                return series
            time.sleep(0.1)


def _cleanup() -> None:
    """Last resort if the process dies before a teardown: never leave servers behind."""
    for svc in list(_LIVE):
        svc.kill()


atexit.register(_cleanup)


S = TypeVar("S", bound=Service)


def serve(svc: S) -> Iterator[S]:
    """Start `svc`, yield it, then stop it and remove its work dir (for fixtures)."""
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(svc.workdir, ignore_errors=True)
