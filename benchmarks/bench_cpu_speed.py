"""CPU speed levers, side by side in one process: model precision, session options, decoding,
end to end on full HD against the seed recipe, and `classify_many` throughput.

Every comparison interleaves its configurations round by round (the start rotating), so a noisy
shared machine slows them alike; ratios are medians of per-round ratios. Each record carries the
load average seen. Wall time is the measure; process CPU time rides along (on a machine where
other processes hold the cores, CPU time shows the work a configuration needs).

    python benchmarks/bench_cpu_speed.py --model-dir EXPORT --hf HF_DIR            # all sections
    python benchmarks/bench_cpu_speed.py --model-dir EXPORT --hf HF_DIR --sections model,e2e
    python benchmarks/bench_cpu_speed.py --levers RAW_EXPORT ...                    # int8 variants

EXPORT: a ``vidsort export --quantize static`` directory (fp32 + int8); HF_DIR: the
``save_pretrained`` directory it came from (PyTorch side). RAW_EXPORT: an ``--no-optimize``
export whose model.onnx is the plain graph static variants start from (`_speed_levers`).
Results: ``benchmarks/results/cpu_speed.json`` (+ ``cpu_speed.md``, written by hand from it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _env import machine, versions  # noqa: E402
from _models import FOLDER_VIDEOS, VIDEOS  # noqa: E402

FULL_HD = VIDEOS / "ntu_1080p_h264.avi"
HELD_OUT = Path.home() / ".cache" / "vidsort-speed" / "heldout_1080p_h264.mp4"
THREADS = 2


def load() -> float:
    return round(os.getloadavg()[0], 2)


def interleave(fns: dict[str, Any], rounds: int, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """Run every callable once per round, rotating the order; wall and CPU seconds of each."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    loads = []
    for r in range(rounds):
        keys = list(fns)
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            c, t = time.process_time(), time.perf_counter()
            fns[key]()
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
        loads.append(load())
    out = {k: {"wall_s": [round(v, 4) for v in wall[k]], "cpu_s": [round(v, 4) for v in cpu[k]],
               "wall_median_s": round(float(np.median(wall[k])), 4),
               "cpu_median_s": round(float(np.median(cpu[k])), 4)} for k in fns}
    out["_load"] = {"per_round": loads}
    return out


