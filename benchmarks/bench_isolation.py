"""What decoding in worker processes costs: start-up per start method, and per-file overhead.

Compares `vidsort.pipeline.iter_prepared` (one decode thread in this process) with
`vidsort.isolation.iter_prepared_isolated` (pebble workers) on one real clip:

- ``startup``: a fresh interpreter prepares one file, in-process vs isolated (fork server,
  spawn, fork); the difference is what a single-file CLI call would pay for isolation.
- ``steady``: many files through an already started pool vs in-process, per file. Without
  ``--model-dir`` the denominator is decode + preprocess alone (the strictest one: with a model
  the end-to-end time only grows); with it, each file is also run through the model, as
  ``classify_many`` does, and the overhead is relative to that end-to-end time.

Usage::

    python benchmarks/bench_isolation.py [--model-dir DIR] [--files 12] [--rounds 3]

Prints a table and writes ``benchmarks/results/isolation_<host>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "videos"
BASE_PREPROCESSOR = {  # VideoMAE-Base (Kinetics) preprocessor_config.json values
    "do_resize": True, "size": {"shortest_edge": 224}, "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224}, "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
}

STARTUP_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from vidsort.pipeline import PrepareSpec, prepare_clip
from vidsort.isolation import IsolatedPreparer, IsolationSettings
mode, video, spec_json, model_dir = sys.argv[1:5]
t1 = time.perf_counter()
preparer = None
if mode != "inprocess":  # started first, so its start-up overlaps the model load
    preparer = IsolatedPreparer(IsolationSettings(start_method=mode))
    preparer.start()
if model_dir:
    from vidsort.classifier import VideoClassifier
    clf = VideoClassifier(model_dir)
    spec = clf.spec
else:
    clf, spec = None, PrepareSpec(**json.loads(spec_json))
if preparer is None:
    prepared = prepare_clip(video, spec)
else:
    (_, prepared), = preparer.iter_prepared([video], spec)
    assert not isinstance(prepared, Exception), prepared
if clf is not None:
    clf.predict_logits(prepared.pixel_values)
t2 = time.perf_counter()
if preparer is not None:
    preparer.close()
print(json.dumps({"import_s": t1 - t0, "prepare_s": t2 - t1}))
"""


def _spec(model_dir: str | None) -> Any:
    from vidsort.pipeline import PrepareSpec

    if model_dir:
        from vidsort.classifier import VideoClassifier

        return VideoClassifier(model_dir).spec
    return PrepareSpec(preprocessor_config=BASE_PREPROCESSOR, clip_len=16, frame_sample_rate=4)


