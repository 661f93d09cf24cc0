#!/usr/bin/env bash
# make-certs: the TLS certificates of the roomguard broker (mosquitto's 8883 listener, deploy/mosquitto).
#
#   deploy/make-certs.sh [--dir DIR] [--host NAME]... [--ip ADDRESS]...
#
# Writes into DIR (default $MOSQUITTO_ETC/certs, i.e. /etc/mosquitto/certs):
#   roomguard-ca.crt      the site CA; copy it to every remote client (site file mqtt.tls.ca_file)
#   roomguard-ca.key      the CA's key, root only (0600); never leaves this box
#   roomguard-broker.crt  the broker's certificate, signed by the CA, with subjectAltName = every --host
#                         and --ip (default: this host's names, localhost, 127.0.0.1, ::1 and `hostname -I`)
#   roomguard-broker.key  its key, readable by root and the mosquitto group (0640)
#   roomguard-broker.san  the names it was made for (to notice a change)
#
# Safe to re-run: an existing CA is never replaced (clients trust it); the broker certificate is made again
# only when it is missing, not signed by the CA, lacks a requested name, or expires within 30 days.
# To start over with a new CA, remove DIR yourself and copy the new CA to every client.
set -euo pipefail

DIR=${MOSQUITTO_ETC:-/etc/mosquitto}/certs
HOSTS=()
IPS=()
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    --host) HOSTS+=("$2"); shift 2 ;;
    --ip) IPS+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-certs: 未知的參數 unknown argument: $1 (valid: --dir, --host, --ip)" >&2; exit 2 ;;
  esac
done
if ((${#HOSTS[@]} == 0)); then
  HOSTS=("$(hostname)" localhost)
  fqdn=$(hostname -f 2>/dev/null || true)
  [[ -n $fqdn && $fqdn != "$(hostname)" ]] && HOSTS+=("$fqdn")
fi
if ((${#IPS[@]} == 0)); then
  IPS=(127.0.0.1 ::1)
  # shellcheck disable=SC2207  # one address per word is what hostname(1) -I prints
  IPS+=($(hostname -I 2>/dev/null || true))
fi

san=""
for h in "${HOSTS[@]}"; do san+="${san:+,}DNS:$h"; done
for a in "${IPS[@]}"; do san+="${san:+,}IP:$a"; done

CA_CRT=$DIR/roomguard-ca.crt CA_KEY=$DIR/roomguard-ca.key
CRT=$DIR/roomguard-broker.crt KEY=$DIR/roomguard-broker.key SAN_FILE=$DIR/roomguard-broker.san
# The mosquitto group reads the broker's key (mosquitto drops root before loading certificates).
GROUP=$(getent group mosquitto >/dev/null && echo mosquitto || echo root)

install -d -m 0750 -o root -g "$GROUP" "$DIR"
umask 077

if [[ -f $CA_CRT && -f $CA_KEY ]]; then
  echo "make-certs: 沿用既有 CA keeping the existing CA $CA_CRT"
elif [[ -f $CA_CRT || -f $CA_KEY ]]; then
  echo "make-certs: $CA_CRT 與 $CA_KEY 只有其一 only one of the CA's two files exists; restore the other or remove both" >&2
  exit 1
else
  # EC P-256: short keys every MQTT client library accepts. 10 years: replacing a CA means touching
  # every client, so it outlives the box.
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 3650 \
    -subj "/O=roomguard/CN=roomguard site CA $(hostname)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$CA_KEY" -out "$CA_CRT" 2>/dev/null
  chmod 0600 "$CA_KEY"
  chmod 0644 "$CA_CRT"
  echo "make-certs: 已建立 CA created $CA_CRT"
fi

broker_ok() {
  [[ -f $CRT && -f $KEY ]] || return 1
  openssl verify -CAfile "$CA_CRT" "$CRT" >/dev/null 2>&1 || return 1
  # openssl-x509(1) -checkend: fails when the certificate expires within that many seconds.
  openssl x509 -in "$CRT" -noout -checkend $((30 * 86400)) >/dev/null || return 1
  # The names it was made for (openssl prints IPv6 addresses expanded, so compare what was asked).
  [[ -f $SAN_FILE && $(cat "$SAN_FILE") == "$san" ]] || return 1
}

if broker_ok; then
  echo "make-certs: 沿用既有伺服器憑證 keeping the broker certificate $CRT"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
    -subj "/O=roomguard/CN=$(hostname)" -keyout "$tmp/key" -out "$tmp/csr" 2>/dev/null
  # 825 days: the longest validity current TLS clients accept for a server certificate.
  openssl x509 -req -in "$tmp/csr" -CA "$CA_CRT" -CAkey "$CA_KEY" -CAcreateserial -CAserial "$tmp/serial" \
    -days 825 -sha256 -out "$tmp/crt" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' "$san") \
    2>/dev/null
  install -m 0640 -o root -g "$GROUP" "$tmp/key" "$KEY"
  install -m 0644 -o root -g root "$tmp/crt" "$CRT"
  printf '%s\n' "$san" > "$SAN_FILE"
  chmod 0644 "$SAN_FILE"
  echo "make-certs: 已建立伺服器憑證 created $CRT ($san)"
fi
