"""Preprocessing speed and parity: vidsort's NumPy VideoPreprocessor vs transformers'
VideoMAEImageProcessor, side by side in one run.

    python benchmarks/bench_preprocess.py          # full run -> benchmarks/results/preprocess.json
    python benchmarks/bench_preprocess.py --quick  # smoke test (no JSON unless --out)

Inputs: 16 frames (VideoMAE's clip length) at 340x256 and 1920x1080, synthetic (random noise plus
a smooth gradient; content does not change the work) and, when present, real frames from
../shared/videos. Config: VideoMAE-Base (shortest_edge 224, crop 224, bilinear, ImageNet mean/std).

Reported per case: wall time (best and median of N calls), CPU time of the process during the
calls (shows how much of the speed comes from threads), speed-up, and parity (max / mean |delta|
against transformers). The two are timed in alternating rounds (see `timed_pair`) so that a
machine whose speed drifts slows both alike; "paired" is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"
CONFIG = {
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 2,
    "do_center_crop": True, "crop_size": {"height": 224, "width": 224},
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
}


def synthetic_frames(num: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (num, height, width, 3): a gradient with noise, different per frame."""
    rng = np.random.default_rng(seed)
    ramp = (np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 55, height)[:, None, None])
    frames = rng.integers(0, 40, (num, height, width, 3), dtype=np.uint8)
    frames += ramp.astype(np.uint8)[None]
    return frames


def real_frames(name: str, num: int = 16) -> np.ndarray | None:
    """num frames spread over a clip in ../shared/videos, decoded with PyAV; None if absent."""
    path = VIDEOS / name
    if not path.is_file():
        return None
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, num).astype(int)
    return np.stack([frames[i] for i in picks])


def timed(fn, repeats: int) -> dict:
    """Best / median wall seconds and mean CPU seconds per call, after one warm-up call."""
    return _summary(*_calls(fn, repeats))


def timed_pair(ours, reference, repeats: int, rounds: int = 3) -> tuple[dict, dict, float]:
    """Time two functions in alternating rounds, so that a machine whose speed drifts during the
    run slows both alike. Each round times one function's calls back to back after a discarded
    warm-up call: call-by-call alternation would measure something else on a VM, whose idle
    vCPU (ours uses two threads, transformers one) comes back slow after each wait (measured:
    +50 % after 170 ms of idling).

    Args:
        ours, reference: the functions.
        repeats: timed calls per function, split between the rounds.
        rounds: rounds per function.

    Returns:
        (ours' timings, reference's timings, median of the per-round ratios of median times).
    """
    per_round = max(1, -(-repeats // rounds))
    ours_times, ref_times = ([], []), ([], [])
    ratios = []
    for _ in range(rounds):
        medians = []
        for fn, times in ((ours, ours_times), (reference, ref_times)):
            walls, cpus = _calls(fn, per_round)
            times[0].extend(walls)
            times[1].extend(cpus)
            medians.append(float(np.median(walls)))
        ratios.append(medians[1] / medians[0])
    return _summary(*ours_times), _summary(*ref_times), float(np.median(ratios))


def _calls(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` calls, after a warm-up call (buffers, weights, thread
    pools, caches)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def _summary(walls: list[float], cpus: list[float]) -> dict:
    return {"best_s": min(walls), "median_s": float(np.median(walls)),
            "cpu_s": float(np.mean(cpus))}


def machine_info() -> dict:
    """CPU, load and library versions: timings mean little without them."""
    info = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "blas": _blas_name(),
        # other processes compete for the CPUs when this is high: wall times grow, CPU times less
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for module in ("numpy", "onnxruntime", "av", "transformers", "PIL"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small run")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case")
    parser.add_argument("--threads", type=int, default=None,
                        help="VideoPreprocessor threads (default: its own default)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default: benchmarks/results/preprocess.json, "
                             "not written with --quick)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 15)

    from vidsort.preprocess import VideoPreprocessor

    try:
        from transformers import VideoMAEImageProcessor
        reference = VideoMAEImageProcessor(**CONFIG)
    except ImportError:
        reference = None
        print("transformers is not installed: timing vidsort only", file=sys.stderr)

    ours = VideoPreprocessor.from_dict(CONFIG, num_threads=args.threads)
    cases = [("synthetic 340x256", synthetic_frames(16, 256, 340)),
             ("synthetic 1920x1080", synthetic_frames(16, 1080, 1920))]
    if not args.quick:
        for name in ("arm_wrestling_340x256.mp4", "ntu_1080p_h264.avi"):
            frames = real_frames(name)
            if frames is not None:
                cases.append((f"{name} ({frames.shape[2]}x{frames.shape[1]})", frames))

    results = []
    header = (f"{'case (16 frames)':<38} {'vidsort ms':>10} {'best':>5} {'cpu ms':>7} "
              f"{'transformers ms':>15} {'best':>6} {'cpu ms':>7} {'speed-up':>8} {'best x':>6} "
              f"{'paired':>6} {'cpu x':>6} {'max |d|':>8} {'mean |d|':>9}")
    print(f"threads={ours.num_threads} repeats={repeats}")
    print(header)
    print("-" * len(header))
    for name, frames in cases:
        row = {"case": name, "frames": list(frames.shape)}
        out = ours(frames)
        if reference is None:
            row["vidsort"] = timed(lambda f=frames: ours(f), repeats)
        else:
            expected = reference(list(frames), return_tensors="np")["pixel_values"]
            diff = np.abs(out - expected)
            row["parity"] = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean())}
            row["vidsort"], row["transformers"], row["speedup_paired"] = timed_pair(
                lambda f=frames: ours(f),
                lambda f=frames: reference(list(f), return_tensors="np"), repeats)
            row["speedup_best"] = row["transformers"]["best_s"] / row["vidsort"]["best_s"]
            row["speedup_median"] = row["transformers"]["median_s"] / row["vidsort"]["median_s"]
            # CPU-time ratio: what the speed-up would be without threads (and what a machine
            # busy with other work leaves of it)
            row["speedup_cpu"] = row["transformers"]["cpu_s"] / row["vidsort"]["cpu_s"]
        results.append(row)
        ref = row.get("transformers", {})
        nan = float("nan")
        print(f"{name:<38} {row['vidsort']['median_s'] * 1e3:>10.1f} "
              f"{row['vidsort']['best_s'] * 1e3:>5.1f} {row['vidsort']['cpu_s'] * 1e3:>7.1f} "
              f"{ref.get('median_s', nan) * 1e3:>15.1f} {ref.get('best_s', nan) * 1e3:>6.1f} "
              f"{ref.get('cpu_s', nan) * 1e3:>7.1f} "
              f"{row.get('speedup_median', nan):>7.1f}x {row.get('speedup_best', nan):>5.1f}x "
              f"{row.get('speedup_paired', nan):>5.1f}x {row.get('speedup_cpu', nan):>5.1f}x "
              f"{row.get('parity', {}).get('max_abs', nan):>8.4f} "
              f"{row.get('parity', {}).get('mean_abs', nan):>9.2e}")
    print("(ms: median wall time per call; best: fastest call; cpu ms: process CPU time per "
          "call, all threads; speed-up: ratio of median wall times; best x: of the fastest "
          "calls; paired: median of per-round ratios; cpu x: CPU-time ratio)")

    out_path = args.out or (None if args.quick else ROOT / "benchmarks" / "results" /
                            "preprocess.json")
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        report = {"config": CONFIG, "threads": ours.num_threads, "repeats": repeats,
                  "machine": machine_info(), "results": results}
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