def startup(video: str, spec: Any, rounds: int, model_dir: str | None) -> dict[str, Any]:
    """One file in a fresh interpreter per mode, ``rounds`` times interleaved; medians.

    With a model, the time covers loading it and running it once (a one-file CLI call
    without the interpreter start); the pool is started before the model loads.
    """
    from dataclasses import asdict

    spec_json = json.dumps({k: v for k, v in asdict(spec).items() if k != "limits"})
    modes = ["inprocess", "forkserver", "spawn", "fork"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(rounds + 1):  # the first round warms the page cache; dropped
        for mode in modes:
            out = subprocess.run([sys.executable, "-c", STARTUP_CHILD, mode, video, spec_json,
                                  model_dir or ""],
                                 capture_output=True, text=True, timeout=300, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {}
    for mode in modes:
        kept = runs[mode][1:]
        result[mode] = {"prepare_s": statistics.median(r["prepare_s"] for r in kept),
                        "import_s": statistics.median(r["import_s"] for r in kept),
                        "runs": kept}
    base = result["inprocess"]["prepare_s"]
    for mode in modes[1:]:
        result[mode]["extra_s"] = result[mode]["prepare_s"] - base
    return result


def steady(video: str, spec: Any, files: int, rounds: int, model_dir: str | None,
           workers: int) -> dict[str, Any]:
    """``files`` copies of the clip per round, in-process vs a started pool, interleaved."""
    from vidsort.isolation import IsolatedPreparer, IsolationSettings
    from vidsort.pipeline import iter_prepared

    clf = None
    if model_dir:
        from vidsort.classifier import VideoClassifier

        clf = VideoClassifier(model_dir)
    videos = [video] * files
    times: dict[str, list[float]] = {"inprocess": [], "isolated": []}
    with IsolatedPreparer(IsolationSettings(workers=workers)) as preparer:
        preparer.start().result(timeout=120)
        list(preparer.iter_prepared(videos[:1], spec))  # warm the worker's caches too
        list(iter_prepared(videos[:1], spec))
        for _ in range(rounds):
            for mode in ("inprocess", "isolated"):
                source = (iter_prepared(videos, spec) if mode == "inprocess"
                          else preparer.iter_prepared(videos, spec))
                started = time.perf_counter()
                for _, prepared in source:
                    assert not isinstance(prepared, Exception), prepared
                    if clf is not None:
                        clf.predict_logits(prepared.pixel_values)
                times[mode].append((time.perf_counter() - started) / files)
    inproc, iso = statistics.median(times["inprocess"]), statistics.median(times["isolated"])
    return {"files_per_round": files, "rounds": rounds, "workers": workers,
            "with_model": bool(model_dir), "per_file_s": {"inprocess": inproc, "isolated": iso},
            "overhead_pct": 100 * (iso - inproc) / inproc, "runs_per_file_s": times}


def transfer_cost(video: str, spec: Any) -> dict[str, float]:
    """Size and pickling round trip of one prepared clip (what crosses the pipe)."""
    from vidsort.pipeline import prepare_clip

    clip = prepare_clip(video, spec)
    started = time.perf_counter()
    for _ in range(10):
        pickle.loads(pickle.dumps(clip, protocol=pickle.HIGHEST_PROTOCOL))
    return {"bytes": float(clip.pixel_values.nbytes),
            "pickle_roundtrip_s": (time.perf_counter() - started) / 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(SHARED / "clip_340x256_300f.mp4"))
    parser.add_argument("--model-dir", default=None, help="also run each clip through a model")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not Path(args.video).exists():
        sys.exit(f"{args.video}: not found (see shared/videos/SOURCES.md)")
    sys.path.insert(0, str(HERE))
    from _env import machine, versions

    spec = _spec(args.model_dir)
    record: dict[str, Any] = {"video": args.video, "machine": machine(), "versions": versions(),
                              "clip_len": spec.clip_len, "backend": spec.backend,
                              "transfer": transfer_cost(args.video, spec)}
    if not args.skip_startup:
        record["startup"] = startup(args.video, spec, args.rounds, args.model_dir)
    record["steady"] = steady(args.video, spec, args.files, args.rounds, args.model_dir,
                              args.workers)

    print(f"clip {Path(args.video).name}; prepared clip {record['transfer']['bytes'] / 2**20:.1f}"
          f" MiB, pickle round trip {record['transfer']['pickle_roundtrip_s'] * 1e3:.1f} ms")
    if "startup" in record:
        what = "load model + prepare + infer" if args.model_dir else "prepare"
        print(f"one file in a fresh interpreter, {what} (median):")
        for mode, r in record["startup"].items():
            extra = f"  (+{r['extra_s'] * 1e3:.0f} ms)" if "extra_s" in r else ""
            print(f"  {mode:<11} {r['prepare_s'] * 1e3:7.0f} ms{extra}")
    s = record["steady"]
    what = "end to end with the model" if s["with_model"] else "decode + preprocess"
    print(f"steady state, {what}, per file (median of {s['rounds']} x {s['files_per_round']}):")
    print(f"  in-process {s['per_file_s']['inprocess'] * 1e3:7.1f} ms   isolated "
          f"{s['per_file_s']['isolated'] * 1e3:7.1f} ms   overhead {s['overhead_pct']:+.1f} %")
    out = Path(args.out) if args.out else HERE / "results" / f"isolation_{platform.node()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=_plain))
    print(f"wrote {out}")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
