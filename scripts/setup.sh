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
log=.venv/vidsort-install.log
pip_install() {  # quiet unless it fails: then show pip's whole output
    python -m pip install -q "$@" >"$log" 2>&1 || { cat "$log"; echo "pip install $* failed" >&2; exit 1; }
}
pip_install --upgrade pip
if [[ "$extras" == *export* ]] && ! python -c "import torch" 2>/dev/null; then
    echo "installing torch 2.13.0 (CPU) ..."
    pip_install torch==2.13.0
fi
echo "installing vidsort[$extras] ..."
pip_install -e ".[$extras]"
python -c "import vidsort" # fail loudly if the install did not work
