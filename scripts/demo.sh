#!/usr/bin/env bash
# The demo on a fresh Debian 12 box: installs what it needs, starts the simulated machine room of
# deploy/examples/site.yaml and polls it, printing live readings per device. Ctrl-C stops both.
# DEMO_SECONDS=N stops after N seconds (0 = run until Ctrl-C).
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
: "${ROOMGUARD_MQTT_PASSWORD:=demo}" "${ROOMGUARD_INFLUX_TOKEN:=demo}" "${ROOMGUARD_INFLUX_PASSWORD:=demo}"
export ROOMGUARD_SNMP_COMMUNITY_UPS1 ROOMGUARD_SNMP_COMMUNITY_ENV1 ROOMGUARD_SNMP_COMMUNITY_ENV2 \
  ROOMGUARD_SNMP_COMMUNITY_NETBOTZ ROOMGUARD_SNMP_COMMUNITY_DOOR ROOMGUARD_SNMPV3_AUTH_KEY \
  ROOMGUARD_SNMPV3_PRIV_KEY ROOMGUARD_SNMP_TRAP_COMMUNITY ROOMGUARD_MQTT_PASSWORD ROOMGUARD_INFLUX_TOKEN \
  ROOMGUARD_INFLUX_PASSWORD

roomguard check-config "$SITE"
mkdir -p var
roomguard simulate "$SITE" > var/simulator.log 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null; wait $SIM 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -fs localhost:18080/state >/dev/null 2>&1 && break
  kill -0 $SIM 2>/dev/null || { cat var/simulator.log; exit 1; }
  sleep 0.2
done
echo "simulator up (log: var/simulator.log). In another terminal:"
echo "  .venv/bin/roomguard scenario $SITE                   # list scenarios"
echo "  .venv/bin/roomguard scenario $SITE utility_outage    # UPS on battery, generator takes load"
roomguard poll "$SITE" --seconds "${DEMO_SECONDS:-0}"
