"""Long videos (`classify_segments`): windows/s, the decode pass, model time and RSS.

    python benchmarks/bench_long_video.py                 # tiny + base, 1- and 10-min 720p
    python benchmarks/bench_long_video.py --models tiny --minutes 1    # a quick look

Videos: 1280x720 H.264 (libx264 veryfast, B-frames), 25 fps, a scrolling texture with a moving
square, generated here once into ``--cache`` (never committed). Models: the embedded tiny-motion
(8x64x64) and a VideoMAE-Base-shaped int8 export (16x224, random weights: speed does not depend
on them), both via `_models` (built and exported once, cached; the Base build is what
tests/conftest.py's ``build_videomae_dir(path, base=True)`` makes, exported with dynamic int8).

Each (model, video) runs in a fresh child process, so its RSS is that video's alone:

1. model time per window: ``predict_logits`` on batches of real windows (``--batch-size``);
   a few batches before and after the end-to-end run (the machine is shared: both are kept,
   the median is used);
2. end to end: ``segment_video`` with decoding in a worker process, as ``vidsort classify
   --segments`` runs it; peak RSS (``VmHWM``) of this process and of the decode worker (read
   every 0.2 s while it lives);
3. the decode pass alone: the same producer in a decode worker without the model (decode, RGB,
   preprocess of the frames the windows need).

Checked against the issue: total <= 1.2 x (windows x model time per window) + decode pass, and
RSS of the 10-minute video within 150 MB of the 1-minute one. The load average and CPU flags
are printed and saved with the figures (``benchmarks/results/long_video.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

WIDTH, HEIGHT, FPS = 1280, 720, 25
SPEED_FACTOR, RSS_MARGIN_MB = 1.2, 150  # the bounds


# -- the videos --------------------------------------------------------------------------------

def make_video(path: Path, minutes: float, log) -> Path:
    """Write (once) a ``minutes``-long 720p H.264 video: a scrolling texture, a moving square."""
    import av

    if path.is_file():
        return path
    log(f"generating {path.name} ({minutes:g} min of 720p H.264; once, cached)")
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(cells, 8, axis=0), 8, axis=1)
    frame = np.empty_like(texture)
    tmp = path.with_suffix(".tmp.mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(int(minutes * 60 * FPS)):
            frame[:] = np.roll(texture, (i * 3) % WIDTH, axis=1)
            y = HEIGHT // 2 - 40 + int(200 * np.sin(i / 20))
            x = (i * 7) % (WIDTH - 80)
            frame[y:y + 80, x:x + 80] = (255, 40, 40)
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    tmp.rename(path)
    return path


# -- the child: one model, one video -----------------------------------------------------------

def _first_windows(clf, video: str, count: int) -> np.ndarray:
    """(count, T, 3, H, W): the video's first windows, preprocessed as segments makes them."""
    from vidsort.segments.frames import FrameChunk, produce_frames

    stream = produce_frames(video, clf.spec)
    header = next(stream)
    wanted = header.plan.indices[:count]
    frames: dict[int, np.ndarray] = {}
    try:
        for message in stream:
            if isinstance(message, FrameChunk):
                frames.update(zip(message.indices.tolist(), message.pixels, strict=True))
            if int(wanted.max()) in frames:
                break
    finally:
        stream.close()
    return np.stack([np.stack([frames[i] for i in row]) for row in wanted.tolist()])


def _model_rounds(clf, batch: np.ndarray, rounds: int) -> list[float]:
    """Seconds per window of ``predict_logits`` on ``batch``, one figure per round."""
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        clf.predict_logits(batch)
        out.append((time.perf_counter() - started) / len(batch))
    return out


def _vm_hwm(pid: int | str) -> int:
    """Peak RSS of a live process in bytes (``VmHWM`` in /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class _TreeRss:
    """Samples the RSS of this process's descendants (the fork server and decode workers)."""

    def __init__(self, every_s: float = 0.2):
        import psutil

        self._me = psutil.Process()
        self._every = every_s
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self._every):
            for child in self._me.children(recursive=True):
                try:
                    if child.ppid() != self._me.pid:  # a grandchild: a decode worker
                        self.worker_peak = max(self.worker_peak, _vm_hwm(child.pid))
                except (psutil.Error, OSError):
                    continue

    def __enter__(self) -> _TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def child(config: dict[str, Any]) -> dict[str, Any]:
    """Measure one model on one video (see the module docstring)."""
    from vidsort import VideoClassifier
    from vidsort.isolation import IsolationSettings
    from vidsort.isolation.stream import stream_in_worker
    from vidsort.segments import segment_video
    from vidsort.segments.frames import CHUNK_FRAMES, StreamEnd, produce_frames

    load = [os.getloadavg()]
    clf = VideoClassifier(config["model_dir"], threads=config["threads"])
    batch_size = config["batch_size"]
    batch = _first_windows(clf, config["video"], batch_size)
    clf.predict_logits(batch)  # warm-up
    model_before = _model_rounds(clf, batch, config["model_rounds"])
    del batch
    with _TreeRss() as tree:
        run = segment_video(clf, config["video"], batch_size=batch_size)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child of a parent
    # that once held a model export would report the parent's peak
    main_peak = _vm_hwm("self")
    load.append(os.getloadavg())
    batch = _first_windows(clf, config["video"], batch_size)
    model_after = _model_rounds(clf, batch, config["model_rounds"])
    del batch
    started = time.perf_counter()
    end = None
    # the producer as segment_video runs it (a decode worker, one BLAS thread), minus the model
    args = (config["video"], clf.spec, None, None, CHUNK_FRAMES, 1)
    for message in stream_in_worker(produce_frames, args, IsolationSettings(), config["video"]):
        end = message if isinstance(message, StreamEnd) else end
    decode_pass = time.perf_counter() - started
    load.append(os.getloadavg())
    per_window = statistics.median(model_before + model_after)
    windows = run.stats["windows"]
    model_total = windows * per_window
    total = run.stats["wall_s"]
    return {
        "model": config["model"], "minutes": config["minutes"], "batch_size": batch_size,
        "precision": clf.precision, "windows": windows, "duration_s": run.result["duration_s"],
        "total_s": round(total, 2), "windows_per_s": round(windows / total, 2),
        "model_s_per_window": round(per_window, 5),
        "model_rounds_before_s": [round(x, 5) for x in model_before],
        "model_rounds_after_s": [round(x, 5) for x in model_after],
        "model_total_s": round(model_total, 2), "decode_pass_s": round(decode_pass, 2),
        "decode_pass_frames": end.frames if end else None,
        "bound_s": round(SPEED_FACTOR * model_total + decode_pass, 2),
        "within_bound": total <= SPEED_FACTOR * model_total + decode_pass,
        "run_stats": run.stats, "rss_main_mb": round(main_peak / 2**20, 1),
        "rss_worker_mb": round(tree.worker_peak / 2**20, 1),
        "rss_total_mb": round((main_peak + tree.worker_peak) / 2**20, 1),
        "load_average": [[round(x, 2) for x in triple] for triple in load],
    }


