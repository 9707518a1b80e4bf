"""Supported architectures at their default size on this CPU: ONNX Runtime fp32 and int8
(dynamic) vs PyTorch eager, side by side in one run, with GFLOPs per clip and parity figures.

    python benchmarks/bench_architectures.py          # -> benchmarks/results/architectures.json
    python benchmarks/bench_architectures.py --archs vivit --runs 3
    python benchmarks/bench_architectures.py --quick  # tiny configs, smoke test (no JSON)

Models: each config class's defaults (VideoMAE-Base 16x224, TimeSformer-Base 8x224, ViViT-B
32x224; 400 labels) with **random weights** (seeded; speed does not depend on them, nothing is
downloaded), saved with save_pretrained and exported with `vidsort.export.export_model` (fp32 +
int8 dynamic) into ``--cache``, one at a time (``free`` memory is checked first), reused while
the cache holds them (``--rebuild`` exports again).

Latency: one clip (batch 1) of the runtime's own input for a real clip, every implementation in
one process with the same thread count (``--threads``, default 2). Each round runs every
implementation once, in an order rotating by round, so a machine whose speed drifts slows all of
them alike; reported: median and best over ``--runs`` rounds after one warm-up round, and the
median of the per-round ratios to PyTorch. The load average and the CPU flags are printed and
saved beside the figures.

GFLOPs per clip: multiply-adds counted in the fp32 ONNX graph (`_flops.graph_macs`), 2 FLOPs each.
Parity: the export's fp32 max |Δlogit| (batch 1 and 2) and, on the shared real clips, int8's
lowest cosine and top-1 agreement vs PyTorch fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _env import machine, versions  # noqa: E402
from _flops import graph_macs  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "videos"
CLIPS = ("arm_wrestling_340x256.mp4", "clip_mpeg4_320x240.avi", "short_32f.mp4",
         "ntu_1080p_h264.avi")
IMPLEMENTATIONS = ("pytorch", "onnx_fp32", "onnx_int8")
MODEL_CLASSES = {"videomae": ("VideoMAEConfig", "VideoMAEForVideoClassification"),
                 "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification"),
                 "vivit": ("VivitConfig", "VivitForVideoClassification")}
#: structurally complete and small, for --quick
QUICK = {"videomae": dict(num_frames=4, image_size=32, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64),
         "timesformer": dict(num_frames=8, image_size=32, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64),
         "vivit": dict(num_frames=32, image_size=32, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)}
MIN_FREE_GIB = 8  # before a default-size export (ViViT-B traces a 3137-token model)


def free_gib() -> float:
    """Available memory (``MemAvailable``) in GiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def wait_for_memory(log, limit_s: float = 1800) -> None:
    """Wait (up to ``limit_s``) until ``MIN_FREE_GIB`` are available; others share the host."""
    started = time.time()
    while free_gib() < MIN_FREE_GIB and time.time() - started < limit_s:
        log(f"waiting: {free_gib():.1f} GiB available, want {MIN_FREE_GIB}")
        time.sleep(30)


