"""`roomguard doctor`'s verdicts: pure functions from gathered facts to checks (no I/O, clock injected).

roomguard/doctor.py gathers the facts (site file, systemd or status snapshots, broker and database probes,
clock references, the state directory) and hands them here; every threshold lives in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bus.status_file import STALE_AFTER_S

Status = Literal["ok", "warn", "fail"]
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "fail": 2}

# A status snapshot older than this is a process that no longer runs (`roomguard status` uses the same: the
# collector and ingest rewrite theirs every 2 s, alerts and compliance every few seconds).
SNAPSHOT_STALE_S = STALE_AFTER_S
# Clock skew. Readings are stamped with the collector's clock at poll time and the fastest devices of the
# example site are polled every 2 s (generator, leak/smoke): a skew above one such interval reorders
# readings against the database's and the alerts' clocks and moves the CC-16000 time evidence (door
# open/close, generator run minutes) by more than a poll. Half of it is worth a warning.
CLOCK_WARN_S = 0.5
CLOCK_FAIL_S = 2.0
# Ingest lag (time since ingest's last accepted write): the collector's own health readings alone are
# published every 10 s, so a minute without a write means nothing is flowing; five minutes is an outage.
LAG_WARN_S = 60.0
LAG_FAIL_S = 300.0
# A device is "not answering" when its last poll is older than this many poll intervals plus a margin
# for the request timeouts and the poll jitter.
DEVICE_STALE_INTERVALS = 3
DEVICE_STALE_MARGIN_S = 15.0


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: name, status, what was found (zh-TW and English), the fix, and per-item details."""

    name: str
    status: Status
    zh: str
    en: str
    fix: str = ""
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of `roomguard doctor --json`."""
        return {
            "check": self.name,
            "status": self.status,
            "message_zh": self.zh,
            "message_en": self.en,
            "fix": self.fix,
            "details": list(self.details),
        }


def worst(statuses: list[Status]) -> Status:
    """The worst of `statuses` (ok if empty)."""
    return max(statuses, key=_RANK.__getitem__, default="ok")


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed (warnings allowed), 1 when any check failed."""
    return 1 if any(c.status == "fail" for c in checks) else 0


# -- 1. config ------------------------------------------------------------------------------------------


def judge_config(code: int, text: str, path: str) -> Check:
    """`roomguard check-config`'s result (exit code, text) for the site file."""
    if code == 0:
        return Check(
            "config", "ok", "設定檔可載入, 所有密鑰皆可讀取", f"{path} loads and every secret resolves"
        )
    lines = tuple(ln for ln in text.splitlines() if ln.strip())
    return Check(
        "config",
        "fail",
        "設定檔有誤或密鑰無法讀取",
        f"{path} does not load or a secret does not resolve",
        f"roomguard check-config {path}; set the variables of /etc/roomguard/roomguard.env "
        "(EnvironmentFile of the units) or fix the credential files named below",
        lines[:20],
    )


# -- 2. services ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceFact:
    """What is known about one roomguard process: by systemd (`active`) or by its status snapshot."""

    name: str  # collector, ingest, alerts, compliance
    systemd_state: str | None = None  # `systemctl is-active` output, in systemd mode
    snapshot: dict[str, Any] | None = None  # its status snapshot, in snapshot mode
    liveness: str = "unknown"  # bus.status_file.liveness of the snapshot's pid


def _snapshot_state(fact: ServiceFact, now: datetime) -> tuple[bool, str]:
    """(running, why) judged from a status snapshot."""
    snap = fact.snapshot
    if snap is None:
        return False, "no status snapshot 無狀態快照"
    if "written" not in snap:
        return False, f"snapshot unreadable 快照無法讀取: {snap.get('error', '?')}"
    try:
        age = (now - datetime.fromisoformat(str(snap["written"]))).total_seconds()
    except ValueError:
        return False, "snapshot has no valid time 快照時間無效"
    if not snap.get("running", True):
        return False, f"stopped cleanly {age:.0f} s ago 已正常停止"
    if fact.liveness == "dead":
        return False, f"pid {snap.get('pid')} no longer runs (killed or crashed) 程序已終止"
    if age > SNAPSHOT_STALE_S:
        return False, f"last snapshot {age:.0f} s ago (stale > {SNAPSHOT_STALE_S:g} s) 快照過舊"
    return True, f"pid {snap.get('pid', '?')}, snapshot {age:.1f} s old"


