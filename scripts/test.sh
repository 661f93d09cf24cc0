#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian 12 box: installs what it needs, then lint, types, tests.
# Every service the tests use (mosquitto, snmpsim, our simulators, ...) is started by pytest fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy devices siteconfig bus records collector ingest alerts compliance dashboards api roomguard testkit bench tests
lint-imports
# pytest exits 5 when it collects nothing: that is a failure and is not masked here.
exec pytest -q -p no:cacheprovider "$@"
