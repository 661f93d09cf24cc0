#!/usr/bin/env bash
# The demo on a fresh Debian 12 box: installs what it needs, starts the simulated machine room of
# deploy/examples/site.yaml, a mosquitto (port 11883) and an influxd (port 18086) of its own under
# var/demo/ (unless already running there), then `roomguard run` (collector + ingest): every device's
# readings land in InfluxDB within seconds. Prints where the data is and a status line every few
# seconds. Ctrl-C stops everything it started. DEMO_SECONDS=N stops after N seconds (0 = until Ctrl-C).
# The room runs DEMO_SPEED times faster than real time (default 30), and the demo starts the generator's
# monthly test on load: about a minute later it is a CC-16000 test record and the generator item passes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
SITE=${SITE:-deploy/examples/site.yaml}

# Demo-only secrets (a real site puts these in an environment file or systemd credentials).
: "${ROOMGUARD_SNMP_COMMUNITY_UPS1:=ups1-ro}" "${ROOMGUARD_SNMP_COMMUNITY_ENV1:=env1-ro}"
: "${ROOMGUARD_SNMP_COMMUNITY_ENV2:=env2-ro}" "${ROOMGUARD_SNMP_COMMUNITY_NETBOTZ:=netbotz-ro}"
: "${ROOMGUARD_SNMP_COMMUNITY_DOOR:=door-ro}" "${ROOMGUARD_SNMPV3_AUTH_KEY:=demo-auth-pass-phrase}"
: "${ROOMGUARD_SNMPV3_PRIV_KEY:=demo-priv-pass-phrase}" "${ROOMGUARD_SNMP_TRAP_COMMUNITY:=trap-ro}"
: "${ROOMGUARD_MQTT_PASSWORD:=demo}" "${ROOMGUARD_MQTT_COLLECTOR_PASSWORD:=demo-collector}"
: "${ROOMGUARD_MQTT_INGEST_PASSWORD:=demo-ingest}" "${ROOMGUARD_MQTT_ALERTS_PASSWORD:=demo-alerts}"
: "${ROOMGUARD_MQTT_COMPLIANCE_PASSWORD:=demo-compliance}"
: "${ROOMGUARD_ALERT_WEBHOOK_KEY:=demo-webhook-key}"
: "${ROOMGUARD_INFLUX_TOKEN:=demo}" "${ROOMGUARD_INFLUX_PASSWORD:=demo}"
export ROOMGUARD_SNMP_COMMUNITY_UPS1 ROOMGUARD_SNMP_COMMUNITY_ENV1 ROOMGUARD_SNMP_COMMUNITY_ENV2 \
  ROOMGUARD_SNMP_COMMUNITY_NETBOTZ ROOMGUARD_SNMP_COMMUNITY_DOOR ROOMGUARD_SNMPV3_AUTH_KEY \
  ROOMGUARD_SNMPV3_PRIV_KEY ROOMGUARD_SNMP_TRAP_COMMUNITY ROOMGUARD_MQTT_PASSWORD \
  ROOMGUARD_MQTT_COLLECTOR_PASSWORD ROOMGUARD_MQTT_INGEST_PASSWORD ROOMGUARD_MQTT_ALERTS_PASSWORD \
  ROOMGUARD_MQTT_COMPLIANCE_PASSWORD \
  ROOMGUARD_ALERT_WEBHOOK_KEY ROOMGUARD_INFLUX_TOKEN ROOMGUARD_INFLUX_PASSWORD