# The command that runs each process by hand (`roomguard run` runs them all).
_COMMANDS = {
    "collector": "roomguard collect SITE",
    "ingest": "roomguard ingest SITE",
    "alerts": "roomguard alerts serve SITE",
    "compliance": "roomguard compliance serve SITE",
    "api": "roomguard api SITE",
}


def judge_services(mode: Literal["systemd", "snapshots"], facts: list[ServiceFact], now: datetime) -> Check:
    """Every expected process runs: `systemctl is-active` under systemd, else a fresh status snapshot."""
    down: list[str] = []
    details: list[str] = []
    for f in facts:
        if mode == "systemd":
            ok, why = f.systemd_state == "active", f"roomguard-{f.name}: {f.systemd_state or 'unknown'}"
        else:
            ok, state = _snapshot_state(f, now)
            why = f"{f.name}: {state}"
        details.append(("ok " if ok else "DOWN ") + why)
        if not ok:
            down.append(f.name)
    how = "systemctl is-active" if mode == "systemd" else "the status snapshots in the state dir: no systemd"
    names = ", ".join(f.name for f in facts)
    if not down:
        return Check(
            "services",
            "ok",
            f"服務皆在執行 ({names})",
            f"all running: {names} (judged by {how})",
            "",
            tuple(details),
        )
    units = " ".join(f"roomguard-{n}" for n in down)
    fix = (
        f"systemctl start {units}; journalctl -u {' -u '.join(units.split())}"
        if mode == "systemd"
        else f"start {', '.join(down)} (roomguard run SITE, or {'; '.join(_COMMANDS[n] for n in down)}) "
        "with the same --state-dir, and read its log"
    )
    return Check(
        "services",
        "fail",
        f"服務未執行: {', '.join(down)}",
        f"not running: {', '.join(down)} (judged by {how})",
        fix,
        tuple(details),
    )


# -- 3. broker ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerProbe:
    """One connection attempt with one role's credentials.

    `outcome`: connected | refused (CONNACK failure: `reason`) | unreachable (TCP refused/timeout) |
    tls (handshake or certificate) | secret (the password could not be read) | error.
    `acl`: for the collector, the PUBACK reason of its test publish (None when not tried).
    """

    role: str
    username: str | None
    outcome: str
    reason: str = ""
    acl: str | None = None
    protocol: str = "5"


_BROKER_FIXES = {
    "secret": "set the variable in /etc/roomguard/roomguard.env (EnvironmentFile of the units) or fix the "
    "credential file",
    "tls": "check mqtt.tls.ca_file (the CA that signed the broker's certificate) / cert_file / key_file and "
    "the names in the broker's certificate",
    "error": "journalctl -u mosquitto says why it closed the connection; with TLS check mqtt.tls.cert_file/"
    "key_file (the listener's require_certificate), else mqtt.protocol",
    "acl": "the broker ACL does not let the collector publish: roomguard broker-acl SITE > "
    "/etc/mosquitto/roomguard.acl; systemctl reload mosquitto",
}
_BROKER_LABELS = {"refused": "REFUSED", "secret": "NO SECRET", "tls": "TLS", "error": "FAILED"}


