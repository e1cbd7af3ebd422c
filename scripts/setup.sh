#!/usr/bin/env bash
# Set up ddspbench on a fresh Debian machine with Python 3.11. Idempotent: re-running it only installs
# what is missing.
#
#   bash scripts/setup.sh              the main job: a virtual environment in .venv with the project (with ONNX and
#                                      ONNX Runtime, for `ddspbench export`) and the offline FAD embedding aisfx. No root, no browser, no database: the smoke
#                                      preset runs on generated data.
#   bash scripts/setup.sh --soundfont  also FluidSynth and GM soundfonts (Debian packages, as root), which the
#                                      `soundfont` dataset of the quick, compare and paper presets renders with
#                                      (FluidR3_GM from fluid-soundfont-gm first, else TimGM6mb).
#   bash scripts/setup.sh --tests      everything the tests need (what .ci/run uses): the dev extras, FluidSynth
#                                      and the soundfont, Chromium (the HTML report test) and PostgreSQL (the
#                                      distributed-sweep test; started, listening on localhost only).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
APT_PKGS=""
EXTRAS="[onnx]"  # ddspbench export --format onnx and ONNX Runtime timing work out of the box
for arg in "$@"; do
  case "$arg" in
    --soundfont) APT_PKGS="$APT_PKGS fluidsynth fluid-soundfont-gm timgm6mb-soundfont" ;;
    --tests) APT_PKGS="$APT_PKGS fluidsynth fluid-soundfont-gm timgm6mb-soundfont chromium postgresql"; EXTRAS="[dev]" ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg (use --soundfont or --tests)" >&2; exit 2 ;;
  esac
done

need_apt=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || case " $need_apt " in *" $p "*) ;; *) need_apt="$need_apt $p" ;; esac
done
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$need_apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
  else
    echo "setup: missing Debian packages:$need_apt (run as root or: sudo apt-get install -y$need_apt); what needs them will skip or fail" >&2
  fi
fi

case " $APT_PKGS " in
  *" postgresql "*)
    # PostgreSQL for the distributed-sweep test (listens on localhost only).
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      pg_ctlcluster 15 main start 2>/dev/null || true
    fi ;;
esac

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned in pyproject.toml (torch==2.13.0, a CPU build on this machine's disk).
.venv/bin/python -m pip install -q -e ".$EXTRAS"
# aisfx (the offline FAD embedding) pins librosa 0.9.2 / numpy 1.23 but runs on current ones:
# install it without its dependencies.
.venv/bin/python -m pip install -q --no-deps 'aisfx==0.1.2'
echo "setup: ready (.venv)"
