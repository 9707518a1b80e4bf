#!/usr/bin/env bash
# The GPU check in one command (benchmarks/gpu/README.md): exports a VideoMAE-Base-shaped model
# (random weights) with vidsort, runs `vidsort bench` on CUDA fp32/fp16 at batch 1, 8, 32 beside
# PyTorch on the same GPU, parity, and end to end on a 1080p clip with 8 decode workers; writes
# gpu_check.json and gpu_check.md under $OUT (or --out) and nothing elsewhere; ends within 8 min.
#
#   GPU machine, after the kit:  source .gpu/last/install-kit.sh && bash benchmarks/gpu/run.sh
#   here (CPU dry run, in CI):   bash benchmarks/gpu/run.sh --dry-run --out /tmp/gpu-dry
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
if [[ -z "${PYTHONPATH:-}" && -x .venv/bin/python ]]; then
    python=.venv/bin/python  # this checkout's venv; on the GPU machine the kit sets PYTHONPATH
fi
args=("$@")
if [[ " $* " != *" --out "* ]]; then
    [[ -n "${OUT:-}" ]] || { echo "run.sh: set \$OUT or pass --out DIR" >&2; exit 2; }
    args+=(--out "$OUT")
fi
if [[ " $* " == *" --dry-run "* ]]; then
    exec "$python" benchmarks/gpu/check.py "${args[@]}"  # no GPU budget: the CPU may be shared
fi
# 8 minutes in all: the phases stop starting at --budget-s (420 s), this ends a stuck one
exec timeout 475 "$python" benchmarks/gpu/check.py --budget-s 420 "${args[@]}"
