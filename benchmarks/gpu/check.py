"""The GPU check, one prepared command: export a VideoMAE-Base-shaped model there, benchmark
vidsort (CUDA fp32 / fp16, batch 1, 8, 32) beside PyTorch on the same GPU, parity, and end to end
on a 1080p clip with several decode workers. Writes ``gpu_check.json`` and ``gpu_check.md``
under ``--out`` and nothing elsewhere (scratch files go to ``--out``/work, removed at the end).

    python benchmarks/gpu/check.py --out "$OUT"                 # on the GPU machine (run.sh)
    python benchmarks/gpu/check.py --dry-run --out /tmp/dry     # here: CPU, a tiny model

``--dry-run`` runs every phase on the CPU provider with a tiny model (seconds), so the logic is
tested in CI; the figures it prints say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

#: the shared 1080p clip (see ../shared/videos/SOURCES.md); generated when it is not there
SHARED_1080P = ROOT.parent / "shared" / "videos" / "ntu_1080p_h264.avi"
#: VideoMAEConfig fields of the dry run's model (VideoMAEConfig() defaults on the GPU)
TINY = dict(num_frames=4, image_size=32, patch_size=16, tubelet_size=2, hidden_size=32,
            num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
#: session settings measured against the defaults on the GPU (fp16, batch 8): what the defaults in
#: the provider table should become is decided from these rows
CUDA_VARIANTS = ({"cuda_graph": True}, {"cudnn_conv_algo_search": "HEURISTIC"},
                 {"io_binding": False})
CPU_VARIANTS = ({"io_binding": True},)


def log(message: str) -> None:
    """Progress on stderr, time-stamped (stdout carries the Markdown at the end)."""
    print(f"[{time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


STARTED = time.perf_counter()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT"), help="results folder (default $OUT)")
    p.add_argument("--dry-run", action="store_true", help="CPU provider, tiny model")
    p.add_argument("--provider", default=None, help="default: cuda (dry run: cpu)")
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help="default: 1 8 32 (dry run: 1 2)")
    p.add_argument("--seconds", type=float, default=None,
                   help="timed seconds per cell (default 4; dry run 0.2)")
    p.add_argument("--video", default=None, help=f"end-to-end clip (default {SHARED_1080P.name} "
                                                  "from ../shared, else a generated 1080p clip)")
    p.add_argument("--decode-workers", type=int, default=None,
                   help="decode worker processes end to end (default 8; dry run 2)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="skip the remaining phases (recorded with the reason) past this many "
                        "seconds (default 420; dry run: none)")
    p.add_argument("--keep-work", action="store_true", help="keep the exported models")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out (or $OUT) is required")
    dry = args.dry_run
    args.provider = args.provider or ("cpu" if dry else "cuda")
    args.batches = args.batches or ([1, 2] if dry else [1, 8, 32])
    args.seconds = args.seconds if args.seconds is not None else (0.2 if dry else 4.0)
    args.decode_workers = args.decode_workers or (2 if dry else 8)
    if args.budget_s is None:
        args.budget_s = float("inf") if dry else 420.0
    return args


def build_model(work: Path, dry: bool) -> Path:
    """A random-weight VideoMAE (Base-shaped: `VideoMAEConfig()` defaults) with save_pretrained."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    torch.manual_seed(0)
    config = VideoMAEConfig(**(TINY if dry else {}), num_labels=400,
                            id2label={i: f"class_{i:03d}" for i in range(400)},
                            label2id={f"class_{i:03d}": i for i in range(400)})
    hf_dir = work / "hf"
    VideoMAEForVideoClassification(config).eval().save_pretrained(hf_dir)
    size = config.image_size
    VideoMAEImageProcessor(size={"shortest_edge": size},
                           crop_size={"height": size, "width": size}).save_pretrained(hf_dir)
    return hf_dir