def ratio(results: dict[str, Any], num: str, den: str, what: str = "wall_s") -> float:
    """Median over rounds of results[num] / results[den] (> 1: ``den`` is faster)."""
    a, b = np.asarray(results[num][what]), np.asarray(results[den][what])
    return round(float(np.median(a / b)), 3)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def agreement(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Cosine (min, mean) and top-1 agreement of logit rows ``got`` against ``ref``."""
    cos = cosine(ref, got)
    return {"cosine_min": round(float(cos.min()), 6), "cosine_mean": round(float(cos.mean()), 6),
            "top1_agreement": round(float((ref.argmax(-1) == got.argmax(-1)).mean()), 4),
            "clips": int(len(ref))}


def real_clips(model_dir: Path, clip_len: int) -> list[np.ndarray]:
    """Preprocessed (1, T, 3, H, W) clips from every shared video, at positions the calibration
    (centre) did not use: the start window and a seeded random one."""
    from vidsort.decode import read_frames
    from vidsort.preprocess import VideoPreprocessor
    from vidsort.sampling import sample_indices

    pre = VideoPreprocessor.from_pretrained(model_dir)
    clips = []
    for video in sorted(p for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".avi")):
        for strategy, seed in (("start", None), ("random", 1)):
            frames = read_frames(video, lambda n, s=strategy, e=seed: sample_indices(
                n, clip_len, 4, s, e), backend="pyav").frames
            clips.append(np.asarray(pre(frames), dtype=np.float32))
    return clips


# -- sections ----------------------------------------------------------------------------------

def compare_with_pytorch(model, sessions: dict, model_dir: Path, rounds: int):
    """Accuracy (vs PyTorch logits on real clips) and interleaved timing of PyTorch and sessions.

    Returns:
        ``(accuracy, timing, fns)``: agreement per session, `interleave` results, the timed names.
    """
    import torch

    clips = real_clips(model_dir, model.config.num_frames)
    with torch.inference_mode():
        ref = np.concatenate([model(pixel_values=torch.from_numpy(c)).logits.numpy()
                              for c in clips])
    accuracy = {k: agreement(ref, np.concatenate([s.run(None, {"pixel_values": c})[0]
                                                  for c in clips])) for k, s in sessions.items()}
    x = clips[0]

    def torch_run():
        with torch.inference_mode():
            model(pixel_values=torch.from_numpy(x))

    fns = {"pytorch eager fp32": torch_run,
           **{k: (lambda s=s: s.run(None, {"pixel_values": x})) for k, s in sessions.items()}}
    return accuracy, interleave(fns, rounds), fns


def section_model(args, out: dict) -> None:
    """PyTorch eager fp32 vs ORT fp32 vs ORT int8 (+ extra ONNX files): time and accuracy."""
    import torch
    from transformers import VideoMAEForVideoClassification
    from vidsort.session import SessionSettings, create_session

    torch.set_num_threads(THREADS)
    model = VideoMAEForVideoClassification.from_pretrained(args.hf).eval()
    files = {"ort fp32": args.model_dir / "model.onnx",
             "ort int8": args.model_dir / "model_quantized.onnx",
             **{k: Path(v) for k, v in args.extra}}
    settings = SessionSettings(threads=THREADS)
    sessions = {k: create_session(p, "cpu", settings) for k, p in files.items()}
    accuracy, timing, fns = compare_with_pytorch(model, sessions, args.model_dir, args.rounds)
    out["model"] = {"files": {k: str(p) for k, p in files.items()}, "accuracy_vs_pytorch":
                    accuracy, "timing": timing,
                    "speedup_vs_pytorch": {k: ratio(timing, "pytorch eager fp32", k)
                                           for k in fns},
                    "cpu_speedup_vs_pytorch": {k: ratio(timing, "pytorch eager fp32", k, "cpu_s")
                                               for k in fns}}
    print(json.dumps(out["model"]["speedup_vs_pytorch"]), out["model"]["accuracy_vs_pytorch"])


def section_session(args, out: dict) -> None:
    """Session options on the int8 model: spinning, memory arena; load time per file."""
    from vidsort.session import SessionSettings, create_session

    path = args.model_dir / "model_quantized.onnx"
    variants = {"spinning off, arena on (default)": SessionSettings(threads=THREADS),
                "spinning on": SessionSettings(threads=THREADS, spinning=True),
                "arena off": SessionSettings(threads=THREADS, arena=False),
                "threads 1": SessionSettings(threads=1)}
    sessions = {k: create_session(path, "cpu", s) for k, s in variants.items()}
    x = np.random.default_rng(0).standard_normal((1, 16, 3, 224, 224), dtype=np.float32)
    timing = interleave({k: (lambda s=s: s.run(None, {"pixel_values": x}))
                         for k, s in sessions.items()}, args.rounds)
    base = "spinning off, arena on (default)"
    files = {"fp32 model.onnx": args.model_dir / "model.onnx", "int8 model_quantized.onnx": path,
             **{k: Path(v) for k, v in args.extra}}
    loads = interleave({k: (lambda p=p: create_session(p, "cpu", SessionSettings(THREADS)))
                        for k, p in files.items()}, 5)
    out["session"] = {"timing": timing, "speedup_vs_default": {k: ratio(timing, k, base)
                                                               for k in sessions},
                      "load_time": {k: loads[k]["wall_median_s"] for k in files},
                      "load_timing": loads}
    print(json.dumps(out["session"]["speedup_vs_default"]), out["session"]["load_time"])


def held_out_clip(path: Path = HELD_OUT, frames: int = 120) -> Path:
    """A 1920x1080 H.264 MP4 (B-frames, one GOP) not used by calibration: the arm-wrestling
    clip upscaled and re-encoded with PyAV. Made once."""
    if path.is_file():
        return path
    from fractions import Fraction

    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(VIDEOS / "arm_wrestling_340x256.mp4")) as src, \
            av.open(str(tmp), "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            big = frame.reformat(1920, 1080, "yuv420p", interpolation="BICUBIC")
            big.pts, big.time_base = i, Fraction(1, 30)
            dst.mux(stream.encode(big))
        dst.mux(stream.encode(None))
    tmp.rename(path)
    return path


def resize_target(video: Path, short: int = 224) -> tuple[int, int]:
    """(width, height) with the short side at the preprocessor's resize target, aspect kept."""
    from vidsort.decode import probe

    info = probe(video)
    w, h = info.width, info.height
    return (round(w * short / h), short) if w >= h else (short, round(h * short / w))


def section_e2e(args, out: dict) -> None:
    """Full HD, end to end: the seed recipe vs ``VideoClassifier(dir, precision="int8")(path)``
    (exact decode, and the opt-in decoder-side downscale)."""
    from _stages import SeedRecipe
    from vidsort import VideoClassifier

    seed = SeedRecipe(str(args.hf), THREADS)
    seed.load()
    exact = VideoClassifier(args.model_dir, precision="int8", threads=THREADS)
    videos = [FULL_HD, held_out_clip()]
    result: dict[str, Any] = {}
    for video in videos:
        fast = VideoClassifier(args.model_dir, precision="int8", threads=THREADS,
                               resize_to=resize_target(video))
        fns = {"seed recipe (decord 1 thread → VideoMAEImageProcessor → PyTorch fp32)":
               lambda v=video: seed.latency(str(v)),
               "vidsort int8": lambda v=video: exact(v),
               "vidsort int8 + resize_to (opt-in)": lambda v=video, f=fast: f(v)}
        timing = interleave(fns, args.rounds)
        first = list(fns)[0]
        result[video.name] = {"timing": timing, "speedup_vs_seed": {k: ratio(timing, first, k)
                                                                    for k in fns},
                              "top1": {"seed": seed.latency(str(video))["top1"],
                                       "vidsort int8": exact(video, top_k=1)[0]["label"],
                                       "resize_to": fast(video, top_k=1)[0]["label"]}}
        print(video.name, json.dumps(result[video.name]["speedup_vs_seed"]))
    out["e2e"] = result


def section_decode(args, out: dict) -> None:
    """prepare_clip on full HD: decoder threads, backend, decoder-side downscale (speed and
    accuracy effect: pixel |Δ| vs the exact path, int8 logits cosine / top-1)."""
    from dataclasses import replace

    from vidsort import VideoClassifier
    from vidsort.pipeline import prepare_clip

    clf = VideoClassifier(args.model_dir, precision="int8", threads=THREADS)
    result: dict[str, Any] = {}
    for video in (FULL_HD, held_out_clip()):
        specs = {"exact, decoder threads auto": clf.spec,
                 "exact, 1 decoder thread": replace(clf.spec, decode_threads=1),
                 "exact, pyav": replace(clf.spec, backend="pyav"),
                 "resize_to (short side 224)": replace(clf.spec, resize_to=resize_target(video))}
        fns = {k: (lambda s=s, v=video: prepare_clip(v, s)) for k, s in specs.items()}
        # the levers switched off again, to measure what each one gives
        fns["before: no PyAV frame skipping"] = lambda v=video: _without_skipping(
            lambda: prepare_clip(v, clf.spec))
        fns["before: decord wherever it reads right"] = lambda v=video: _decord_where_right(
            lambda: prepare_clip(v, clf.spec))
        timing = interleave(fns, args.rounds)
        ref = prepare_clip(video, clf.spec)
        effect = {}
        ref_logits = clf.predict_logits(ref.pixel_values)
        for k, s in specs.items():
            got = prepare_clip(video, s)
            diff = np.abs(got.pixel_values - ref.pixel_values)
            effect[k] = {"backend": got.info["backend"], "max_abs_pixel_diff": float(diff.max()),
                         "mean_abs_pixel_diff": float(diff.mean()),
                         **agreement(ref_logits, clf.predict_logits(got.pixel_values))}
        result[video.name] = {"timing": timing, "effect": effect}
        print(video.name, {k: v["wall_median_s"] for k, v in timing.items() if k[0] != "_"})
    out["decode"] = result


def _without_skipping(fn):
    """Run ``fn`` with PyAV decoding every frame (no ``skip_frame``), as before issue 6."""
    from vidsort.decode.pyav_backend import PyAVReader

    skip = PyAVReader._skip
    PyAVReader._skip = lambda self, packet: False
    try:
        return fn()
    finally:
        PyAVReader._skip = skip


def _decord_where_right(fn):
    """Run ``fn`` with the decord backend not handing large B-frame streams to PyAV."""
    import vidsort.decode as decode

    faster = decode.pyav_reads_faster
    decode.pyav_reads_faster = lambda info: None
    try:
        return fn()
    finally:
        decode.pyav_reads_faster = faster


def section_throughput(args, out: dict) -> None:
    """`classify_many` over a folder vs 1 / model time, spinning off and on."""
    from vidsort import VideoClassifier
    from vidsort.session import SessionSettings

    videos = [VIDEOS / FOLDER_VIDEOS[i % len(FOLDER_VIDEOS)] for i in range(args.folder)]
    result: dict[str, Any] = {}
    for spinning in (False, True):
        clf = VideoClassifier(args.model_dir, precision="int8",
                              session_settings=SessionSettings(THREADS, spinning=spinning))
        x = np.random.default_rng(0).standard_normal((1, 16, 3, 224, 224), dtype=np.float32)
        fns = {"model only, one clip": lambda c=clf, x=x: c.predict_logits(x),
               "classify_many, folder": lambda c=clf: list(c.classify_many(videos))}
        timing = interleave(fns, max(2, args.rounds // 2))
        model_s = timing["model only, one clip"]["wall_median_s"]
        many_s = timing["classify_many, folder"]["wall_median_s"]
        result[f"spinning {'on' if spinning else 'off'}"] = {
            "timing": timing, "clips": len(videos), "clips_per_s": round(len(videos) / many_s, 4),
            "model_bound_clips_per_s": round(1 / model_s, 4),
            "fraction_of_model_bound": round(model_s * len(videos) / many_s, 3)}
        print("spinning", spinning, result[f"spinning {'on' if spinning else 'off'}"]
              ["fraction_of_model_bound"])
    out["throughput"] = result


SECTIONS = {"model": section_model, "session": section_session, "decode": section_decode,
            "e2e": section_e2e, "throughput": section_throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="export with model.onnx + int8")
    parser.add_argument("--hf", type=Path, help="the save_pretrained dir (PyTorch side)")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--folder", type=int, default=8, help="clips in the throughput folder")
    parser.add_argument("--extra", type=lambda s: tuple(s.split("=", 1)), action="append",
                        default=[], help="NAME=ONNX_FILE also timed in the model section")
    parser.add_argument("--levers", type=Path, help="build and time int8 variants from this "
                        "--no-optimize export instead (see _speed_levers)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cpu_speed.json")
    args = parser.parse_args()
    out: dict[str, Any] = {"machine": machine(), "versions": versions(), "threads": THREADS,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "load_at_start": os.getloadavg()}
    if args.levers:
        from _speed_levers import run_levers

        out["levers"] = run_levers(args, compare_with_pytorch, ratio)
    else:
        for name in args.sections.split(","):
            began = time.perf_counter()
            SECTIONS[name](args, out)
            out.setdefault("section_seconds", {})[name] = round(time.perf_counter() - began, 1)
    out["load_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    previous.update(out)  # sections run separately accumulate in one file
    args.out.write_text(json.dumps(previous, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