def judge_broker(host: str, port: int, probes: list[BrokerProbe], acl_topic: str) -> Check:
    """Each role's account connects; the collector may publish (its PUBACK is not 'not authorized')."""
    where = f"{host}:{port}"
    details: list[str] = []
    fixes: list[str] = []
    status: list[Status] = []
    # (label, reason) → the accounts it happened to: one line for a fault all accounts share.
    problems: dict[tuple[str, str], list[str]] = {}
    if probes and all(p.outcome == "unreachable" for p in probes):
        return Check(
            "broker",
            "fail",
            f"無法連線 MQTT 代理 {where} (mosquitto 是否在執行?)",
            f"MQTT broker {where} unreachable ({probes[0].reason}): is mosquitto running?",
            "systemctl start mosquitto; journalctl -u mosquitto; check mqtt.host/port in the site file",
            tuple(f"{p.role} ({p.username or 'anonymous'}): {p.reason}" for p in probes),
        )
    for p in probes:
        who = f"{p.role} ({p.username or 'anonymous'})"
        if p.outcome == "connected":
            details.append(f"ok {who}: connected (MQTT {p.protocol})")
            status.append("ok")
        else:
            label = _BROKER_LABELS.get(p.outcome, "FAILED")
            details.append(f"{label} {who}: {p.reason}")
            problems.setdefault((label, p.reason), []).append(who)
            status.append("fail")
            if p.outcome == "refused":
                fixes.append(
                    f"account {p.username}: check the password variable of mqtt.roles.{p.role} (e.g. "
                    f"ROOMGUARD_MQTT_{p.role.upper()}_PASSWORD) / the credential file, and "
                    f"mosquitto_passwd /etc/mosquitto/roomguard.passwd {p.username}"
                )
            else:
                fixes.append(_BROKER_FIXES.get(p.outcome, _BROKER_FIXES["error"]))
        if p.acl is None or p.acl == "ok":
            if p.acl == "ok":
                details.append(f"ok {who}: may publish ({acl_topic} accepted)")
        elif p.acl == "unknown":
            details.append(f"? {who}: MQTT 3.1.1 cannot tell a refused publish (ACL not verified)")
            problems.setdefault(("ACL NOT VERIFIED", "MQTT 3.1.1"), []).append(who)
            status.append("warn")
        else:
            details.append(f"DENIED {who}: publish to {acl_topic} refused: {p.acl}")
            problems.setdefault(("DENIED", f"publish to {acl_topic} refused: {p.acl}"), []).append(who)
            status.append("fail")
            fixes.append(_BROKER_FIXES["acl"])
    verdict = worst(status)
    if verdict == "ok":
        roles = ", ".join(p.role for p in probes)
        return Check(
            "broker",
            "ok",
            f"MQTT 代理 {where} 可連線, 各角色帳號皆通過",
            f"MQTT broker {where}: every account connects ({roles}); the collector may publish",
            "",
            tuple(details),
        )
    summary = "; ".join(f"{label} {', '.join(whos)}: {why}" for (label, why), whos in problems.items())
    return Check(
        "broker",
        verdict,
        f"MQTT 代理 {where} 帳號, 連線或權限有問題",
        f"MQTT broker {where}: {summary}",
        " | ".join(dict.fromkeys(fixes)),
        tuple(details),
    )


# -- 4. database ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    """The database probes: /ping, the database's existence (v1), a test write, ingest's last write."""

    url: str
    kind: str  # "InfluxDB 1.x", "v2 API (InfluxDB 2.x/3.x, VictoriaMetrics)"
    target: str  # database or bucket
    server: str = "InfluxDB"  # the name in messages; "InfluxDB/VictoriaMetrics" behind the v2 API
    unit: str = "influxdb"  # the systemd unit in fix hints
    ping_error: str | None = None  # None: /ping answered 2xx
    version: str | None = None
    exists: bool | None = None  # v1 SHOW DATABASES; None when not asked (v2) or not answered
    write_status: int | None = None
    write_error: str | None = None  # None: the test write was accepted
    last_write: datetime | None = None  # ingest's last accepted write (its status snapshot)
    ingest_db_state: str | None = None
    ingest_db_error: str | None = None
    outbox_oldest_s: float | None = None  # the collector's oldest reading not yet confirmed stored


