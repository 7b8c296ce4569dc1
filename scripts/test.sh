#!/usr/bin/env bash
# The whole test suite, from nothing: a venv with tox, the test servers, then every tox env.
# Usage: bash scripts/test.sh [tox env list, default: all of tox.ini's envlist]
set -euo pipefail
cd "$(dirname "$0")/.."

# Real InfluxDB 1.x for the metric sink tests (Debian's package; the tests start it on 127.0.0.1).
if ! command -v influxd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing influxdb (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
  else
    echo "!! influxd is missing and this is not root with apt-get: InfluxDB tests will fail" >&2
  fi
fi

venv=.tox-venv
if [ ! -x "$venv/bin/tox" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "tox>=4.20,<5"
fi
if [ $# -gt 0 ]; then
  exec "$venv/bin/tox" run -e "$1"
fi
exec "$venv/bin/tox" run
