#!/usr/bin/env bash
# The whole test suite, from nothing: the test servers, a venv with tox, then every tox env.
# Usage: bash scripts/test.sh [tox env list, default: all of tox.ini's envlist]
set -euo pipefail
cd "$(dirname "$0")/.."

# Real servers/browsers the tests start on 127.0.0.1: Debian's influxdb (InfluxDB 1.x, for the
# metric sink), mosquitto (the MQTT plugin's broker), chromium (the WebRTC preview's browser
# test) and GStreamer's RTSP server (a live camera, run by the system python3). Installed when
# missing and root.
missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -n "$(find /usr/lib -name 'GstRtspServer-1.0.typelib' -print -quit 2>/dev/null)" ] &&
  [ -n "$(find /usr/lib -name 'libgstx264.so' -print -quit 2>/dev/null)" ] &&
  [ -n "$(find /usr/lib -name 'libgstrtp.so' -print -quit 2>/dev/null)" ] ||
  missing+=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "!! missing ${missing[*]} and not root with apt-get: those tests will skip" >&2
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
# Create every env at once (their downloads overlap: torch for inference18 and rknn is ~6 GB
# each), then run the tests one env after another, so that no two suites share the CPUs.
# An env whose install fails (a dropped download, a full disk) is retried once, alone, so that its
# own error is the last thing printed; the free space is printed first.
if ! "$venv/bin/tox" run-parallel --notest --parallel all --parallel-no-spinner; then
  echo "!! creating the tox envs failed; free space, then a second try one env at a time:" >&2
  df -h . "${TMPDIR:-/tmp}" "${PIP_CACHE_DIR:-$HOME/.cache}" >&2 || true
  "$venv/bin/tox" run --notest
fi
exec "$venv/bin/tox" run
