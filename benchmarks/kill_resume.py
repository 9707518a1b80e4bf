"""Kill test of archive jobs: SIGKILL a running ``vidsort classify --out`` at random moments,
resume it each time, and check that the output ends with exactly one record per input.

    python benchmarks/kill_resume.py                       # 200 clips, 10 kills, every output kind
    python benchmarks/kill_resume.py --files 200 --kills 10 --formats jsonl --seed 3

Each round starts ``vidsort classify MODEL DIR -r --out OUT --resume`` in its own session, waits
a random time (uniform over the start-up plus twice the time of its share of the files left,
measured by undisturbed runs first, so kills land during the model load, between batches and
during writes) and sends SIGKILL to the job's process; its decode worker is left to die on its
own, as after the kernel's OOM killer. After every kill the output must be readable as it stands
(every JSON line whole, every Parquet part readable) and hold no record twice; then the next
round resumes. A last run completes the job. Prints and saves
(``benchmarks/results/kill_resume.json``) the exactly-once count per output kind.

Model: the embedded tiny-motion (exported once into the benchmark cache), or ``--model DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: output kinds and the ``--out`` name each is written to
FORMATS = {"jsonl": "results.jsonl", "parquet": "results.parquet", "parts": "parts"}


def read_records(out: Path) -> list[dict[str, Any]]:
    """The records an output holds now: a JSONL file (every line must be whole), a folder of
    Parquet parts, or one Parquet file plus the parts of an unfinished job beside it."""
    if out.suffix == ".jsonl":
        if not out.exists():
            return []
        text = out.read_text(encoding="utf-8")
        # a torn last line is allowed only until the next resume cuts it off
        lines = text.splitlines()
        if text and not text.endswith("\n"):
            lines = lines[:-1]
        return [json.loads(line) for line in lines]
    import pyarrow.parquet as pq
    from vidsort.jobs.arrow import to_records

    files = []
    if out.is_dir():
        files = sorted(out.glob("part-*.parquet"))
    elif out.suffix == ".parquet":
        files = ([out] if out.exists() else []) + sorted(
            out.with_name(f".{out.name}.parts").glob("part-*.parquet"))
    return [r for f in files for r in to_records(pq.read_table(f))]


def _counts(out: Path, merged: bool = True) -> Counter:
    records = read_records(out)
    if out.suffix == ".parquet" and not merged:
        # a merge killed after its rename leaves the parts' records in the file too: the next
        # merge keeps one of each; count keys, not rows, until then
        return Counter({r["video"]: 1 for r in records})
    return Counter(r["video"] for r in records)


def kill_resume(model_dir: str | Path, input_dir: str | Path, out: Path, kills: int,
                rng: random.Random, startup_s: float, per_file_s: float,
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Kill a job ``kills`` times at random moments, resuming each time, then let it finish.

    Args:
        model_dir: exported model directory.
        input_dir: folder of videos (walked with ``-r``).
        out: the ``--out`` path.
        kills: rounds that end in SIGKILL (a round that finishes before its kill counts as
            finished, not killed).
        rng: source of the kill delays.
        startup_s, per_file_s: how long a run takes to start, and per file: each kill comes
            at a uniform random moment of the start-up plus twice this round's share of the
            files left (so kills land in the start-up, between and during writes, and the job
            advances round by round), with 20 % slack.
        extra: more ``vidsort classify`` arguments.

    Returns:
        ``{"killed", "finished_early", "records_after_kill", "duplicates_seen",
        "final_rc", "records", "exactly_once"}``.
    """
    from vidsort.inputs import walk_videos

    expected = set(walk_videos(input_dir))
    command = [sys.executable, "-m", "vidsort", "classify", str(model_dir), str(input_dir), "-r",
               "--out", str(out), "--resume", *extra]
    killed = finished_early = duplicates_seen = 0
    after_kill = []
    for index in range(kills):
        remaining = len(expected) - sum(_counts(out, merged=False).values())
        # on average a round gets through its share of what is left (so kills are spread
        # over the whole job), plus the start-up; 1.2 times that, as start-up times vary
        share = 2 * max(remaining, 1) / (kills - index)
        window = 1.2 * (startup_s + share * per_file_s)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(0.05, window))
            finished_early += 1
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed += 1
        time.sleep(0.2)  # the orphaned decode worker notices its parent is gone
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # and if not, it goes now
        except ProcessLookupError:
            pass
        counts = _counts(out, merged=False)
        after_kill.append(sum(counts.values()))
        duplicates_seen += sum(1 for c in counts.values() if c > 1)
    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    counts = _counts(out)
    exactly_once = sum(1 for v in expected if counts.get(v) == 1)
    return {"killed": killed, "finished_early": finished_early,
            "records_after_kill": after_kill, "duplicates_seen": duplicates_seen,
            "final_rc": final.returncode, "final_stderr": final.stderr.strip()[-500:],
            "inputs": len(expected), "records": sum(counts.values()),
            "unexpected": sorted(set(counts) - expected)[:5],
            "exactly_once": exactly_once,
            "ok": exactly_once == len(expected) == sum(counts.values())
            and final.returncode == 0}