def pick_video(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The end-to-end clip and where it came from."""
    if args.video:
        return Path(args.video), "given"
    if SHARED_1080P.is_file() and not args.dry_run:
        return SHARED_1080P, "shared"
    from vidsort.testing.videogen import make_clip

    width, height, frames = (320, 180, 24) if args.dry_run else (1920, 1080, 96)
    path = make_clip(work / f"generated_{height}p.mp4", num_frames=frames, width=width,
                     height=height)
    return path, f"generated {width}x{height}, {frames} frames (no shared clip here)"


def parity(onnx_dir: Path, hf_dir: Path, provider: str, clip: tuple[int, ...],
           batch: int) -> dict[str, Any]:
    """Cosine etc. of vidsort fp32 / fp16 and PyTorch fp16 vs PyTorch fp32, same inputs."""
    import _torch
    import numpy as np
    from vidsort import VideoClassifier

    x = np.random.default_rng(1).standard_normal((batch, *clip), dtype=np.float32)
    device = "cuda" if provider in ("cuda", "tensorrt") else "cpu"
    reference = _torch.forward(_torch.load(str(hf_dir), device, "fp32")[0], x)
    out: dict[str, Any] = {"batch": batch, "reference": f"PyTorch fp32 on {device}"}
    for precision in ("fp32", "fp16"):
        try:
            clf = VideoClassifier(onnx_dir, provider=provider, precision=precision,
                                  isolation=None)
            out[f"vidsort {precision}"] = {**_torch.closeness(reference, clf.predict_logits(x)),
                                           "io_binding": clf._runner.binding,
                                           "pinned": clf._runner.pinned}
            del clf
        except Exception as exc:  # one failing variant is a row, not the end of the check
            out[f"vidsort {precision}"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        out["pytorch fp16"] = _torch.closeness(
            reference, _torch.forward(_torch.load(str(hf_dir), device, "fp16")[0], x))
    except Exception as exc:  # fp16 kernels may be missing on CPU (dry run)
        out["pytorch fp16"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def end_to_end(onnx_dir: Path, video: Path, provider: str, workers: int,
               clips: int) -> dict[str, Any]:
    """``classify_many`` over ``clips`` copies of the clip, batch 8, ``workers`` decode
    processes: clips/s and errors."""
    from vidsort import VideoClassifier
    from vidsort.isolation import IsolationSettings

    settings = IsolationSettings(workers=workers)
    with VideoClassifier(onnx_dir, provider=provider, precision="fp16",
                         isolation=settings) as clf:
        list(clf.classify_many([video] * workers, batch_size=8))  # start workers, warm up
        started = time.perf_counter()
        results = list(clf.classify_many([video] * clips, batch_size=8))
        seconds = time.perf_counter() - started
    errors = [r["error"] for r in results if "error" in r]
    return {"video": video.name, "clips": clips, "decode_workers": workers, "batch_size": 8,
            "precision": "fp16", "seconds": round(seconds, 3),
            "clips_per_s": round((clips - len(errors)) / seconds, 3), "errors": len(errors),
            "first_error": errors[0] if errors else None}


def phase(results: dict[str, Any], name: str, budget: float, fn, *args) -> None:
    """Run one phase into ``results[name]``; past the budget or on failure, record why."""
    if time.perf_counter() - STARTED > budget:
        results[name] = {"skipped": f"time budget of {budget:.0f} s spent"}
        log(f"{name}: skipped (budget)")
        return
    log(f"{name} ...")
    try:
        results[name] = fn(*args)
    except Exception as exc:  # the check must still write what it has
        results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        log(f"{name}: {results[name]['error']}")


def main(argv: list[str] | None = None) -> int:
    """Run the check; returns 0 when every phase produced results, 1 otherwise."""
    args = parse_args(argv)
    out = Path(args.out).absolute()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HOME", str(work / "hf-home"))  # nothing written outside --out
    # temporary files under --out too; not under work/, which goes before multiprocessing's
    # exit handlers remove their own temporary folders
    os.environ["TMPDIR"] = str(out / ".tmp")
    (out / ".tmp").mkdir(exist_ok=True)
    import _gpu_report
    from vidsort import bench
    from vidsort.bench.hardware import describe, summary

    results: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/gpu/check.py " + " ".join(argv or sys.argv[1:]),
        "dry_run": args.dry_run, "provider": args.provider, "batches": args.batches,
        "seconds": args.seconds, "hardware": describe()}
    log(f"hardware: {summary(results['hardware'])}")
    hf_dir = build_model(work, args.dry_run)
    video, origin = pick_video(args, work)
    results["video"] = {"path": str(video), "origin": origin}
    onnx_dir = work / "onnx"
    from vidsort.export import export_model

    started = time.perf_counter()
    report = export_model(hf_dir, onnx_dir, fp16=True, fp16_videos=[video], log=log)
    results["export"] = {"seconds": round(time.perf_counter() - started, 1),
                         "validation": report.validation,
                         "fp16": report.manifest["export"].get("fp16"),
                         "timings": report.timings}
    from vidsort.modeldir import ModelDir

    model = ModelDir.load(onnx_dir)
    clip = (model.num_frames, 3, *model.image_size)
    bench_args = dict(providers=[args.provider], batches=args.batches, seconds=args.seconds,
                      min_calls=5, command="vidsort bench (benchmarks/gpu/check.py)")
    phase(results, "vidsort", args.budget_s, lambda: bench.run(
        onnx_dir, precisions=["fp32", "fp16"], videos=[video], **bench_args))
    variants = CPU_VARIANTS if args.provider == "cpu" else CUDA_VARIANTS
    for settings in variants:
        name = "vidsort " + ", ".join(f"{k}={v}" for k, v in settings.items())
        phase(results, name, args.budget_s, lambda s=settings: bench.run(
            onnx_dir, precisions=["fp16"], session_settings=s,
            **{**bench_args, "batches": [min(8, max(args.batches))]}))
    import _torch

    device = "cpu" if args.provider == "cpu" else "cuda"
    for dtype in ("fp32", "fp16"):
        phase(results, f"pytorch {dtype}", args.budget_s, _torch.measure, str(hf_dir), device,
              dtype, args.batches, clip, args.seconds, 5, 2)
    phase(results, "parity", args.budget_s, parity, onnx_dir, hf_dir, args.provider, clip,
          min(8, max(args.batches)))
    phase(results, "end_to_end", args.budget_s, end_to_end, onnx_dir, video, args.provider,
          args.decode_workers, 4 * args.decode_workers)
    results["wall_s"] = round(time.perf_counter() - STARTED, 1)
    results["hardware"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = _gpu_report.markdown(results)
    (out / "gpu_check.md").write_text(text + "\n")
    print(text)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
        for scratch in (out / ".tmp").iterdir():  # multiprocessing removes its pymp-* at exit
            if scratch.is_dir() and not scratch.name.startswith("pymp-"):
                shutil.rmtree(scratch, ignore_errors=True)
            elif not scratch.is_dir():
                scratch.unlink(missing_ok=True)
    broken = [k for k, v in results.items() if isinstance(v, dict) and
              ("error" in v or "skipped" in v)]
    log(f"wrote {out / 'gpu_check.json'} and gpu_check.md"
        + (f"; phases without results: {', '.join(broken)}" if broken else ""))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