DEMO=var/demo
STATE=$DEMO/state
mkdir -p "$DEMO" "$STATE"
# The simulated room runs DEMO_SPEED times faster than real time, while every reading carries the wall
# clock: the demo's copy of the site scales the generator test's 30 minutes on load the same way, so the
# 30-minute monthly test takes about a minute here and still counts (a real site keeps 30).
DEMO_SPEED=${DEMO_SPEED:-30}
MIN_MINUTES=$(python3 -c "print(round(30 / float('$DEMO_SPEED'), 3))")
sed -e "s/min_minutes: 30,/min_minutes: $MIN_MINUTES,/" "$SITE" > "$DEMO/site.yaml"
grep -q "min_minutes: $MIN_MINUTES," "$DEMO/site.yaml" || { echo "could not scale the generator test rule" >&2; exit 1; }
# The web API and status page (off in the example file: a site turns it on); the demo's copy serves it.
API_PORT=${API_PORT:-18470}
grep -q '^api:' "$DEMO/site.yaml" || printf '\napi:\n  enabled: true\n  port: %s\n' "$API_PORT" >> "$DEMO/site.yaml"
SITE=$DEMO/site.yaml
roomguard check-config "$SITE"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
MQTT_PORT=11883 INFLUX_PORT=18086 INFLUX_DB=roomguard
MQTT_USER=$(sed -n '/^mqtt:/,/^[a-z]/s/^  username: *//p' "$SITE" | head -1)
SITE_ID=$(sed -n '/^site:/,/^[a-z]/s/^  id: *//p' "$SITE" | head -1)

# --- mosquitto on 11883 (deploy/mosquitto/roomguard.conf, with the site's accounts and ACL) ------------
if listening $MQTT_PORT; then
  echo "mosquitto already listening on $MQTT_PORT: using it"
else
  mkdir -p "$DEMO/mosquitto"
  chmod 700 "$DEMO/mosquitto"
  # One account per role (mqtt.roles) plus the read-only one, with the passwords the site file references.
  rm -f "$DEMO/mosquitto/passwd"
  site_accounts() {
    python - "$SITE" <<'PY'
import sys
from siteconfig.config import load_site
m = load_site(sys.argv[1]).mqtt
accounts = {m.username: m.password} if m.username else {}
accounts.update({c.username: c.password for c in m.roles.values()})
for user, secret in accounts.items():
    print(user, secret.resolve() if secret else "")
PY
  }
  create=(-c)
  while read -r user pass; do
    mosquitto_passwd "${create[@]}" -b "$DEMO/mosquitto/passwd" "$user" "$pass"
    create=()
  done < <(site_accounts)
  chmod 600 "$DEMO/mosquitto/passwd"
  roomguard broker-acl "$SITE" > "$DEMO/mosquitto/acl"
  CONF=$DEMO/mosquitto/mosquitto.conf
  # The shipped config minus its TLS listener (the demo has no certificates; tests cover TLS).
  sed -e '/^# BEGIN tls-listener/,/^# END tls-listener/d' \
      -e "s|^listener .*|listener $MQTT_PORT 127.0.0.1|" \
      -e "s|^password_file .*|password_file $PWD/$DEMO/mosquitto/passwd|" \
      -e "s|^acl_file .*|acl_file $PWD/$DEMO/mosquitto/acl|" \
      -e "s|^persistence_location .*|persistence_location $PWD/$DEMO/mosquitto/|" \
      -e "s|^log_dest .*|log_dest stdout|" deploy/mosquitto/roomguard.conf > "$CONF"
  # Started as root, mosquitto drops to user "mosquitto", which cannot read our 0600 files.
  [[ $(id -u) == 0 ]] && echo "user root" >> "$CONF"
  mosquitto -c "$CONF" > "$DEMO/mosquitto.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do listening $MQTT_PORT && break; sleep 0.2; done
  listening $MQTT_PORT || { cat "$DEMO/mosquitto.log"; exit 1; }
  echo "mosquitto on 127.0.0.1:$MQTT_PORT with the site's ACL (log: $DEMO/mosquitto.log)"
fi

# --- influxd on 18086 (config from deploy/influxdb/influxdb.conf, data under var/demo/influxdb) --------
if curl -fs "http://127.0.0.1:$INFLUX_PORT/ping" >/dev/null 2>&1; then
  echo "influxd already answering on $INFLUX_PORT: using it"