def _tiny_model(cache: Path) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _models

    source = _models.source_model("tiny", cache, print)
    return _models.export_variant(source, "dynamic", cache, print)


def _make_clips(folder: Path, count: int) -> None:
    from vidsort.testing.videogen import make_clip

    for i in range(count):
        sub = folder / f"d{i % 8}"
        sub.mkdir(parents=True, exist_ok=True)
        # big enough that decoding takes tens of ms: the work, not the start-up, fills a run
        make_clip(sub / f"c{i:04d}.mp4", num_frames=48, width=256, height=192, seed=i)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help=f"comma-separated: {', '.join(FORMATS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flush-every", type=int, default=16,
                        help="records per write (small, so kills find batches written)")
    parser.add_argument("--model", help="model dir (default: tiny-motion, exported once)")
    parser.add_argument("--cache", type=Path, default=None, help="benchmark model cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _env
    import _models

    model = Path(args.model) if args.model else _tiny_model(args.cache or _models.default_cache())
    rng = random.Random(args.seed)
    results: dict[str, Any] = {"machine": _env.machine(), "versions": _env.versions(),
                               "files": args.files, "kills": args.kills, "seed": args.seed,
                               "flush_every": args.flush_every, "model": str(model),
                               "formats": {}}
    with tempfile.TemporaryDirectory(prefix="vidsort-kill-") as tmp:
        clips = Path(tmp) / "clips"
        _make_clips(clips, args.files)
        flush = ("--flush-every", str(args.flush_every))
        for name in args.formats.split(","):
            # one undisturbed run of this kind sets the kill window (start-up + whole folder)
            started = time.perf_counter()
            # undisturbed runs set the kill window: the whole folder, then a resume with
            # nothing left to do (the start-up)
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                calibration = subprocess.run(
                    [sys.executable, "-m", "vidsort", "classify", str(model), str(clips), "-r",
                     "--out", str(Path(tmp) / f"calibration-{FORMATS[name]}"), "--resume",
                     *flush], capture_output=True, text=True, timeout=600)
                timings.append(time.perf_counter() - started)
                if calibration.returncode != 0:
                    print(f"the undisturbed {name} run failed: {calibration.stderr.strip()}")
                    return 2
            whole_run_s, startup_s = timings
            per_file_s = max(whole_run_s - startup_s, 0.0) / args.files
            out = Path(tmp) / name / FORMATS[name]
            out.parent.mkdir()
            outcome = kill_resume(model, clips, out, args.kills, rng, startup_s, per_file_s,
                                  extra=flush)
            outcome.update(whole_run_s=round(whole_run_s, 2), startup_s=round(startup_s, 2))
            results["formats"][name] = outcome
            print(f"{name:8s} killed {outcome['killed']}x (finished before the kill "
                  f"{outcome['finished_early']}x), records after each kill "
                  f"{outcome['records_after_kill']}, duplicates seen {outcome['duplicates_seen']}"
                  f"; exactly once: {outcome['exactly_once']}/{outcome['inputs']} "
                  f"({'ok' if outcome['ok'] else 'FAILED'})")
    machine = results["machine"]
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"machine: {machine.get('cpu_model')}, {machine.get('usable_cpus')} CPUs, flags "
          f"{' '.join(machine.get('flags', []))}; load average {os.getloadavg()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kill_resume.json").write_text(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results["formats"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
