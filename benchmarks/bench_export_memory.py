"""Peak memory and time of `vidsort export` per mode (fp32, dynamic, static, fp16).

Each export runs in its own child process (so one mode's memory cannot hide in another's);
this process samples the resident memory of the child **and its children** every 50 ms and
notes which export step was running at the peak (the child prints its progress lines, and with
``--trace`` also the start and end of the export's inner functions). The kernel's own figure
(``ru_maxrss`` of the child, the largest single process, measured without sampling gaps) is
recorded beside the sampled sum.

``--clips 10,100`` adds static exports calibrated on that many clips of generated videos (two
clips per video, PyAV-rendered into a temporary folder), to show whether memory grows with the
calibration set.

Usage::

    python benchmarks/bench_export_memory.py --model DIR [--modes fp32,dynamic,static,fp16]
        [--calibration ../shared/videos] [--clips 10,100] [--trace] [--out FILE]

``--model`` is a ``save_pretrained`` directory; ``--build-base DIR`` builds a VideoMAE-Base-shaped
one there if absent (`vidsort.testing.models.build_videomae_dir` with ``base=True``). Prints a
table and writes ``benchmarks/results/export_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED_VIDEOS = ROOT.parent / "shared" / "videos"
MODES = ("fp32", "dynamic", "static", "fp16")
#: how each mode maps onto export_model's arguments
MODE_ARGS: dict[str, dict[str, Any]] = {
    "fp32": {}, "dynamic": {"quantize": "dynamic"}, "static": {"quantize": "static"},
    "fp16": {"fp16": True}}
#: functions whose start/end the child announces with --trace (module, attribute)
TRACED = {
    "vidsort.export.exporter": ("_export_fp32", "torch_reference", "_try_optimize",
                                "fp32_figures", "variant_figures", "clips_reference"),
    "vidsort.export.quantize": ("preprocess", "calibrate", "quantize_static", "_folded",
                                "_session_ok", "quantize_dynamic"),
    "vidsort.export.optimize": ("save_ort_optimized",),
    "vidsort.export.fp16": ("activation_ranges", "convert_fp16", "check_fp16"),
}
SAMPLE_S = 0.05
GIB = 2**30


# ---------------------------------------------------------------- child: one export, announced

def _announce(line: str) -> None:
    print(f"@@ {line}", flush=True)


def _trace() -> None:
    """Wrap the export's inner functions so the parent sees which one is running."""
    import importlib

    for module_name, attrs in TRACED.items():
        module = importlib.import_module(module_name)
        for attr in attrs:
            _wrap(module, attr)


def _wrap(module, attr: str) -> None:
    import functools

    func = getattr(module, attr, None)
    if func is None:
        return

    def wrapped(*args, **kwargs):
        _announce(f"> {attr}")
        try:
            return func(*args, **kwargs)
        finally:
            _announce(f"< {attr}")

    setattr(module, attr, functools.wraps(func)(wrapped))


def child(args: argparse.Namespace) -> int:
    """Run one export; progress lines go to stdout prefixed with ``@@``."""
    import resource

    from vidsort.export import export_model

    if args.trace:
        _trace()
    kwargs: dict[str, Any] = dict(MODE_ARGS[args.mode])
    if args.mode == "static":
        kwargs["calibration"] = args.calibration
        if args.max_clips:
            kwargs["quantize_options"] = {"max_clips": args.max_clips}
    began = time.perf_counter()
    report = export_model(args.model, args.out_dir, log=_announce, overwrite=True, **kwargs)
    seconds = time.perf_counter() - began
    # the kernel's peak of this process (no sampling gaps), and of the largest child it waited for
    kernel = {who: round(resource.getrusage(flag).ru_maxrss * 1024 / GIB, 2)
              for who, flag in (("self", resource.RUSAGE_SELF),
                                ("children", resource.RUSAGE_CHILDREN))}
    result = {"seconds": round(seconds, 1), "kernel_maxrss_gib": kernel,
              "timings": report.timings,
              "validation": report.validation,
              "files_mb": {k: round((Path(args.out_dir) / k).stat().st_size / 1e6, 1)
                           for k in report.files}}
    quantization = report.manifest.get("quantization") or {}
    if "calibration" in quantization:
        result["calibration"] = {k: v for k, v in quantization["calibration"].items()
                                 if k != "videos"}
    print("@@RESULT " + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------ parent: sample, tabulate

def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def measure(mode: str, model: Path, out_dir: Path, calibration: list[str], max_clips: int,
            trace: bool, label: str) -> dict[str, Any]:
    """One export in a child process; peak RSS (sampled sum over the tree, and the kernel's
    largest single process), time, and the step running at the peak."""
    import psutil

    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--model", str(model),
           "--out-dir", str(out_dir)]
    if calibration:
        cmd += ["--calibration", *calibration]
    if max_clips:
        cmd += ["--max-clips", str(max_clips)]
    if trace:
        cmd.append("--trace")
    began = time.perf_counter()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(popen.pid)
    state: dict[str, Any] = {"step": "start", "stack": [], "result": None, "lines": []}
    step_peaks: dict[str, int] = {}

    def reader() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            line = line.rstrip("\n")
            if line.startswith("@@RESULT "):
                state["result"] = json.loads(line[len("@@RESULT "):])
            elif line.startswith("@@ > "):
                state["stack"].append(line[5:])
                # sample at every step's start too: a step shorter than SAMPLE_S (a tiny
                # model's calibration) would otherwise be missing from the table
                where = f"{state['step']} / {line[5:]}"
                step_peaks[where] = max(step_peaks.get(where, 0), _tree_rss(proc))
            elif line.startswith("@@ < "):
                if state["stack"]:
                    state["stack"].pop()
            elif line.startswith("@@ "):
                state["step"] = line[3:].split("] ", 1)[-1]
                state["lines"].append(line[3:])
                print(f"    {line[3:]}", flush=True)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    peak, peak_step = 0, ""
    while popen.poll() is None:
        rss = _tree_rss(proc)
        where = state["step"] + (f" / {state['stack'][-1]}" if state["stack"] else "")
        step_peaks[where] = max(step_peaks.get(where, 0), rss)
        if rss > peak:
            peak, peak_step = rss, where
        time.sleep(SAMPLE_S)
    thread.join(timeout=10)
    stderr = popen.stderr.read() if popen.stderr else ""
    seconds = time.perf_counter() - began
    if popen.returncode != 0 or state["result"] is None:
        return {"label": label, "mode": mode, "error": stderr.strip().splitlines()[-1:] or
                [f"exit {popen.returncode}"]}
    return {"label": label, "mode": mode, "peak_rss_gib": round(peak / GIB, 2),
            "peak_step": peak_step, "wall_s": round(seconds, 1),
            "step_peaks_gib": {k: round(v / GIB, 2) for k, v in step_peaks.items()},
            **state["result"]}