else
  IDIR=$PWD/$DEMO/influxdb
  mkdir -p "$IDIR"
  # Demo: no auth on the loopback-only API (the site's influx username/password are then ignored).
  sed -e "s|/var/lib/influxdb|$IDIR|g" -e "s|127.0.0.1:8086|127.0.0.1:$INFLUX_PORT|" \
      -e "s|127.0.0.1:8088|127.0.0.1:18088|" -e "s|auth-enabled = true|auth-enabled = false|" \
      deploy/influxdb/influxdb.conf > "$DEMO/influxdb.conf"
  influxd run -config "$DEMO/influxdb.conf" > "$DEMO/influxd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$INFLUX_PORT/ping" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$INFLUX_PORT/ping" >/dev/null || { tail -20 "$DEMO/influxd.log"; exit 1; }
  echo "influxd on 127.0.0.1:$INFLUX_PORT (log: $DEMO/influxd.log, data: $IDIR)"
fi
# The database, its retention policies and the 1-minute rollup continuous queries (idempotent).
roomguard ingest "$SITE" setup-db > "$DEMO/setup-db.log" 2>&1 || { cat "$DEMO/setup-db.log"; exit 1; }
tail -1 "$DEMO/setup-db.log"

# --- the duty team's webhook receiver: verifies each alert's signature and prints it here ----------------
HOOK_PORT=$(sed -n 's|^ *url: "http://127.0.0.1:\([0-9]*\)/roomguard".*|\1|p' "$SITE" | head -1)
if [[ -n $HOOK_PORT ]] && ! listening "$HOOK_PORT"; then
  # Process substitution, not a pipe: $! is then the receiver itself (of a pipe it is sed, and the
  # receiver outlives the demo).
  roomguard alerts receive --port "$HOOK_PORT" --log "$DEMO/alerts.jsonl" > >(sed -u 's/^/ALERT 告警 │ /') 2>&1 &
  PIDS+=($!)
fi

# --- simulator, then collector + ingest + alerts ------------------------------------------------------
roomguard simulate "$SITE" --speed "$DEMO_SPEED" > "$DEMO/simulator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fs localhost:18080/state >/dev/null 2>&1 && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$DEMO/simulator.log"; exit 1; }
  sleep 0.2
done
# --- web users (one per role the demo shows) and today's duty roster (posted on the door display) -------
: "${ROOMGUARD_DEMO_WEB_PASSWORD:=demo-pass-1}"
( umask 077; printf '%s\n' "$ROOMGUARD_DEMO_WEB_PASSWORD" > "$DEMO/web-password" )
existing=$(roomguard users "$SITE" list --state-dir "$STATE" 2>/dev/null || true)
for spec in "demo-operator:operator:值班員 王小明" "demo-approver:approver:資訊主管 林美華" \
            "demo-auditor:auditor:稽核員 陳志明" "demo-admin:admin:系統管理員"; do
  IFS=: read -r user role display <<< "$spec"
  grep -qw -- "$user" <<< "$existing" ||
    roomguard users "$SITE" add "$user" --role "$role" --display-name "$display" \
      --password-file "$DEMO/web-password" --by demo --state-dir "$STATE" | sed 's/^/web 網頁 │ /'
done
# Three shifts in Taipei time (yesterday night, today's day shift, tonight), so one is on duty at any hour.
yday=$(TZ=Asia/Taipei date -d yesterday +%F) day=$(TZ=Asia/Taipei date +%F) tmrw=$(TZ=Asia/Taipei date -d tomorrow +%F)
for shift in "李大同 ${yday}T20:00 ${day}T08:00" "王小明 ${day}T08:00 ${day}T20:00" "李大同 ${day}T20:00 ${tmrw}T08:00"; do
  read -r operator starts ends <<< "$shift"
  roomguard compliance "$SITE" record duty operator="$operator" starts_at="$starts:00+08:00" \
    ends_at="$ends:00+08:00" phone=0912-345-678 approved_by="資訊主管 林美華" --by demo --state-dir "$STATE" 2>&1 |
    sed 's/^/duty 值班 │ /'
