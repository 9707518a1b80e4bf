"""Archive-job throughput: the local engine against the model's own speed, and the Ray engine
against the local one, side by side in one run.

    python benchmarks/bench_archive.py                     # VideoMAE-Base int8 static, 16 clips
    python benchmarks/bench_archive.py --model tiny --clips 48 --rounds 3

Each round runs, in a rotating order:

- **model**: `VideoClassifier.predict_logits` on one prepared clip at batch 1 (after a warm-up),
  the same threads as the jobs: ``1 / model time`` is the rate inference alone allows;
- **local**: the local engine (`vidsort.jobs.local.run_local`) over the folder at batch 1, decoding
  in its worker process, overlapped with inference;
- **ray**: the Ray engine (`vidsort.jobs.ray_engine.run_ray`) over the same folder on a local Ray
  with 2 CPUs (started once, before the rounds).

Throughput is the steady rate, ``(n - 1) / (last record - first record)``: the model load, worker
and actor start-up are reported apart (``first_record_s``), as a fixed cost of a job rather than a
rate. The records of both engines are compared (labels equal, scores within 1e-5). Prints the
ratios with the load average and CPU flags, and saves ``benchmarks/results/archive.json``.
The folder is symlinks to ../shared/videos (`_models.clips_folder`); nothing is copied.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _env  # noqa: E402
import _models  # noqa: E402


class TimedSink:
    """Stands in for the job's `RecordSink`: keeps the records and when each arrived."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.times: list[float] = []

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.times.append(time.perf_counter())

    def rate(self) -> float:
        """Records per second between the first and the last record."""
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else float("nan")


class NeverStop:
    def is_set(self) -> bool:
        return False


def run_engine(name: str, spec: Any, videos: list[str]) -> dict[str, Any]:
    """One pass of an engine over ``videos``; returns its figures and records."""
    from vidsort.jobs.records import stat_key

    if name == "ray":
        from vidsort.jobs.ray_engine import run_ray as engine
    else:
        from vidsort.jobs.local import run_local as engine
    sink = TimedSink()
    started = time.perf_counter()
    engine(spec, ((v, stat_key(v)) for v in videos), sink, NeverStop())
    wall = time.perf_counter() - started
    failed = [r for r in sink.records if "error" in r]
    return {"rate": sink.rate(), "first_record_s": sink.times[0] - started, "wall_s": wall,
            "failed": len(failed), "records": sink.records}