# -- the parent --------------------------------------------------------------------------------

def _run_child(config: dict[str, Any], log) -> dict[str, Any]:
    log(f"{config['model']}, {config['minutes']:g} min: running (load "
        f"{os.getloadavg()[0]:.1f})")
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_for_memory(gib: float, log) -> None:
    import psutil

    while psutil.virtual_memory().available < gib * 2**30:
        log(f"waiting for {gib:g} GiB of free memory before the Base export ...")
        time.sleep(30)


def _models(names: list[str], cache: Path, log) -> dict[str, Path]:
    from _models import export_variant, source_model

    out = {}
    for name in names:
        if name == "base":
            _wait_for_memory(8, log)
        out[name] = export_variant(source_model(name, cache, log), "dynamic", cache, log)
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<6}{'video':>7}{'windows':>9}{'total s':>9}{'win/s':>8}"
            f"{'model ms/win':>14}{'model s':>9}{'decode pass s':>15}{'bound s':>9}{'ok':>4}"
            f"{'RSS main MB':>13}{'worker MB':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<6}{r['minutes']:>5g}mn{r['windows']:>9}{r['total_s']:>9.1f}"
                     f"{r['windows_per_s']:>8.2f}{r['model_s_per_window'] * 1000:>14.1f}"
                     f"{r['model_total_s']:>9.1f}{r['decode_pass_s']:>15.1f}{r['bound_s']:>9.1f}"
                     f"{'yes' if r['within_bound'] else 'NO':>4}{r['rss_main_mb']:>13.0f}"
                     f"{r['rss_worker_mb']:>11.0f}")
    return "\n".join(lines)


def _rss_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    for model in sorted({r["model"] for r in rows}):
        by_len = {r["minutes"]: r for r in rows if r["model"] == model}
        if len(by_len) < 2:
            continue
        short, long = by_len[min(by_len)], by_len[max(by_len)]
        for key in ("rss_main_mb", "rss_worker_mb", "rss_total_mb"):
            growth = long[key] - short[key]
            checks.append({"model": model, "what": key, "short_min": short["minutes"],
                           "long_min": long["minutes"], "growth_mb": round(growth, 1),
                           "within_150_mb": growth <= RSS_MARGIN_MB})
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,base", help="tiny and/or base")
    parser.add_argument("--minutes", default="1,10", help="video lengths (min), e.g. 1,10")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per inference call")
    parser.add_argument("--threads", type=int, default=0, help="ORT threads (0 = all cores)")
    parser.add_argument("--model-rounds", type=int, default=3,
                        help="model-only batches timed before and after the end-to-end run")
    parser.add_argument("--cache", type=Path, default=None, help="models and videos")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                        "long_video.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    from _env import machine, versions
    from _models import default_cache

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    cache = args.cache or default_cache()
    info = machine()
    log(f"{info.get('cpu_model')}, {info.get('usable_cpus')} cpus, flags "
        f"{' '.join(info.get('flags', []))}, load average {os.getloadavg()}")
    minutes = [float(m) for m in args.minutes.split(",")]
    videos = {m: make_video(cache / "long-video" / f"720p_{m:g}min_{FPS}fps.mp4", m, log)
              for m in minutes}
    models = _models(args.models.split(","), cache, log)
    rows = []
    for name, model_dir in models.items():
        for m, video in videos.items():
            rows.append(_run_child({"model": name, "model_dir": str(model_dir),
                                    "video": str(video), "minutes": m,
                                    "batch_size": args.batch_size, "threads": args.threads,
                                    "model_rounds": args.model_rounds}, log))
            print(_table(rows[-1:]).splitlines()[-1], flush=True)
    checks = _rss_checks(rows)
    print()
    print(_table(rows))
    for check in checks:
        print(f"RSS growth {check['model']} {check['what']}: {check['short_min']:g} -> "
              f"{check['long_min']:g} min: {check['growth_mb']:+.1f} MB "
              f"({'within' if check['within_150_mb'] else 'OVER'} {RSS_MARGIN_MB} MB)")
    print(f"CPU: {info.get('cpu_model')}, {info.get('usable_cpus')} cpus, "
          f"flags {' '.join(info.get('flags', []))}; load average now {os.getloadavg()}")
    record = {"machine": info, "versions": versions(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "codec": "h264 (libx264 "
                        "veryfast, B-frames)"},
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "rows": rows, "rss_checks": checks}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
