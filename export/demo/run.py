"""`vidsort demo`: the whole job offline on the embedded tiny-motion model.

Export the embedded checkpoint (fp32 + int8) → render sample clips as real H.264 files →
classify them with the torch-free runtime → compare with PyTorch on the same clips. Needs the
export extra (torch, transformers, optimum) for the export and the PyTorch reference.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from vidsort.errors import ExportError, import_extra

MODEL_NAME = "tiny-motion"


def default_out_dir() -> Path:
    """Where the demo keeps its model dir: $VIDSORT_CACHE or ~/.cache/vidsort/demo-tiny-motion."""
    base = os.environ.get("VIDSORT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vidsort")
    return Path(base) / f"demo-{MODEL_NAME}"


def _may_replace(out: Path) -> bool:
    # Only ever overwrite an empty dir or an earlier export, never a user's other files.
    return not out.exists() or not any(out.iterdir()) or (out / "vidsort.json").is_file()


def _torch_reference(model_dir: Path, frames_per_clip: list[np.ndarray]) -> tuple[list[str], float]:
    """Top-1 labels and mean seconds per clip for transformers + PyTorch eager fp32."""
    import torch
    from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

    processor = VideoMAEImageProcessor.from_pretrained(model_dir)
    model = VideoMAEForVideoClassification.from_pretrained(model_dir).eval()
    labels, seconds = [], []
    with torch.inference_mode():
        model(**processor(list(frames_per_clip[0]), return_tensors="pt"))  # warm-up, untimed
        for frames in frames_per_clip:
            started = time.perf_counter()
            inputs = processor(list(frames), return_tensors="pt")
            logits = model(**inputs).logits[0]
            seconds.append(time.perf_counter() - started)
            labels.append(model.config.id2label[int(logits.argmax())])
    return labels, float(np.mean(seconds))


def run_demo(out_dir: str | os.PathLike | None = None, num_clips: int = 8, seed: int = 2024) -> int:
    """Run the demo and print its table.

    Args:
        out_dir: model dir to (re)write; default `default_out_dir()`.
        num_clips: sample clips to render (cycling through the labels).
        seed: renderer seed.

    Returns:
        The process exit code (0 when everything ran).
    """
    export_model = import_extra("vidsort.export.exporter", "export").export_model
    from vidsort.classifier import VideoClassifier
    from vidsort.export.demo.embedded import resolve_embedded
    from vidsort.export.demo.synthetic import LABELS, render_clip, write_clip

    out = Path(out_dir) if out_dir else default_out_dir()
    if not _may_replace(out):
        raise ExportError(f"{out}: exists, is not empty and is not a vidsort model dir; "
                          "choose another --out")
    print(f"== 1. export the embedded {MODEL_NAME} VideoMAE to ONNX (fp32 + int8) → {out}")
    export_model(MODEL_NAME, out, quantize="dynamic", overwrite=True, log=print)

    print(f"\n== 2. render {num_clips} sample clips (H.264) and classify them torch-free")
    clips_dir = Path(tempfile.mkdtemp(prefix="vidsort-demo-"))
    paths, truths = [], []
    for i in range(num_clips):
        label = LABELS[i % len(LABELS)]
        clip = render_clip(label, seed + i)
        paths.append(write_clip(clips_dir / f"clip{i:02d}_{label.replace(' ', '_')}.mp4", clip))
        truths.append(label)

    results = {}
    for precision in ("fp32", "int8"):
        clf = VideoClassifier(out, precision=precision, provider="cpu", isolation=None)
        clf(paths[0], top_k=1)  # warm-up, untimed (first-run allocations)
        results[precision] = list(clf.classify_many(paths, top_k=1))
    # The same decoded frames feed the PyTorch reference, so only the model path differs.
    frames_per_clip = [_frames(clf, p) for p in paths]
    torch_labels, torch_s = _torch_reference(resolve_embedded(MODEL_NAME), frames_per_clip)

    header = f"{'clip':<38} {'true label':<26} {'fp32 (ONNX)':<34} {'int8 (ONNX)':<34} {'PyTorch'}"
    print("\n" + header + "\n" + "-" * len(header))
    correct = {"fp32": 0, "int8": 0, "torch": 0}
    for i, path in enumerate(paths):
        row = [f"{path.name:<38}", f"{truths[i]:<26}"]
        for precision in ("fp32", "int8"):
            r = results[precision][i]
            if "error" in r:
                row.append(f"{'error: ' + r['error']['type']:<34}")
                continue
            top = r["predictions"][0]
            correct[precision] += top["label"] == truths[i]
            cell = f"{top['label']} ({top['score']:.2f})"
            row.append(f"{cell:<34}")
        correct["torch"] += torch_labels[i] == truths[i]
        row.append(torch_labels[i])
        print(" ".join(row))
    print("\naccuracy: " + ", ".join(f"{k} {v}/{num_clips}" for k, v in correct.items()))

    print("\n== 3. mean time per clip on the same decoded frames (CPU, after a warm-up)")
    for precision in ("fp32", "int8"):
        timed = [r["timings"] for r in results[precision] if "timings" in r]
        total = np.mean([t["preprocess_s"] + t["inference_s"] for t in timed]) * 1000
        model = np.mean([t["inference_s"] for t in timed]) * 1000
        print(f"  vidsort ONNX {precision} (preprocess + model): {total:8.1f} ms "
              f"(model {model:.1f} ms)")
    print(f"  PyTorch fp32 (processor + model): {torch_s * 1000:8.1f} ms")
    print(f"\nmodel dir: {out}\n  try: vidsort classify {out} {paths[0]}")
    return 0


def _frames(clf, path: Path) -> np.ndarray:
    from vidsort.decode import read_frames

    return read_frames(path, clf.spec.sampler, backend=clf.spec.backend).frames
