#!/usr/bin/env bash
# Export a Hugging Face video classifier to an ONNX model directory (fp32 + int8), then check it
# with `vidsort verify` on a sample clip: the steps of export-model.yml (GitHub Actions) for any
# CI system or a laptop.
#
#   examples/ci/export_model.sh MODEL OUT_DIR SAMPLE_VIDEO [CALIBRATION_PATH...]
#
# MODEL            Hub id (e.g. MCG-NJU/videomae-base-finetuned-kinetics), a save_pretrained
#                  directory, or the embedded tiny-motion (offline).
# OUT_DIR          the model directory to write (replaced if present): keep it as the artifact.
# SAMPLE_VIDEO     a clip `vidsort verify` classifies with every variant.
# CALIBRATION_PATH videos or folders of videos: static int8 calibrated on them (the faster int8;
#                  peaks at 3.9 GiB RSS for a VideoMAE-Base). Without: dynamic int8.
#
# Environment: VIDSORT_INSTALL=0 skips the install (vidsort[export] already there);
# VIDSORT_PIP_SPEC is what to install (default 'vidsort[export]').
# Exit status: 0 exported and verified; otherwise the failing step's (verify: 1 = a check failed).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 MODEL OUT_DIR SAMPLE_VIDEO [CALIBRATION_PATH...]" >&2
    exit 2
fi
model=$1 out=$2 video=$3
shift 3

if [ "${VIDSORT_INSTALL:-1}" != 0 ]; then
    # torch from PyTorch's CPU index first: the default wheel brings ~3 GB of CUDA libraries that
    # an export on a CPU runner never uses; vidsort[export] then finds torch already installed.
    python -m pip install --index-url https://download.pytorch.org/whl/cpu torch
    python -m pip install "${VIDSORT_PIP_SPEC:-vidsort[export]}"
fi

if [ $# -gt 0 ]; then
    quantize=(--quantize static --calibration "$@")
else
    quantize=(--quantize dynamic)
fi
vidsort export "$model" "$out" "${quantize[@]}" --overwrite
# every file against vidsort.json, every variant loaded and run on the clip; a variant whose
# top-1 differs from fp32's on it fails the job
vidsort verify "$out" --video "$video" --require-agreement