done

roomguard run "$SITE" --state-dir "$STATE" --seconds "${DEMO_SECONDS:-0}" > "$DEMO/run.log" 2>&1 &
RUN=$!
PIDS+=($RUN)

# --- access rights: a few dozen people, their grants and a quarter of badge events (every flag shows) -----
python -m compliance.access.demo "$DEMO/access" >/dev/null
for kind in holders grants badges; do
  roomguard access "$SITE" import "$kind" "$DEMO/access/$kind.csv" --by demo --state-dir "$STATE" |
    sed 's/^/access 門禁 │ /'
done
roomguard access "$SITE" flags --state-dir "$STATE" | sed -n 's/^\([A-Z][A-Z_0-9]*\) .*/\1/p' | sort | uniq -c |
  awk '{printf "%s %s×%s", (NR > 1 ? "," : "access 門禁 │ flags 異常旗標:"), $2, $1} END {print ""}'

cat <<INFO

simulator (x$DEMO_SPEED), collector, ingest, alerts and compliance running (logs: $DEMO/simulator.log, $DEMO/run.log)
data 資料: InfluxDB http://127.0.0.1:$INFLUX_PORT/query  database $INFLUX_DB (one measurement per device class)
  curl -G http://127.0.0.1:$INFLUX_PORT/query --data-urlencode "db=$INFLUX_DB" \\
       --data-urlencode "q=SELECT last(*) FROM env GROUP BY device"
  curl -G http://127.0.0.1:$INFLUX_PORT/query --data-urlencode "db=$INFLUX_DB" \\
       --data-urlencode "q=SELECT outbox_depth, outbox_dropped_total FROM system ORDER BY time DESC LIMIT 3"
  curl -G http://127.0.0.1:$INFLUX_PORT/query --data-urlencode "db=$INFLUX_DB" \\
       --data-urlencode "q=SELECT mean_temp_c, min_temp_c, max_temp_c FROM rollup_1m.env WHERE time > now() - 10m GROUP BY device"
web 網頁:        http://127.0.0.1:$API_PORT/  (demo-operator, demo-approver, demo-auditor, demo-admin; password in $DEMO/web-password)
door 門口顯示:   http://127.0.0.1:$API_PORT/door   (no login: duty operator and the room's state)
API:             http://127.0.0.1:$API_PORT/api/v1/docs   (roomguard users $SITE token create NAME --user demo-auditor)
MQTT 訊息: mosquitto_sub -p $MQTT_PORT -u $MQTT_USER -P "\$ROOMGUARD_MQTT_PASSWORD" -t "roomguard/v1/$SITE_ID/#" -v
scenarios 情境:  .venv/bin/roomguard scenario $SITE utility_outage   (from a second terminal: the alert
                 is printed here by the webhook receiver, lines starting "ALERT 告警")
alerts 告警:     .venv/bin/roomguard alerts list $SITE --state-dir $STATE
                 .venv/bin/roomguard alerts ack $SITE <id> --by <name> --state-dir $STATE
status 狀態:     .venv/bin/roomguard status $SITE --state-dir $STATE
CC-16000 查核:   .venv/bin/roomguard compliance $SITE status --state-dir $STATE
                 .venv/bin/roomguard compliance $SITE tests --state-dir $STATE
                 .venv/bin/roomguard compliance $SITE evidence-pack --from $(date +%Y-%m-01) --to $(date +%F) --state-dir $STATE
                 .venv/bin/roomguard audit $SITE verify --state-dir $STATE
門禁覆核 access: .venv/bin/roomguard access $SITE flags --state-dir $STATE
                 .venv/bin/roomguard access $SITE review start $(date +%Y)Q$(( ($(date +%-m) - 1) / 3 + 1 )) --by 機房管理人 --state-dir $STATE
                 .venv/bin/roomguard access $SITE review decide <review> --unflagged --decision keep --by 資訊主管 --state-dir $STATE
                 .venv/bin/roomguard access $SITE review export <review> --out $DEMO/review --state-dir $STATE

