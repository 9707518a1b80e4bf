#!/usr/bin/env bash
# Create .venv (once) and install vidsort with the given extras.
# torch==2.13.0 goes first: that pin takes the CPU wheel from this machine's disk, while a bare
# `torch` requirement would pull a multi-GB CUDA build; the export extra only asks torch>=2.1.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh export,dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-export}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
if [[ "$extras" == *export* ]] && ! python -c "import torch" 2>/dev/null; then
    python -m pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
fi
python -m pip install -q -e ".[$extras]" 2>&1 | grep -v '^WARNING: Location' || true
python -c "import vidsort" # fail loudly if the install did not work
