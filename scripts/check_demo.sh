#!/usr/bin/env bash
# The demo's acceptance check: `vidsort demo --out DIR` offline, then `vidsort classify DIR` on
# 64 clips of the independent renderer (8 per class) with --precision fp32 and int8.
# Prints fp32 accuracy and int8/fp32 agreement. Usage: scripts/check_demo.sh [WORKDIR] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
seed=${2:-4242}
. .venv/bin/activate
export HF_HUB_OFFLINE=1
mkdir -p "$work"
rm -rf "$work/demo" "$work/clips"
vidsort demo --out "$work/demo" > "$work/demo.log"
python - "$work/clips" "$seed" <<'PY'
import sys
from pathlib import Path

import numpy as np
from vidsort.export.demo.check_tiny_motion import independent_clip
from vidsort.export.demo.synthetic import LABELS, write_frames

out, seed = Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True)
for li, label in enumerate(LABELS):
    for j in range(8):
        clip_seed = int(np.random.SeedSequence([seed, li, j]).generate_state(1)[0])
        frames = independent_clip(label, clip_seed)
        write_frames(out / f"{label.replace(' ', '_')}__{j}.mp4", frames, fps=25)
PY
for precision in fp32 int8; do
    # exit status 1 would mean a failed file: the JSON lines say which
    vidsort classify "$work/demo" "$work"/clips/*.mp4 --json --top-k 1 \
        --precision "$precision" > "$work/$precision.jsonl" || true
done
python - "$work" <<'PY'
import json
import sys
from pathlib import Path

work = Path(sys.argv[1])
rows = {p: [json.loads(line) for line in open(work / f"{p}.jsonl")] for p in ("fp32", "int8")}
truth = [Path(r["video"]).name.split("__")[0].replace("_", " ") for r in rows["fp32"]]
top1 = {p: [r["predictions"][0]["label"] if "predictions" in r else None for r in rs]
        for p, rs in rows.items()}
accuracy = sum(a == b for a, b in zip(top1["fp32"], truth)) / len(truth)
agreement = sum(a == b for a, b in zip(top1["fp32"], top1["int8"])) / len(truth)
print(f"{len(truth)} clips: fp32 accuracy {accuracy:.1%}, int8 agrees with fp32 on {agreement:.1%}")
for t, p in zip(truth, top1["fp32"]):
    if t != p:
        print(f"  missed: {t} -> {p}")
PY