def model_time(clf: Any, pixel_values: Any, runs: int) -> float:
    """Mean seconds of one batch-1 model call."""
    clf.predict_logits(pixel_values)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        clf.predict_logits(pixel_values)
        times.append(time.perf_counter() - started)
    return statistics.mean(times)


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Largest score difference between two engines' records of the same files, and whether
    every label agrees."""
    by_video = {r["video"]: r for r in b}
    worst, labels_equal = 0.0, True
    for record in a:
        other = by_video[record["video"]]
        for p, q in zip(record.get("predictions", []), other.get("predictions", []), strict=True):
            labels_equal &= p["label"] == q["label"]
            worst = max(worst, abs(p["score"] - q["score"]))
    return {"max_abs_score_diff": worst, "labels_equal": labels_equal,
            "same_files": set(by_video) == {r["video"] for r in a}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", choices=["base", "tiny"])
    parser.add_argument("--variant", default="static", choices=["dynamic", "static"],
                        help="int8 export (default static: the fastest on CPU)")
    parser.add_argument("--clips", type=int, default=16, help="files in the folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=None, help="benchmark model cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-ray", action="store_true", help="local engine only")
    args = parser.parse_args(argv)

    from vidsort.classifier import VideoClassifier
    from vidsort.isolation import IsolationSettings
    from vidsort.jobs.job import JobSpec
    from vidsort.pipeline import prepare_clip

    cache = args.cache or _models.default_cache()
    source = _models.source_model(args.model, cache, print)
    model_dir = _models.export_variant(source, args.variant, cache, print)
    load_start = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {"machine": _env.machine(), "versions": _env.versions(),
                               "model": source["description"], "variant": args.variant,
                               "clips": args.clips, "rounds": []}
    engines = ["local"] if args.no_ray else ["local", "ray"]
    if not args.no_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="vidsort-archive-") as tmp:
        videos = _models.clips_folder(Path(tmp) / "clips", args.clips)
        spec = JobSpec(model_dir=str(model_dir), inputs=tuple(videos), out=str(Path(tmp) / "x"),
                       classifier={"threads": 0, "precision": "int8"},
                       isolation=IsolationSettings(start_method="fork"), batch_size=1)
        clf = VideoClassifier(model_dir, threads=0, precision="int8", isolation=None)
        pixels = prepare_clip(videos[0], clf.spec).pixel_values
        for index in range(args.rounds):
            order = ["model", *engines]
            order = order[index % len(order):] + order[:index % len(order)]
            row: dict[str, Any] = {"order": order, "load_average": os.getloadavg()[0]}
            for what in order:
                if what == "model":
                    row["model_s"] = model_time(clf, pixels, args.model_runs)
                else:
                    row[what] = run_engine(what, spec, videos)
            row["local_vs_model"] = row["local"]["rate"] * row["model_s"]
            if "ray" in row:
                row["ray_vs_local"] = row["ray"]["rate"] / row["local"]["rate"]
                row["agreement"] = compare(row["ray"]["records"], row["local"]["records"])
            for name in engines:
                row[name].pop("records")
            results["rounds"].append(row)
            print(f"round {index + 1} ({' > '.join(order)}; load {row['load_average']:.2f}): "
                  f"model {row['model_s']:.3f} s/clip ({1 / row['model_s']:.2f} clips/s), "
                  f"local {row['local']['rate']:.2f} clips/s = {row['local_vs_model']:.2f} x "
                  f"model rate" + (f", ray {row['ray']['rate']:.2f} clips/s = "
                                   f"{row['ray_vs_local']:.2f} x local, max |d score| "
                                   f"{row['agreement']['max_abs_score_diff']:.1e}"
                                   if "ray" in row else ""), flush=True)
    if not args.no_ray:
        ray.shutdown()
    rounds = results["rounds"]
    summary = {"local_vs_model_median": statistics.median(r["local_vs_model"] for r in rounds),
               "model_s_median": statistics.median(r["model_s"] for r in rounds),
               "local_rate_median": statistics.median(r["local"]["rate"] for r in rounds)}
    if not args.no_ray:
        summary.update(
            ray_vs_local_median=statistics.median(r["ray_vs_local"] for r in rounds),
            ray_rate_median=statistics.median(r["ray"]["rate"] for r in rounds),
            ray_first_record_s_median=statistics.median(r["ray"]["first_record_s"]
                                                        for r in rounds),
            max_abs_score_diff=max(r["agreement"]["max_abs_score_diff"] for r in rounds),
            labels_equal=all(r["agreement"]["labels_equal"] for r in rounds))
    summary["local_first_record_s_median"] = statistics.median(r["local"]["first_record_s"]
                                                               for r in rounds)
    results["summary"] = summary
    results["load_average"] = {"start": load_start,
                               "end": [round(x, 2) for x in os.getloadavg()]}
    machine = results["machine"]
    print(json.dumps(summary, indent=1))
    print(f"machine: {machine.get('cpu_model')}, {machine.get('usable_cpus')} CPUs, flags "
          f"{' '.join(machine.get('flags', []))}; load average {load_start} at the start, "
          f"{results['load_average']['end']} at the end")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "archive.json").write_text(json.dumps(results, indent=1, default=float))
    ok = summary["local_vs_model_median"] >= 0.9 and (
        args.no_ray or (summary["ray_vs_local_median"] >= 0.8
                        and summary["max_abs_score_diff"] <= 1e-5 and summary["labels_equal"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