def build(model_type: str, cache: Path, quick: bool, rebuild: bool, log) -> tuple[Path, Path]:
    """(save_pretrained dir, export dir) of the architecture, built unless cached."""
    hf = cache / f"arch-{model_type}{'-quick' if quick else ''}" / "hf"
    onnx_dir = hf.parent / "onnx"
    if not rebuild and (onnx_dir / "vidsort.json").is_file() and (hf / "config.json").is_file():
        return hf, onnx_dir
    import torch
    import transformers
    from vidsort.supported import BY_MODEL_TYPE

    config_name, model_name = MODEL_CLASSES[model_type]
    labels = [f"class_{i:03d}" for i in range(400)]
    config = getattr(transformers, config_name)(
        **(QUICK[model_type] if quick else {}), num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(config).eval()
    model.save_pretrained(hf)
    del model
    # the architecture's own processor class with its defaults, sized to the model
    processor = getattr(transformers, BY_MODEL_TYPE[model_type].processors[0])()
    size = config.image_size
    if processor.crop_size["height"] != size:
        processor.size = {"shortest_edge": size}
        processor.crop_size = {"height": size, "width": size}
    processor.save_pretrained(hf)
    if not quick:
        wait_for_memory(log)
    from vidsort.export import export_model

    log(f"exporting {model_type} (fp32 + int8 dynamic) to {onnx_dir}")
    export_model(hf, onnx_dir, quantize="dynamic", overwrite=True, log=None)
    return hf, onnx_dir


def real_inputs(onnx_dir: Path) -> dict[str, np.ndarray]:
    """The runtime's model input for each shared clip present (decode, sample, preprocess)."""
    from vidsort.modeldir import ModelDir
    from vidsort.pipeline import PrepareSpec, prepare_clip

    model = ModelDir.load(onnx_dir)
    spec = PrepareSpec(model.preprocess, clip_len=model.clip_len,
                       frame_sample_rate=model.frame_sample_rate)
    return {name: prepare_clip(VIDEOS / name, spec).pixel_values
            for name in CLIPS if (VIDEOS / name).is_file()}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def measure(model_type: str, hf: Path, onnx_dir: Path, threads: int, runs: int,
            log) -> dict[str, Any]:
    """Latency of the three implementations side by side, parity, and GFLOPs."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForVideoClassification

    torch.set_num_threads(threads)
    model = AutoModelForVideoClassification.from_pretrained(hf).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    sessions = {name: ort.InferenceSession(str(onnx_dir / file), options,
                                           providers=["CPUExecutionProvider"])
                for name, file in (("onnx_fp32", "model.onnx"),
                                   ("onnx_int8", "model_quantized.onnx"))}
    inputs = real_inputs(onnx_dir)
    if not inputs:
        raise SystemExit(f"no shared clips under {VIDEOS}")

    def run(name: str, x: np.ndarray) -> np.ndarray:
        if name == "pytorch":
            with torch.inference_mode():
                return model(pixel_values=torch.from_numpy(x)).logits.numpy()
        return sessions[name].run(None, {"pixel_values": x})[0]

    # parity on every real clip (also the warm-up round)
    cosines, agree = [], []
    for x in inputs.values():
        reference, int8 = run("pytorch", x), run("onnx_int8", x)
        run("onnx_fp32", x)
        cosines.append(cosine(int8, reference))
        agree.append(bool(int8.argmax() == reference.argmax()))
    clip = next(iter(inputs.values()))
    times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for round_ in range(runs):
        order = IMPLEMENTATIONS[round_ % 3:] + IMPLEMENTATIONS[:round_ % 3]
        for name in order:
            started = time.perf_counter()
            run(name, clip)
            times[name].append(time.perf_counter() - started)
        log(f"  {model_type} round {round_ + 1}/{runs}: " + ", ".join(
            f"{n} {times[n][-1]:.3f} s" for n in IMPLEMENTATIONS)
            + f" (load {os.getloadavg()[0]:.1f})")
    manifest = json.loads((onnx_dir / "vidsort.json").read_text())
    shape = [1, *manifest["input"]["shape"][1:]]
    macs = graph_macs(onnx_dir / "model.onnx", shape)
    latency = {name: {"median_s": round(statistics.median(t), 4), "best_s": round(min(t), 4),
                      "runs": [round(v, 4) for v in t]} for name, t in times.items()}
    for name in IMPLEMENTATIONS[1:]:
        ratios = [p / o for p, o in zip(times["pytorch"], times[name], strict=True)]
        latency[name]["speedup_vs_pytorch"] = round(statistics.median(ratios), 3)
    return {
        "model_type": model_type,
        "input_shape": shape,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "pytorch_attention": model.config._attn_implementation,
        "flops_per_clip": int(2 * macs["total"]),
        "gflops_per_clip": round(2 * macs["total"] / 1e9, 1),
        "flops_count": {"by_op_gmacs": {k: round(v / 1e9, 2) for k, v in macs["by_op"].items()},
                        "unresolved_shapes": macs["unresolved_shapes"],
                        "uncounted_ops": macs["uncounted_ops"]},
        "latency": latency,
        "fp32_max_abs_diff": manifest["validation"]["fp32"]["max_abs_diff"],
        "int8_real_clips": {"clips": list(inputs), "min_cosine": round(min(cosines), 6),
                            "top1_agreement": sum(agree) / len(agree)},
        "optimization": manifest["export"]["optimization"],
    }


def table(results: list[dict[str, Any]]) -> str:
    """The README table (markdown)."""
    rows = ["| architecture | input | GFLOPs / clip | PyTorch eager fp32 | ONNX fp32 | "
            "ONNX int8 (dynamic) | int8 cosine (real clips) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lat = r["latency"]
        t, f, q = lat["pytorch"], lat["onnx_fp32"], lat["onnx_int8"]
        _, frames, _, height, width = r["input_shape"]
        rows.append(
            f"| {r['model_type']} | {frames}x{height}x{width} | {r['gflops_per_clip']:.0f} | "
            f"{t['median_s']:.2f} s | {f['median_s']:.2f} s ({f['speedup_vs_pytorch']:.2f}x) | "
            f"{q['median_s']:.2f} s ({q['speedup_vs_pytorch']:.2f}x) | "
            f"{r['int8_real_clips']['min_cosine']:.4f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="videomae,timesformer,vivit",
                        help="comma-separated model types (default: all supported)")
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every implementation")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("VIDSORT_BENCH_CACHE",
                                                    Path.home() / ".cache" / "vidsort-bench")),
                        help="models and exports (default ~/.cache/vidsort-bench)")
    parser.add_argument("--rebuild", action="store_true",
                        help="build and export again even when the cache has the model")
    parser.add_argument("--quick", action="store_true", help="tiny configs, 1 round, no JSON")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/architectures.json; "
                             "none with --quick)")
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else ROOT / "benchmarks/results/architectures.json")
    runs = 1 if args.quick else args.runs

    def log(message: str) -> None:
        print(message, flush=True)

    info = machine()
    log(f"{info.get('cpu_model')}, {info.get('usable_cpus')} CPUs, flags "
        f"{','.join(info.get('flags', []))}; load average {os.getloadavg()}")
    results = []
    for model_type in args.archs.split(","):
        hf, onnx_dir = build(model_type, args.cache, args.quick, args.rebuild, log)
        results.append(measure(model_type, hf, onnx_dir, args.threads, runs, log))
    load_after = [round(x, 2) for x in os.getloadavg()]
    log(table(results))
    log(f"load average at the end {load_after}; threads {args.threads}; "
        f"{runs} rounds; CPU flags {','.join(info.get('flags', []))}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": info, "versions": versions(), "threads": args.threads,
                                   "runs": runs, "load_average_at_end": load_after,
                                   "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "results": results, "table": table(results)}, indent=2) + "\n")
        log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
