#!/usr/bin/env bash
# Set up everything ddspbench needs on a fresh Debian machine with Python 3.11:
# system packages (FluidSynth + a GM soundfont for the `soundfont` dataset, Chromium for the HTML
# report test, PostgreSQL for distributed sweeps), then a virtual environment in .venv with the
# project and its dev extras. Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
APT_PKGS="fluidsynth timgm6mb-soundfont chromium postgresql"

need_apt=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt="$need_apt $p"
done
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$need_apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
  else
    echo "setup: missing Debian packages:$need_apt (run as root or: sudo apt-get install -y$need_apt); tests needing them will skip" >&2
  fi
fi

# PostgreSQL for the distributed-sweep test (listens on localhost only).
if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster 15 main start 2>/dev/null || true
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned in pyproject.toml (torch==2.13.0, a CPU build on this machine's disk).
.venv/bin/python -m pip install -q -e '.[dev]'
# aisfx (the offline FAD embedding) pins librosa 0.9.2 / numpy 1.23 but runs on current ones:
# install it without its dependencies (REFERENCE §6).
.venv/bin/python -m pip install -q --no-deps 'aisfx==0.1.2'
echo "setup: ready (.venv)"
