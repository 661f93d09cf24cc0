#!/usr/bin/env bash
# roomguard edge-box install for Debian 12 (deploy/README.md "Install"). Run as root (or with sudo) from a
# checkout:  sudo deploy/install.sh
#
# Safe to re-run: each step changes only what is missing or different. It never overwrites the site file,
# a credential or the CA; the venv is rebuilt only when the checkout's sources changed.
#
# Paths (environment variables, defaults in brackets; the tests point them all into a temporary dir):
#   ROOMGUARD_PREFIX [/opt/roomguard]         the venv ($ROOMGUARD_PREFIX/venv)
#   ROOMGUARD_ETC [/etc/roomguard]            site.yaml, credentials/
#   ROOMGUARD_STATE [/var/lib/roomguard]      outbox, records, status (0700, user roomguard)
#   ROOMGUARD_SYSTEMD_DIR [/etc/systemd/system]
#   ROOMGUARD_SBIN [/usr/local/sbin]          the roomguard-admin link
#   MOSQUITTO_ETC [/etc/mosquitto]            conf.d/roomguard.conf, roomguard.passwd, roomguard.acl, certs/
#   MOSQUITTO_DATA [/var/lib/mosquitto]       the broker's persistence
#   ROOMGUARD_MQTT_PORT [1883], ROOMGUARD_MQTT_TLS_PORT [8883]   the broker's listeners (loopback, TLS)
#   ROOMGUARD_INFLUX_URL [http://127.0.0.1:8086]                 InfluxDB, for a new site file
#   ROOMGUARD_CERT_HOSTS, ROOMGUARD_CERT_IPS  names/addresses for the broker certificate (make-certs.sh)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${ROOMGUARD_PREFIX:-/opt/roomguard}
ETC=${ROOMGUARD_ETC:-/etc/roomguard}
STATE=${ROOMGUARD_STATE:-/var/lib/roomguard}
SYSTEMD_DIR=${ROOMGUARD_SYSTEMD_DIR:-/etc/systemd/system}
SBIN=${ROOMGUARD_SBIN:-/usr/local/sbin}
MOSQ_ETC=${MOSQUITTO_ETC:-/etc/mosquitto}
MOSQ_DATA=${MOSQUITTO_DATA:-/var/lib/mosquitto}
MQTT_PORT=${ROOMGUARD_MQTT_PORT:-1883}
MQTT_TLS_PORT=${ROOMGUARD_MQTT_TLS_PORT:-8883}
INFLUX_URL=${ROOMGUARD_INFLUX_URL:-http://127.0.0.1:8086}
VENV=$PREFIX/venv
SITE=$ETC/site.yaml
CREDS=$ETC/credentials
USER_NAME=roomguard
UNITS=(roomguard-collector.service roomguard-ingest.service roomguard-alerts.service roomguard-compliance.service
       roomguard-api.service)
# Secrets this script generates (random, only when absent): the broker accounts of the site file's
# mqtt.username and mqtt.roles, and the InfluxDB user's password.
GENERATED=(mqtt_password mqtt_collector_password mqtt_ingest_password mqtt_alerts_password
           mqtt_compliance_password influx_password)

DONE=()   # what this run changed
LEFT=()   # what a person still has to do
say() { printf 'roomguard-install: %s\n' "$*"; }
did() { DONE+=("$1"); say "$1"; }

if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "roomguard-install: 需要 root need root (or sudo)" >&2; exit 1; }
  exec sudo --preserve-env=ROOMGUARD_PREFIX,ROOMGUARD_ETC,ROOMGUARD_STATE,ROOMGUARD_SYSTEMD_DIR,ROOMGUARD_SBIN,MOSQUITTO_ETC,MOSQUITTO_DATA,ROOMGUARD_MQTT_PORT,ROOMGUARD_MQTT_TLS_PORT,ROOMGUARD_INFLUX_URL,ROOMGUARD_CERT_HOSTS,ROOMGUARD_CERT_IPS "$0" "$@"
fi