INFO
# The generator's monthly test on load, once everything is up: a minute later it is a test record.
( sleep 15
  roomguard scenario "$SITE" generator_monthly_test >/dev/null 2>&1 &&
    echo "started 已啟動 generator_monthly_test: 發電機月測（帶載 ≥30 % 運轉 ≥30 分鐘，模擬加速）"
  for _ in $(seq 1 60); do
    sleep 5
    if roomguard compliance "$SITE" list generator_test --state-dir "$STATE" 2>/dev/null | grep -q '"counts": true'; then
      echo "generator test recorded 發電機測試已記錄:"
      roomguard compliance "$SITE" tests --state-dir "$STATE" 2>/dev/null | sed 's/^/  /'
      for _ in $(seq 1 20); do  # the board is evaluated every 30 s
        if roomguard compliance "$SITE" status --json --state-dir "$STATE" 2>/dev/null |
           python3 -c 'import json,sys; b={l["item"]: l for l in json.load(sys.stdin)}; sys.exit(b["cc16000-05-generator-test"]["status"] != "pass")'; then
          roomguard compliance "$SITE" status --state-dir "$STATE" 2>/dev/null | grep -A3 '發電機定期測試' | sed 's/^/  /'
          break
        fi
        sleep 3
      done
      break
    fi
  done
  # The box end to end, as an operator checks it after an install (docs/doctor.md), then a backup of
  # the state directory taken while everything runs (deploy/README.md "Backup and restore").
  # The door display as the screen at the entrance shows it (no login), as text.
  echo "door 門口看板 (http://127.0.0.1:$API_PORT/door):"
  curl -fs "http://127.0.0.1:$API_PORT/door" | python3 -c '
import html, re, sys
text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", sys.stdin.read(), flags=re.S)
print("  " + re.sub(r"\s+", " ", html.unescape(text)).strip())' || echo "  (the API does not answer yet: $DEMO/run.log)"
  echo "doctor 健康檢查 (roomguard doctor):"
  roomguard doctor "$SITE" --state-dir "$STATE" 2>&1 | sed 's/^/  /'
  mkdir -p "$DEMO/backup"
  archive=$DEMO/backup/roomguard-$(date -u +%Y%m%dT%H%M%SZ).tar.gz
  echo "backup 備份 (roomguard backup, restore with: roomguard restore $archive --state-dir EMPTY_DIR):"
  roomguard backup "$SITE" "$archive" --state-dir "$STATE" 2>&1 | sed 's/^/  /'
) &
PIDS+=($!)
while kill -0 $RUN 2>/dev/null; do
  sleep 5
  kill -0 $RUN 2>/dev/null || break
  points=$(curl -fsG "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "db=$INFLUX_DB" \
    --data-urlencode "q=SELECT count(quality) FROM /.*/ WHERE time > now() - 1m" 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(sum(s["values"][0][1] for s in r.get("series", [])))' \
    2>/dev/null || echo "?")
  roomguard status "$SITE" --state-dir "$STATE" 2>/dev/null | python3 -c '
import re, sys
lines = [l.strip() for l in sys.stdin.read().splitlines()]
pick = lambda key: next((l for l in lines if l.startswith(key)), "")
short = lambda text: re.sub(r" \(pid .*?\)| 127\.0\.0\.1:\d+|  published.*", "", text)
parts = [pick("collector"), pick("broker"), pick("outbox").split(" (max")[0], pick("ingest"), pick("database"),
         re.sub(r"running 執行中; ", "", pick("alerts")),
         re.sub(r"running 執行中; |; evaluated 評估於 \S+ \S+", "", pick("compliance")),
         re.sub(r" \(pid .*", "", pick("api"))]
print(" | ".join(short(x) for x in parts if x), end="")
'
  echo " | InfluxDB points in the last minute 最近一分鐘: $points"
done
wait $RUN
