#!/usr/bin/env bash
# Install everything roomguard needs on Debian 12: system packages (only those missing) and the venv.
# Safe to re-run. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(python3-venv python3-dev gcc pkg-config curl
      mosquitto mosquitto-clients influxdb victoria-metrics
      snmp snmpd snmptrapd mbpoll libmodbus-dev
      nut-snmp nut-server nut-client socat
      fonts-arphic-uming poppler-utils  # evidence-pack PDFs: an embeddable TrueType CJK font; pdftotext in tests
      chromium libatomic1)
# chromium: the browser tests drive Debian's Chromium through Playwright's executable_path (no browser
# download); libatomic1: Playwright's bundled node driver links it (ldd .venv/…/playwright/driver/node).

missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "roomguard: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; fi
  echo "roomguard: installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.roomguard-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi
