#!/usr/bin/env bash
# Fresh machine → the main job: export the embedded tiny-motion VideoMAE to ONNX (fp32 + int8),
# render clips, classify them torch-free. Offline. Extra arguments go to `vidsort demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh export
. .venv/bin/activate
HF_HUB_OFFLINE=1 vidsort demo "$@"
