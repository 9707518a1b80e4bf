"""The quantization and graph levers of bench_cpu_speed.py: variants built from one plain graph.

From a ``vidsort export --no-optimize`` directory (its model.onnx is the unfused graph), builds
under ``~/.cache/vidsort-speed/levers``: the fp32 graph as-is, with ORT's packed ``Attention``
fusion (the previous default) and with ``MultiHeadAttention`` (the current default); dynamic
int8 from the packed-Attention and the MultiHeadAttention graphs; static int8 with the previous
defaults and each lever added in turn, plus single-lever alternatives. All are timed side by side
with PyTorch and checked against PyTorch on real clips.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CACHE = Path.home() / ".cache" / "vidsort-speed" / "levers"
VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"

#: static variants: options over `vidsort.export.quantize.STATIC_DEFAULTS`, in lever order
STATIC_VARIANTS: dict[str, dict[str, Any]] = {
    "static: previous defaults (QDQ outputs, u8 attention)": {
        "quantize_outputs": True, "fold_attention_scale": False, "attention": "u8",
        "ort_optimize": False},
    "static: + float MatMul outputs": {"fold_attention_scale": False, "attention": "u8",
                                       "ort_optimize": False},
    "static: + attention scale folded": {"attention": "u8", "ort_optimize": False},
    "static: + ORT-optimized save (u8 attention)": {"attention": "u8"},
    "static: + s8 attention operands (= defaults)": {},
    "static defaults, attention MatMuls fp32": {"attention": "fp32"},
    "static defaults, reduce_range off": {"reduce_range": False},
    "static defaults, per-tensor weights": {"per_channel": False},
    "static defaults, Percentile 99.999": {"calibrate_method": "Percentile"},
}


def _key(options: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]


def build(raw_dir: Path, log=print) -> dict[str, Path]:
    """Every variant's ONNX file (built once, cached by its options)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig
    from vidsort.export import quantize as q
    from vidsort.export.onnx_config import onnx_config_for
    from vidsort.export.optimize import optimize_graph
    from vidsort.export.quantize import quiet_logging

    CACHE.mkdir(parents=True, exist_ok=True)
    raw = raw_dir / "model.onnx"
    files: dict[str, Path] = {"fp32 plain graph": raw}
    config = onnx_config_for(AutoConfig.from_pretrained(raw_dir))
    mha = CACHE / "fp32_mha.onnx"
    if not mha.exists():
        optimize_graph(raw, mha, config)
    packed = CACHE / "fp32_packed_attention.onnx"
    if not packed.exists():
        with quiet_logging():
            optimize_model(str(raw), model_type="vit", opt_level=1, use_gpu=False,
                           optimization_options=FusionOptions("vit"),
                           **config.ort_optimizer_args()).save_model_to_file(str(packed))
    files["fp32 packed Attention (previous)"] = packed
    files["fp32 MultiHeadAttention (default)"] = mha
    for name, src in (("dynamic from packed Attention (previous)", packed),
                      ("dynamic from MultiHeadAttention graph", mha)):
        dst = CACHE / f"dyn_{src.stem}.onnx"
        if not dst.exists():
            pre = CACHE / f"{src.stem}.pre.onnx"
            if q.preprocess(src, pre) is not None:
                pre = src
            with quiet_logging():
                q.quantize_dynamic_int8(pre, dst)
        files[name] = dst
    pre = CACHE / "plain.pre.onnx"
    if not pre.exists() and q.preprocess(raw, pre) is not None:
        pre = raw
    reader = None
    for name, options in STATIC_VARIANTS.items():
        dst = CACHE / f"static_{_key(options)}.onnx"
        if not dst.exists():
            if reader is None:
                reader = q.VideoCalibrationReader([VIDEOS], raw_dir, num_frames=16)
            log(f"building {name}")
            with quiet_logging():
                q.quantize_static_int8(pre, dst, reader, **options)
        files[name] = dst
    return files


def run_levers(args, compare, ratio) -> dict[str, Any]:
    """Build the variants, then time them (and PyTorch) side by side and check accuracy."""
    import torch
    from transformers import VideoMAEForVideoClassification
    from vidsort.session import SessionSettings, create_session

    files = build(args.levers)
    torch.set_num_threads(2)
    model = VideoMAEForVideoClassification.from_pretrained(args.hf).eval()
    sessions = {k: create_session(p, "cpu", SessionSettings(threads=2)) for k, p in files.items()}
    accuracy, timing, fns = compare(model, sessions, args.levers, args.rounds)
    result = {"files": {k: str(p) for k, p in files.items()}, "options": STATIC_VARIANTS,
              "accuracy_vs_pytorch": accuracy, "timing": timing,
              "speedup_vs_pytorch": {k: ratio(timing, "pytorch eager fp32", k) for k in fns},
              "cpu_speedup_vs_pytorch": {k: ratio(timing, "pytorch eager fp32", k, "cpu_s")
                                         for k in fns}}
    for k in fns:
        print(f"{k:55s} x{result['speedup_vs_pytorch'][k]:.2f} "
              f"cpu x{result['cpu_speedup_vs_pytorch'][k]:.2f} {accuracy.get(k, '')}")
    return result