def generate_clips(folder: Path, videos: int) -> list[str]:
    """``videos`` distinct H.264 clips (320x240, 72 frames: two 16x4 windows each)."""
    from vidsort.testing.videogen import pattern_frames, write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(videos):
        path = folder / f"calib{i:03d}.mp4"
        if not path.exists():
            write_video(path, pattern_frames(72, 320, 240, seed=i))
        paths.append(str(path))
    return paths


def build_base(path: Path) -> Path:
    """A VideoMAE-Base-shaped save_pretrained dir (random weights), via vidsort.testing."""
    from vidsort.testing.models import build_videomae_dir

    if not (path / "config.json").is_file():
        build_videomae_dir(path, base=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="save_pretrained directory to export")
    parser.add_argument("--build-base", metavar="DIR",
                        help="build a VideoMAE-Base-shaped model in DIR (if absent) and use it")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--calibration", nargs="+", default=[str(SHARED_VIDEOS)])
    parser.add_argument("--clips", default="",
                        help="comma-separated clip counts for static runs on generated videos")
    parser.add_argument("--trace", action="store_true",
                        help="attribute the peak to the export's inner functions")
    parser.add_argument("--out", default=str(HERE / "results" / "export_memory.json"))
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    # child mode
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--max-clips", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    sys.path.insert(0, str(HERE))
    from _env import machine, versions

    work = Path(args.work or tempfile.mkdtemp(prefix="vidsort-export-mem-"))
    model = build_base(Path(args.build_base)) if args.build_base else Path(args.model or "")
    if not (model / "config.json").is_file():
        parser.error("--model DIR (a save_pretrained directory) or --build-base DIR is required")
    info = machine()
    print(f"CPU: {info.get('cpu_model')}, {info.get('usable_cpus')} CPUs, flags "
          f"{' '.join(info.get('flags', []))}; load average {os.getloadavg()}")
    runs: list[tuple[str, str, list[str], int]] = [
        (m, m, args.calibration if m == "static" else [], 0)
        for m in args.modes.split(",") if m]
    for count in [int(c) for c in args.clips.split(",") if c]:
        folder = work / "clips"
        videos = generate_clips(folder, (count + 1) // 2)
        runs.append((f"static, {count} generated clips", "static", videos, count))
    results = []
    for label, mode, calibration, max_clips in runs:
        print(f"== {label} (load average {os.getloadavg()[0]:.2f})", flush=True)
        result = measure(mode, model, work / "out", calibration, max_clips, args.trace, label)
        result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        results.append(result)
        if "error" in result:
            print(f"   FAILED: {result['error']}")
        else:
            print(f"   peak {result['peak_rss_gib']:.2f} GiB during {result['peak_step']!r}, "
                  f"{result['wall_s']:.0f} s")
    print()
    print(f"{'export':<32} {'peak RSS (tree)':>16} {'time':>8}  at peak")
    for r in results:
        if "error" in r:
            print(f"{r['label']:<32} {'failed':>16}")
            continue
        print(f"{r['label']:<32} {r['peak_rss_gib']:>12.2f} GiB {r['wall_s']:>7.0f}s  "
              f"{r['peak_step']}")
    record = {"benchmark": "export_memory", "model": str(model), "machine": info,
              "versions": versions(), "load_average_at_end": os.getloadavg(), "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