def judge_database(f: DatabaseFacts, now: datetime, measurement: str) -> Check:
    """Reachable, the database exists, a test write is accepted, ingest is writing recently."""
    details = [f"{f.kind} at {f.url}, target {f.target}"]
    if f.ping_error is not None:
        return Check(
            "database",
            "fail",
            f"無法連線 {f.server} ({f.url}) ({f.unit} 是否在執行?)",
            f"{f.server} at {f.url} unreachable: {f.ping_error}; is {f.unit} running?",
            f"systemctl start {f.unit}; journalctl -u {f.unit}; check influxdb.url in the site file",
            tuple(details),
        )
    details.append(f"ping ok{f' (version {f.version})' if f.version else ''}")
    if f.exists is False:
        return Check(
            "database",
            "fail",
            f"資料庫 {f.target} 不存在",
            f"database {f.target} does not exist on {f.url}",
            f"CREATE DATABASE {f.target} (deploy/README.md, InfluxDB retention)",
            tuple(details),
        )
    if f.write_error is not None:
        if f.write_status in (401, 403):
            fix = (
                f"{f.server} refused the write: GRANT WRITE ON {f.target} TO <influxdb.username>; check "
                "ROOMGUARD_INFLUX_PASSWORD / ROOMGUARD_INFLUX_TOKEN"
            )
        elif f.write_status == 404:
            fix = f"the database/bucket {f.target} is missing: create it (deploy/README.md)"
        else:
            fix = f"journalctl -u {f.unit}; check the disk of the database and its retention policies"
        return Check(
            "database",
            "fail",
            f"{f.server} 拒絕測試寫入 ({f.write_status or '-'})",
            f"{f.server} refused the test write to {measurement}: {f.write_status or '-'} {f.write_error}",
            fix,
            tuple(details),
        )
    details.append(f"test write to measurement {measurement} accepted")
    status: list[Status] = ["ok"]
    notes: list[str] = []
    if f.ingest_db_state not in (None, "ok"):
        status.append("fail")
        notes.append(
            f"ingest reports the database {f.ingest_db_state}: {f.ingest_db_error or ''}".rstrip(": ")
        )
    if f.last_write is None:
        status.append("warn")
        notes.append("ingest has not written yet (no last write in its snapshot)")
    else:
        lag = (now - f.last_write).total_seconds()
        details.append(f"ingest's last write {lag:.0f} s ago")
        if lag > LAG_FAIL_S:
            status.append("fail")
            notes.append(f"ingest last wrote {lag:.0f} s ago (> {LAG_FAIL_S:g} s)")
        elif lag > LAG_WARN_S:
            status.append("warn")
            notes.append(f"ingest last wrote {lag:.0f} s ago (> {LAG_WARN_S:g} s)")
    if f.outbox_oldest_s is not None:
        details.append(f"oldest reading not yet confirmed stored: {f.outbox_oldest_s:.0f} s")
        if f.outbox_oldest_s > LAG_WARN_S:
            status.append("warn")
            notes.append(f"the collector's oldest unconfirmed reading is {f.outbox_oldest_s:.0f} s old")
    verdict = worst(status)
    if verdict == "ok":
        return Check(
            "database",
            "ok",
            f"{f.server} 可寫入, 寫入延遲正常 ({f.target})",
            f"{f.server} at {f.url} accepts writes to {f.target}; ingest is current",
            "",
            tuple(details),
        )
    return Check(
        "database",
        verdict,
        f"{f.server} 可寫入, 但 ingest 寫入落後或異常",
        f"{f.server} accepts writes, but: {'; '.join(notes)}",
        "roomguard status SITE; journalctl -u roomguard-ingest (is ingest running and subscribed?)",
        tuple(details),
    )


# -- 5. devices -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceConf:
    """A configured device: id, its address (host:port or serial port) and poll interval."""

    id: str
    address: str
    poll_interval_s: float


def judge_devices(devices: list[DeviceConf], collector: dict[str, Any] | None, now: datetime) -> Check:
    """Each device's last poll and quality from the collector's snapshot."""
    if collector is None or not isinstance(collector.get("devices"), dict):
        return Check(
            "devices",
            "fail",
            "無收集器狀態, 無法判斷設備",
            "no collector snapshot: cannot tell whether the devices answer",
            "start the collector (systemctl start roomguard-collector) with this --state-dir",
        )
    health: dict[str, Any] = collector["devices"]
    details: list[str] = []
    status: list[Status] = []
    failing: list[str] = []
    for d in devices:
        h = health.get(d.id) or {}
        quality, err = h.get("quality"), h.get("error") or ""
        last = _time(h.get("last_poll"))
        limit = DEVICE_STALE_INTERVALS * d.poll_interval_s + DEVICE_STALE_MARGIN_S
        age = (now - last).total_seconds() if last else None
        where = f"{d.id} @ {d.address}"
        if last is None:
            verdict, why = "fail", "never polled 從未輪詢"
        elif age is not None and age > limit:
            verdict, why = "fail", f"last poll {age:.0f} s ago (> {limit:g} s) 輪詢停滯"
        elif quality == "good":
            verdict, why = "ok", f"good, polled {age:.0f} s ago"
        elif quality == "partial":
            verdict, why = "warn", f"partial answer 部分回應 {err}".rstrip()
        else:
            verdict, why = "fail", f"{quality} 無回應 {err}".rstrip()
        status.append(verdict)  # type: ignore[arg-type]
        details.append(f"{verdict.upper() if verdict != 'ok' else 'ok'} {where}: {why}")
        if verdict != "ok":
            failing.append(f"{where} ({why})")
    verdict_all = worst(status)
    if verdict_all == "ok":
        return Check(
            "devices",
            "ok",
            f"{len(devices)} 台設備皆正常回應",
            f"all {len(devices)} devices answer",
            "",
            tuple(details),
        )
    return Check(
        "devices",
        verdict_all,
        f"設備異常: {', '.join(f.split(' ')[0] for f in failing)}",
        f"not answering or degraded: {'; '.join(failing)}",
        "check power, cabling and the address/credentials of each device named; "
        "roomguard probe modbus|snmp … against its address",
        tuple(details),
    )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


