"""Fuzz the decode path with mutated bytes of small valid clips, through the isolated pipeline.

Hypothesis draws mutation programs (bit flips, interesting 32-bit values over box sizes and
counts, cuts, duplications, insertions, truncation; see ``vidsort.testing``) over seed clips in
several containers and codecs; every mutated file goes through
`vidsort.isolation.IsolatedPreparer` (decode → sample → preprocess in a worker with a timeout
and a memory cap). What the calling process must never see: an exception out of the pipeline,
a hang (the whole batch is bounded by the per-file timeout), or its own death. Worker crashes
and timeouts are contained by design, and each one is recorded (mutation program and seed clip,
so it can be replayed) as a finding about the decoders.

Not part of CI. Usage::

    python benchmarks/fuzz_decode.py --minutes 5 [--backend decord|pyav|both]

Writes ``benchmarks/results/fuzz_decode_<host>.json`` after every batch (so even a crash of
this process leaves its last state behind).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from vidsort.testing import hostile  # the corpus generator and mutator the tests use

HERE = Path(__file__).resolve().parent

PREPROCESSOR = {
    "do_resize": True, "size": {"shortest_edge": 32}, "do_center_crop": True,
    "crop_size": {"height": 32, "width": 32}, "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
}

OPS = st.lists(st.tuples(st.sampled_from(hostile.MUTATIONS),
                         st.floats(0, 1, exclude_max=True, allow_nan=False),
                         st.integers(0, 4096)), min_size=1, max_size=8)


def draw_programs(num_seeds: int, count: int, round_seed: int) -> list[tuple[int, list]]:
    """``count`` (seed clip index, mutation program) pairs drawn by hypothesis."""
    drawn: list[tuple[int, list]] = []

    @seed(round_seed)
    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, num_seeds - 1), OPS)
    def collect(index: int, ops: list) -> None:
        drawn.append((index, ops))

    collect()
    return drawn[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=40, help="files per batch")
    parser.add_argument("--timeout", type=float, default=20.0, help="per-file timeout (s)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="worker memory cap")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backend", default="both", choices=["decord", "pyav", "both"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from vidsort.errors import VidsortError
    from vidsort.isolation import IsolatedPreparer, IsolationSettings
    from vidsort.pipeline import PreparedClip, PrepareSpec

    out = Path(args.out) if args.out else HERE / "results" / f"fuzz_decode_{platform.node()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vidsort-fuzz-"))
    seeds = hostile.seed_clips(work)
    seed_bytes = [p.read_bytes() for p in seeds]
    backends = ["decord", "pyav"] if args.backend == "both" else [args.backend]
    specs = {b: PrepareSpec(preprocessor_config=PREPROCESSOR, clip_len=8, frame_sample_rate=2,
                            backend=b) for b in backends}
    iso = IsolationSettings(workers=args.workers, timeout_s=args.timeout,
                            memory_mb=args.memory_mb)
    summary: dict[str, Any] = {
        "settings": {**vars(args), "seeds": [p.name for p in seeds]},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "elapsed_s": 0.0, "files_tried": 0,
        "by_result": collections.Counter(), "by_backend": {b: collections.Counter()
                                                            for b in backends},
        "classified": 0, "worker_crashes": [], "timeouts": [], "caller_exceptions": [],
        "unexpected_errors": [], "slowest_file_s": 0.0}
    started = time.monotonic()
    deadline = started + args.minutes * 60
    rng = random.Random(args.seed)
    batch_no = 0
    try:
        with IsolatedPreparer(iso) as preparer:
            while time.monotonic() < deadline:
                backend = backends[batch_no % len(backends)]
                programs = draw_programs(len(seeds), args.batch, rng.randrange(2**32))
                files, meta = [], {}
                for i, (index, ops) in enumerate(programs):
                    data = hostile.mutate(seed_bytes[index], ops)
                    path = work / f"b{batch_no}_{i}{seeds[index].suffix}"
                    path.write_bytes(data)
                    files.append(str(path))
                    meta[str(path)] = {"seed": seeds[index].name, "ops": ops,
                                       "sha256": hashlib.sha256(data).hexdigest()[:16],
                                       "bytes": len(data)}
                t_last = time.monotonic()
                try:
                    for video, result in preparer.iter_prepared(files, specs[backend]):
                        now = time.monotonic()
                        summary["slowest_file_s"] = max(summary["slowest_file_s"], now - t_last)
                        t_last = now
                        kind = type(result).__name__
                        summary["by_result"][kind] += 1
                        summary["by_backend"][backend][kind] += 1
                        summary["files_tried"] += 1
                        record = {**meta[video], "backend": backend,
                                  "message": str(result)[:300]}
                        if isinstance(result, PreparedClip):
                            summary["classified"] += 1
                        elif kind == "DecoderCrashed":
                            summary["worker_crashes"].append(record)
                        elif kind == "DecodeTimeout":
                            summary["timeouts"].append(record)
                        elif kind == "VideoError" or not isinstance(result, VidsortError):
                            summary["unexpected_errors"].append(record)  # untyped: a bug
                except Exception as exc:  # the calling process must never see one
                    summary["caller_exceptions"].append(f"{type(exc).__name__}: {exc}")
                for f in files:
                    Path(f).unlink(missing_ok=True)
                batch_no += 1
                summary["elapsed_s"] = round(time.monotonic() - started, 1)
                summary["batches"] = batch_no
                out.write_text(json.dumps(summary, indent=2, default=str))
                print(f"[{summary['elapsed_s']:7.1f} s] {summary['files_tried']} files: "
                      f"{dict(summary['by_result'])}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out.write_text(json.dumps(summary, indent=2, default=str))
    print(f"ran {summary['elapsed_s']} s, {summary['files_tried']} files; crashes of this "
          f"process: none; worker crashes {len(summary['worker_crashes'])}, timeouts "
          f"{len(summary['timeouts'])}, caller exceptions {len(summary['caller_exceptions'])}, "
          f"untyped errors {len(summary['unexpected_errors'])}; wrote {out}")


if __name__ == "__main__":
    main()