# install_if_changed SRC DEST MODE OWNER:GROUP: copy only when the content differs (a re-run touches
# nothing), then make sure of the mode and owner.
install_if_changed() {
  local src=$1 dest=$2 mode=$3 owner=$4
  if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
    chmod "$mode" "$dest"; chown "$owner" "$dest"
    return 1
  fi
  install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
  did "已更新 updated $dest"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- 1. Debian packages (only the missing ones) --------------------------------------------------------
DEBS=(python3-venv mosquitto mosquitto-clients openssl influxdb curl)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "安裝套件 installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  DONE+=("套件 packages: ${missing[*]}")
fi
MOSQ_GROUP=$(getent group mosquitto >/dev/null && echo mosquitto || echo root)

# --- 2. the service user -------------------------------------------------------------------------------
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
  # useradd(8): a system account with its own group, no login shell, no home directory of its own.
  useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
    --comment "roomguard machine-room monitoring" "$USER_NAME"
  did "已建立使用者 created system user $USER_NAME"
fi

# --- 3. directories --------------------------------------------------------------------------------------
install -d -m 0755 -o root -g root "$PREFIX"
# /etc/roomguard: root writes, the service group reads (the site file); credentials: root only, systemd
# (PID 1, root) copies each unit's credentials for it (LoadCredential=).
install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
install -d -m 0700 -o root -g root "$CREDS" "$CREDS/snmp" "$CREDS/alerts"
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$STATE"
install -d -m 0755 -o root -g root "$SYSTEMD_DIR" "$MOSQ_ETC" "$MOSQ_ETC/conf.d"
[[ -d $MOSQ_DATA ]] || install -d -m 0750 -o "$MOSQ_GROUP" -g "$MOSQ_GROUP" "$MOSQ_DATA"

# --- 4. the venv, roomguard installed into it (not editable: the checkout may go away) --------------------
PKGS=(pyproject.toml devices siteconfig bus records collector ingest alerts compliance dashboards api roomguard)
hash=$(cd "$SRC" && find "${PKGS[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
stamp=$VENV/.roomguard-source
if [[ -x $VENV/bin/python && $(readlink -f "$VENV/bin/python") != /usr/bin/* ]]; then
  rm -rf "$VENV"   # made by an earlier version of this script from another interpreter
fi
if [[ -x $VENV/bin/roomguard && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
  say "roomguard 已是最新 already installed from these sources ($VENV)"
else
  # Debian's own interpreter, not whichever python3 is first on root's PATH: the units run the venv as
  # user roomguard, who cannot reach an interpreter under /root (pyenv) or a user's home.
  [[ -x $VENV/bin/python ]] || /usr/bin/python3 -m venv "$VENV"
  # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout. pip's cache
  # (~/.cache/pip) keeps the dependencies' wheels for the next run.
  (cd "$SRC" && tar -cf - --exclude=__pycache__ "${PKGS[@]}") | (mkdir "$TMP/src" && tar -xf - -C "$TMP/src")
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$TMP/src"
  echo "$hash" > "$stamp"
  did "已安裝 installed roomguard into $VENV"
fi
RG=$VENV/bin/roomguard

# --- 5. the site file: copied once, never overwritten ---------------------------------------------------
if [[ -f $SITE ]]; then
  say "保留既有設定 keeping the site file $SITE"
else
  # The example, pointed at this box's broker and database, with every {env: ROOMGUARD_…} secret turned
  # into a systemd credential: {file: "${CREDENTIALS_DIRECTORY}/NAME"} (siteconfig/secrets.py expands
  # ${NAME}; each unit's LoadCredential= lines decide which NAMEs it gets). SNMP secrets are files of
  # credentials/snmp/, notification secrets of credentials/alerts/ (loaded as snmp_<file>, alerts_<file>).
  {
    echo "# Installed by deploy/install.sh from deploy/examples/site.yaml: broker 127.0.0.1:$MQTT_PORT,"
    echo "# InfluxDB $INFLUX_URL, secrets as systemd credentials under $CREDS (deploy/README.md)."
    echo "# Edit the rooms and devices; install.sh never overwrites this file."
    # shellcheck disable=SC2016  # ${CREDENTIALS_DIRECTORY} is written literally, for the site file
    sed -E \
      -e 's#\{env: ROOMGUARD_SNMPV3_([A-Z0-9_]+)\}#{file: "${CREDENTIALS_DIRECTORY}/snmp_v3_\L\1"}#' \
      -e 's#\{env: ROOMGUARD_SNMP_([A-Z0-9_]+)\}#{file: "${CREDENTIALS_DIRECTORY}/snmp_\L\1"}#' \
      -e 's#\{env: ROOMGUARD_ALERTS?_([A-Z0-9_]+)\}#{file: "${CREDENTIALS_DIRECTORY}/alerts_\L\1"}#' \
      -e 's#\{env: ROOMGUARD_(MQTT|INFLUX)_([A-Z0-9_]+)\}#{file: "${CREDENTIALS_DIRECTORY}/\L\1_\2"}#' \
      -e '/^mqtt:/,/^[a-z]/s#^  port: [0-9]+.*#  port: '"$MQTT_PORT"'#' \
      -e '/^influxdb:/,/^[a-z]/s#^  url: .*#  url: '"$INFLUX_URL"'#' \
      "$SRC/deploy/examples/site.yaml"
  } > "$TMP/site.yaml"
  if grep -Eq '^[^#]*\{env: ROOMGUARD_' "$TMP/site.yaml"; then
    echo "roomguard-install: 範例仍有環境變數 the example still has {env: …} secrets this script cannot map:" >&2
    grep -En '^[^#]*\{env: ROOMGUARD_' "$TMP/site.yaml" >&2
    exit 1
  fi
  install -m 0640 -o root -g "$USER_NAME" "$TMP/site.yaml" "$SITE"
  did "已建立設定 created $SITE (from deploy/examples/site.yaml)"
  LEFT+=("編輯機房與設備 edit rooms and devices in $SITE, then: $RG check-config $SITE")
fi
"$RG" check-config --no-secrets "$SITE" >/dev/null || { echo "roomguard-install: $SITE 有錯誤 has errors (above)" >&2; exit 1; }

# --- 6. credentials: random, only when absent ------------------------------------------------------------
for name in "${GENERATED[@]}"; do
  [[ -f $CREDS/$name ]] && continue
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$CREDS/$name")
  did "已產生密碼 generated credential $CREDS/$name"
done
chmod 0600 "$CREDS"/mqtt_* "$CREDS"/influx_*
if [[ -z $(ls -A "$CREDS/snmp") ]] && grep -q 'CREDENTIALS_DIRECTORY}/snmp_' "$SITE"; then
  LEFT+=("SNMP 密鑰 put each SNMP community / v3 key: the site file's snmp_<name> is the file $CREDS/snmp/<name>, mode 0600")
fi

# --- 7. mosquitto: accounts, ACL, configuration, certificates ---------------------------------------------
# Accounts: the site's read-only user and one per role, each with its credential. mosquitto_passwd(1) -U
# hashes a plain "user:password" file in place, so no password appears on a command line. Hashes are
# salted, so the file is rebuilt only when an account or password changed (a digest kept with the
# credentials says which).
CREDENTIALS_DIRECTORY=$CREDS "$VENV/bin/python" - "$SITE" > "$TMP/accounts" <<'PY'
import sys
from siteconfig.config import load_site
m = load_site(sys.argv[1]).mqtt
accounts = {m.username: m.password} if m.username else {}
accounts.update({role.username: role.password for role in m.roles.values()})
for user, secret in sorted(accounts.items()):
    if secret is None:
        sys.exit(f"mqtt account {user} has no password in the site file")
    print(f"{user}:{secret.resolve()}")
PY
digest=$(sha256sum < "$TMP/accounts" | cut -d' ' -f1)
PASSWD=$MOSQ_ETC/roomguard.passwd
if [[ -f $PASSWD && -f $CREDS/.mosquitto-passwd.sha256 && $(cat "$CREDS/.mosquitto-passwd.sha256") == "$digest" ]]; then
  say "帳號未變 broker accounts unchanged ($PASSWD)"
else
  mosquitto_passwd -U "$TMP/accounts"
  install -m 0640 -o root -g "$MOSQ_GROUP" "$TMP/accounts" "$PASSWD"
  echo "$digest" > "$CREDS/.mosquitto-passwd.sha256"
  chmod 0600 "$CREDS/.mosquitto-passwd.sha256"
  did "已更新 updated $PASSWD ($(wc -l < "$PASSWD") accounts)"
  MOSQ_CHANGED=1
fi
rm -f "$TMP/accounts"

"$RG" broker-acl "$SITE" > "$TMP/acl"
install_if_changed "$TMP/acl" "$MOSQ_ETC/roomguard.acl" 0640 "root:$MOSQ_GROUP" && MOSQ_CHANGED=1

sed -e "s#/etc/mosquitto/#$MOSQ_ETC/#g" -e "s#/var/lib/mosquitto/#$MOSQ_DATA/#g" \
  -e "s#^listener 1883 127.0.0.1\$#listener $MQTT_PORT 127.0.0.1#" -e "s#^listener 8883\$#listener $MQTT_TLS_PORT#" \
  "$SRC/deploy/mosquitto/roomguard.conf" > "$TMP/mosquitto.conf"
install_if_changed "$TMP/mosquitto.conf" "$MOSQ_ETC/conf.d/roomguard.conf" 0644 root:root && MOSQ_CHANGED=1

cert_args=()
for h in ${ROOMGUARD_CERT_HOSTS:-}; do cert_args+=(--host "$h"); done
for a in ${ROOMGUARD_CERT_IPS:-}; do cert_args+=(--ip "$a"); done
certs_before=$({ sha256sum < "$MOSQ_ETC/certs/roomguard-broker.crt"; } 2>/dev/null || echo none)
MOSQUITTO_ETC=$MOSQ_ETC "$SRC/deploy/make-certs.sh" --dir "$MOSQ_ETC/certs" "${cert_args[@]}" | sed 's/^/  /'
if [[ $certs_before != $(sha256sum < "$MOSQ_ETC/certs/roomguard-broker.crt") ]]; then
  DONE+=("TLS 憑證 broker certificate in $MOSQ_ETC/certs (CA: roomguard-ca.crt)")
  MOSQ_CHANGED=1
fi

# --- 8. systemd units, rendered with this install's paths -----------------------------------------------
for unit in "${UNITS[@]}" roomguard.target roomguard-backup.service roomguard-backup.timer; do
  # \b: the default with or without a trailing slash; each expression runs once per line, so a replaced
  # path (a test's /tmp/x/etc/roomguard) is not replaced again by the same expression.
  sed -e "s#/opt/roomguard\\b#$PREFIX#g" -e "s#/etc/roomguard\\b#$ETC#g" -e "s#/var/lib/roomguard\\b#$STATE#g" \
    "$SRC/deploy/systemd/$unit" > "$TMP/$unit"
  install_if_changed "$TMP/$unit" "$SYSTEMD_DIR/$unit" 0644 root:root && UNITS_CHANGED=1
done

# --- 8b. roomguard-admin: roomguard with the box's credentials, for the administrator ------------------------
sed -e "s#@ETC@#$ETC#" -e "s#@VENV@#$VENV#" -e "s#@STATE@#$STATE#" "$SRC/deploy/roomguard-admin" > "$TMP/roomguard-admin"
install -d -m 0755 "$PREFIX/bin" "$SBIN"
install_if_changed "$TMP/roomguard-admin" "$PREFIX/bin/roomguard-admin" 0755 root:root || true
if [[ $(readlink "$SBIN/roomguard-admin" 2>/dev/null) != "$PREFIX/bin/roomguard-admin" ]]; then
  ln -sfn "$PREFIX/bin/roomguard-admin" "$SBIN/roomguard-admin"
  did "已連結 linked $SBIN/roomguard-admin"
fi
ADMIN=$SBIN/roomguard-admin

# --- 9. start (only on a box where systemd runs, and only the real unit directory) ----------------------
if [[ -d /run/systemd/system && $SYSTEMD_DIR == /etc/systemd/system ]]; then
  systemctl daemon-reload
  [[ -n ${MOSQ_CHANGED:-} ]] && systemctl reload-or-restart mosquitto.service
  systemctl enable --quiet roomguard.target "${UNITS[@]}"
  systemctl enable --quiet --now roomguard-backup.timer   # daily backup of the state directory
  if [[ -n ${UNITS_CHANGED:-} ]]; then systemctl restart roomguard.target; else systemctl start roomguard.target; fi
  DONE+=("服務已啟用 units enabled and started: systemctl status 'roomguard-*'")
else
  LEFT+=("未啟動服務 units installed in $SYSTEMD_DIR but NOT started (systemd is not running here):
      systemctl daemon-reload && systemctl enable --now roomguard.target")
fi

# --- 10. InfluxDB: database, retention policies, rollups (`roomguard ingest setup-db`) ----------------------
influx=$("$VENV/bin/python" -c 'import sys; from siteconfig.config import load_site; print(load_site(sys.argv[1]).influxdb.url)' "$SITE")
if ! curl -fsS --max-time 5 "$influx/ping" >/dev/null 2>&1; then
  LEFT+=("資料庫 InfluxDB at $influx does not answer; once it runs: $ADMIN ingest setup-db")
elif setup=$("$ADMIN" ingest setup-db 2>&1); then
  sed 's/^/  /' <<<"$setup"
  # setup-db changes only what differs; a re-run that finds everything in place is not a change.
  if ! grep -q "nothing to change" <<<"$setup"; then DONE+=("資料庫 InfluxDB database set up at $influx"); fi
else
  sed 's/^/  /' <<<"$setup" >&2
  LEFT+=("資料庫 \`roomguard ingest setup-db\` failed (above); rerun: $ADMIN ingest setup-db")
fi

# --- summary ----------------------------------------------------------------------------------------------
echo
echo "roomguard 安裝摘要 install summary"
if ((${#DONE[@]})); then
  echo "  本次變更 changed:"; printf '    - %s\n' "${DONE[@]}"
else
  echo "  無任何變更 nothing changed (already installed)"
fi
if ((${#LEFT[@]})); then
  echo "  待辦 still to do:"; printf '    - %s\n' "${LEFT[@]}"
fi