# -- 6. clock -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockFacts:
    """The clock references found: timedatectl's NTPSynchronized, chronyc's offset, InfluxDB's Date."""

    ntp_synchronized: bool | None = None  # timedatectl show -p NTPSynchronized --value
    chrony_offset_s: float | None = None  # chronyc tracking "System time"
    # Local send/receive times of the /ping request and the server's Date header (1 s resolution).
    http_sent: datetime | None = None
    http_received: datetime | None = None
    http_date: datetime | None = None
    http_source: str = ""


def http_skew_bound(sent: datetime, received: datetime, date: datetime) -> float:
    """The smallest skew the Date header proves, in seconds (signed: + means the local clock is ahead).

    RFC 9110 §5.6.7 dates have whole seconds: the server's clock read somewhere in [date, date + 1 s)
    while ours read somewhere in [sent, received]; only a gap between those two intervals is a skew.
    """
    ahead = (sent - (date.replace(microsecond=0) + _ONE_S)).total_seconds()
    behind = (date.replace(microsecond=0) - received).total_seconds()
    return ahead if ahead > 0 else (-behind if behind > 0 else 0.0)


def judge_clock(f: ClockFacts) -> Check:
    """In sync: chrony's offset or systemd's NTP flag where there is one, else the database's Date."""
    fix = "timedatectl set-ntp true, or install chrony (apt install chrony) and point it at your NTP servers"
    limits = f"warn > {CLOCK_WARN_S:g} s, fail > {CLOCK_FAIL_S:g} s"
    if f.chrony_offset_s is not None:
        off = abs(f.chrony_offset_s)
        return _skew_check(off, f"chronyc tracking: offset {f.chrony_offset_s:+.3f} s", limits, fix)
    if f.ntp_synchronized is not None:
        if f.ntp_synchronized:
            return Check(
                "clock", "ok", "系統時鐘已與 NTP 同步", "clock synchronised (timedatectl NTPSynchronized=yes)"
            )
        return Check(
            "clock",
            "fail",
            "系統時鐘未與 NTP 同步",
            "clock not synchronised (timedatectl NTPSynchronized=no)",
            fix,
        )
    if f.http_sent and f.http_received and f.http_date:
        skew = http_skew_bound(f.http_sent, f.http_received, f.http_date)
        how = f"against {f.http_source}'s Date header (1 s resolution): skew at least {skew:+.1f} s"
        return _skew_check(abs(skew), how, limits, fix)
    return Check(
        "clock",
        "warn",
        "無法判斷時鐘是否同步 (無 NTP 工具、資料庫無回應)",
        "cannot tell whether the clock is in sync: no timedatectl/chronyc answer and no database Date header",
        fix,
    )


def _skew_check(off: float, how: str, limits: str, fix: str) -> Check:
    if off > CLOCK_FAIL_S:
        return Check(
            "clock", "fail", f"時鐘偏差 {off:.1f} 秒", f"clock off by {off:.1f} s ({how}; {limits})", fix
        )
    if off > CLOCK_WARN_S:
        return Check(
            "clock", "warn", f"時鐘偏差 {off:.1f} 秒", f"clock off by {off:.1f} s ({how}; {limits})", fix
        )
    return Check("clock", "ok", "時鐘偏差在容許範圍內", f"clock in sync ({how}; {limits})")


# -- 7. state directory ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateDirFacts:
    """The state directory: mode, owner, the expected owner (the service user) and free space."""

    path: str
    exists: bool
    mode: int | None = None
    owner: str | None = None
    expected_owner: str | None = None  # the user the collector runs as, or `roomguard`; None: unknown
    free_bytes: int | None = None
    outbox_max_bytes: int = 512 * 1024 * 1024


def judge_state_dir(f: StateDirFacts) -> Check:
    """Exists, 0700, owned by the service user, room for the outbox's byte bound (warn below twice it)."""
    if not f.exists:
        return Check(
            "state-dir",
            "fail",
            f"狀態目錄 {f.path} 不存在",
            f"state directory {f.path} does not exist",
            f"install -d -m 0700 -o roomguard -g roomguard {f.path} (systemd: StateDirectory=roomguard)",
        )
    problems: list[str] = []
    fixes: list[str] = []
    status: list[Status] = ["ok"]
    if f.mode is not None and f.mode & 0o077:
        problems.append(f"mode {f.mode:04o}, not 0700")
        fixes.append(f"chmod 0700 {f.path}")
        status.append("warn")
    if f.expected_owner and f.owner != f.expected_owner:
        problems.append(f"owned by {f.owner}, not the service user {f.expected_owner}")
        fixes.append(f"chown -R {f.expected_owner}: {f.path}")
        status.append("fail")
    free = f.free_bytes
    details = [f"{f.path}: mode {f.mode or 0:04o}, owner {f.owner}, free {_mib(free)}"]
    if free is not None and free < f.outbox_max_bytes:
        problems.append(f"only {_mib(free)} free, less than the outbox bound {_mib(f.outbox_max_bytes)}")
        fixes.append("free disk space (journal: journalctl --vacuum-size=…) or lower outbox.max_bytes")
        status.append("fail")
    elif free is not None and free < 2 * f.outbox_max_bytes:
        problems.append(f"{_mib(free)} free, under twice the outbox bound {_mib(f.outbox_max_bytes)}")
        fixes.append("free disk space before an outage fills the outbox")
        status.append("warn")
    verdict = worst(status)
    if verdict == "ok":
        return Check(
            "state-dir",
            "ok",
            "狀態目錄權限與空間正常",
            f"{f.path}: 0700, owner {f.owner}, {_mib(free)} free",
            "",
            tuple(details),
        )
    return Check(
        "state-dir",
        verdict,
        "狀態目錄有問題",
        f"{f.path}: {'; '.join(problems)}",
        "; ".join(fixes),
        tuple(details),
    )


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024 / 1024:.0f} MiB"


_ONE_S = timedelta(seconds=1)


# -- 8. web API ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiFacts:
    """The web API's answer to GET /healthz (status None: no answer, `error` says why)."""

    url: str
    status: int | None
    database: str | None = None
    error: str | None = None


def judge_api(f: ApiFacts) -> Check:
    """The API answers /healthz with 200 (503: up, but its records database is down)."""
    if f.status == 200:
        return Check("api", "ok", "網頁與 API 正常回應", f"{f.url} answers 200")
    if f.status == 503:
        return Check(
            "api",
            "fail",
            "網頁與 API 執行中, 但紀錄資料庫無法使用",
            f"{f.url} answers 503: the records database is {f.database or 'down'}",
            "check records.url in the site file and the state directory's records.db; journalctl -u "
            "roomguard-api",
        )
    found = f"HTTP {f.status}" if f.status is not None else (f.error or "no answer")
    return Check(
        "api",
        "fail",
        "網頁與 API 沒有回應",
        f"{f.url}: {found}",
        "systemctl status roomguard-api (or roomguard run / roomguard api SITE); api.host and api.port "
        "in the site file say where it listens",
    )


@dataclass(frozen=True, slots=True)
class Report:
    """Every check of one run."""

    site: str
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of `--json`."""
        return {
            "site": self.site,
            "status": worst([c.status for c in self.checks]),
            "exit_code": exit_code(self.checks),
            "checks": [c.as_dict() for c in self.checks],
        }


_MARK = {"ok": "✓", "warn": "!", "fail": "✗"}


def render(report: Report, verbose: bool = False) -> str:
    """One line per check (✓ ! ✗, zh-TW then English), the fix under anything not ok."""
    lines = [f"roomguard doctor 健康檢查 — site 站點 {report.site}"]
    for c in report.checks:
        lines.append(f"{_MARK[c.status]} {c.name:<9} {c.zh} — {c.en}")
        if c.status != "ok" or verbose:
            lines += [f"    {d}" for d in c.details if verbose or not d.startswith("ok ")]
        if c.fix and c.status != "ok":
            lines.append(f"    fix 修正: {c.fix}")
    return "\n".join(lines)


__all__ = [
    "ApiFacts",
    "BrokerProbe",
    "Check",
    "ClockFacts",
    "DatabaseFacts",
    "DeviceConf",
    "Report",
    "ServiceFact",
    "StateDirFacts",
    "exit_code",
    "http_skew_bound",
    "judge_api",
    "judge_broker",
    "judge_clock",
    "judge_config",
    "judge_database",
    "judge_devices",
    "judge_services",
    "judge_state_dir",
    "render",
    "worst",
]
