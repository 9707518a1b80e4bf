"""Smaller variants of the fp32 graph: int8 (ONNX Runtime dynamic or static QDQ); fp16 is in
`vidsort.export.fp16`.

Defaults must be right on an x86 AVX2 CPU without VNNI and fast with VNNI: weights QInt8 with
``reduce_range`` (7-bit weights, so u8×s8 products cannot saturate the 16-bit intermediate of
the non-VNNI kernels), activations QUInt8, the K and V operands of attention symmetric 7-bit
int8 for the same reason. Every setting can be overridden by keyword.

Static int8 is the faster variant (VideoMAE-Base, 2 threads, Zen 4 with VNNI: ~1.4× dynamic int8,
~2.9× PyTorch fp32 on a quiet machine); benchmarks/results/cpu_speed.md has the measurements
behind each default.
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.calibrate import TensorsData, save_tensors_data
from vidsort.errors import ExportError, first_line
from vidsort.export.calibration import (  # noqa: F401  (re-exported for the exporter)
    VideoCalibrationReader,
    calibrate,
    expand_videos,
    runtime_preprocessing,
)

#: ONNX protobufs cannot exceed 2 GiB; bigger models keep their tensors in a side file
EXTERNAL_DATA_THRESHOLD = 1_800_000_000

DYNAMIC_DEFAULTS: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True,
                                    "reduce_range": True}
ATTENTION_MODES = ("s8", "u8", "fp32")
STATIC_DEFAULTS: dict[str, Any] = {
    "weight_type": "QInt8", "activation_type": "QUInt8", "per_channel": True,
    "reduce_range": True, "calibrate_method": "MinMax", "percentile": 99.999,
    "clips_per_video": 2, "max_clips": 32,
    # the ops with int8 CPU kernels; QDQ around LayerNorm/Softmax would only add conversions
    "op_types_to_quantize": ["Conv", "MatMul", "Gemm"],
    # float outputs: DQ → MatMul runs as MatMulIntegerToFloat (requantizing cost ~25 % more)
    "quantize_outputs": False,
    # QKᵀ / sqrt(d) → (Q / sqrt(d)) Kᵀ: saves a pass over the (heads, tokens, tokens) scores
    "fold_attention_scale": True,
    # the activation × activation MatMuls (QKᵀ, probabilities × V): "s8" quantizes K and V to
    # symmetric 7-bit int8 (u8×s8 kernels, ~2× the u8×u8 ones), "u8" leaves them uint8, "fp32"
    # leaves those MatMuls in float
    "attention": "s8",
    "nodes_to_exclude": [],
    # save ORT's fusion of the QDQ graph (keeps the int8 attention operands; faster load)
    "ort_optimize": True,
}


@contextmanager
def quiet_logging(level: int = logging.WARNING) -> Iterator[None]:
    """Silence log records up to ``level`` while ORT's tools run.

    onnxruntime's optimizer and quantizer log every unmatched pattern and skipped tensor, under
    ad-hoc logger names (and via the root logger); none of it is actionable for a user, and the
    export reports its own outcome.
    """
    previous = logging.root.manager.disable
    logging.disable(max(level, previous))
    try:
        yield
    finally:
        logging.disable(previous)


def model_files(path: str | os.PathLike) -> list[Path]:
    """An ONNX file and the external-data files its tensors point to (names are relative)."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    side: set[str] = set()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            side.update(e.value for e in tensor.external_data if e.key == "location")
    return [path, *(path.parent / name for name in sorted(side))]


def needs_external_data(path: str | os.PathLike) -> bool:
    """True when a model (with its external data) is too big for one protobuf (2 GiB)."""
    return sum(p.stat().st_size for p in model_files(path)) > EXTERNAL_DATA_THRESHOLD


def _session_ok(path: Path) -> str | None:
    """None if ORT can load and run the model's graph on CPU, else why not."""
    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several unrelated types for unsupported graphs
        return first_line(exc)
    return None


def preprocess(src: Path, dst: Path) -> str | None:
    """Run ORT's `quant_pre_process` (shape inference + basic fusions) from ``src`` into ``dst``.

    Returns:
        None when ``dst`` was written, else why not (quantize ``src`` directly then).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    external = needs_external_data(src)
    try:
        quant_pre_process(str(src), str(dst), save_as_external_data=external,
                          all_tensors_to_one_file=True,
                          external_data_location=dst.name + "_data" if external else None)
    except Exception as exc:  # symbolic shape inference refuses some graphs; quantizing still works
        return f"quant_pre_process failed: {first_line(exc)}"
    return None


def _enum(kind, name: str):
    """``kind[name]`` for a quantization enum, or an ExportError listing the valid names."""
    try:
        return kind[name]
    except KeyError:
        raise ExportError(f"unknown {kind.__name__} {name!r} (choose from "
                          f"{', '.join(kind.__members__)})") from None


def quantize_dynamic_int8(src: Path, dst: Path, **options: Any) -> dict[str, Any]:
    """Dynamic int8: weights quantized offline, activations per inference.

    Args:
        src: fp32 ONNX model (preferably pre-processed).
        dst: output path.
        **options: ``weight_type`` (QInt8|QUInt8), ``per_channel``, ``reduce_range``; defaults in
            `DYNAMIC_DEFAULTS`. A per-channel graph ORT cannot run falls back to per-tensor.

    Returns:
        The settings used (for the manifest).
    """
    settings = {**DYNAMIC_DEFAULTS, **options}
    unknown = set(settings) - set(DYNAMIC_DEFAULTS)
    if unknown:
        raise ExportError(f"{src}: unknown dynamic quantization option(s) {sorted(unknown)}")
    attempts = [settings]
    if settings["per_channel"]:
        attempts.append({**settings, "per_channel": False})
    problems: list[str] = []
    for attempt in attempts:
        quantize_dynamic(
            str(src), str(dst), weight_type=_enum(QuantType, attempt["weight_type"]),
            per_channel=bool(attempt["per_channel"]), reduce_range=bool(attempt["reduce_range"]),
            use_external_data_format=needs_external_data(src),
        )
        problem = _session_ok(dst)
        if problem is None:
            note = {"fallback": f"per_channel graph failed: {problems[0]}"} if problems else {}
            return {"mode": "dynamic", "format": "QOperator", **attempt,
                    "activation_type": "QUInt8 (computed per inference)", **note}
        problems.append(problem)
    raise ExportError(f"{dst}: ONNX Runtime cannot run the dynamically quantized model "
                      f"({problems[-1]})")


def quantize_static_int8(src: Path, dst: Path, reader: VideoCalibrationReader,
                         **options: Any) -> dict[str, Any]:
    """Static int8 (QDQ), calibrated on ``reader``'s clips, then fused by ONNX Runtime.

    Steps: fold the attention scale into the query projection; calibrate clip by clip, streamed,
    each calibrated tensor freed once measured (`vidsort.export.calibration`: memory does not grow
    with the clips; histogram methods hold one clip's calibrated tensors); quantize
    Conv/MatMul/Gemm inputs (outputs stay float, so ORT runs ``DQ → MatMul`` as
    MatMulIntegerToFloat with no requantization); optionally save ORT's own optimization of the
    QDQ graph.

    Args:
        src: fp32 ONNX model, unfused (QDQ has no rule for ORT's fused attention ops) and
            preferably pre-processed.
        dst: output path.
        reader: calibration clips.
        **options: overrides of `STATIC_DEFAULTS`: ``weight_type``, ``activation_type``,
            ``per_channel``, ``reduce_range``, ``calibrate_method`` (MinMax|Entropy|Percentile|
            Distribution), ``percentile``, ``op_types_to_quantize``, ``quantize_outputs``,
            ``fold_attention_scale``, ``attention`` (s8|u8|fp32, see `STATIC_DEFAULTS`),
            ``nodes_to_exclude``, ``ort_optimize``.

    Returns:
        The settings used (for the manifest).
    """
    from vidsort.export.optimize import attention_matmuls, save_ort_optimized

    settings = {**STATIC_DEFAULTS, **options}
    unknown = set(settings) - set(STATIC_DEFAULTS)
    if unknown:
        raise ExportError(f"{src}: unknown static quantization option(s) {sorted(unknown)}")
    if settings["attention"] not in ATTENTION_MODES:
        raise ExportError(f"unknown attention mode {settings['attention']!r} (choose from "
                          f"{', '.join(ATTENTION_MODES)})")
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise ExportError("static quantization needs an onnxruntime whose quantize_static takes "
                          f"calibration_cache_path (1.32 does); this is {ort.__version__}")
    method = _enum(CalibrationMethod, settings["calibrate_method"])
    op_types = list(settings["op_types_to_quantize"])
    external = needs_external_data(src)
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=dst.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        model_path, folded = src, 0
        if settings["fold_attention_scale"]:
            model_path, folded = _folded(src, tmp / "folded.onnx", external)
        roles = attention_matmuls(onnx.load(str(model_path), load_external_data=False))
        attention = [n for role in ("scores", "context") for n in roles[role]]
        cache = tmp / "calibration.json"
        ranges = calibrate(model_path, reader, method, op_types, tmp, external,
                           percentile=float(settings["percentile"]))
        save_tensors_data(ranges, cache)
        exclude = list(settings["nodes_to_exclude"])
        extra: dict[str, Any] = {
            # MatMul weights are (in, out): quantize per output channel.
            "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}}
        if not settings["quantize_outputs"]:
            extra["OpTypesToExcludeOutputQuantization"] = op_types
        if settings["attention"] == "fp32":
            exclude += [n.name for n in attention]
        elif settings["attention"] == "s8":
            extra["TensorQuantOverrides"] = _seven_bit_operands(attention, ranges)
        qdq = tmp / dst.name if settings["ort_optimize"] else dst
        quantize_static(
            str(model_path), str(qdq), None, quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types, nodes_to_exclude=exclude or None,
            per_channel=bool(settings["per_channel"]), reduce_range=bool(settings["reduce_range"]),
            activation_type=_enum(QuantType, settings["activation_type"]),
            weight_type=_enum(QuantType, settings["weight_type"]), calibrate_method=method,
            use_external_data_format=external, extra_options=extra,
            calibration_cache_path=str(cache))
        ort_optimized = None
        if settings["ort_optimize"]:
            # ORT turns int8 activations back into uint8 on load (QDQS8ToU8Transformer), which
            # would put the attention MatMuls on the u8×u8 kernels (half the speed of u8×s8 with
            # VNNI): fuse once here with it disabled, so the saved graph keeps them.
            ort_optimized = save_ort_optimized(qdq, dst, disabled=["QDQS8ToU8Transformer"])
    problem = _session_ok(dst)
    if problem is not None:
        raise ExportError(f"{dst}: ONNX Runtime cannot run the statically quantized model "
                          f"({problem})")
    keep = ("weight_type", "activation_type", "per_channel", "reduce_range", "calibrate_method",
            "op_types_to_quantize", "quantize_outputs", "attention", "nodes_to_exclude")
    result = {"mode": "static", "format": "QDQ", **{k: settings[k] for k in keep},
              "attention_scale_folded": folded,
              "attention_matmuls": {k: len(v) for k, v in roles.items()},
              "ort_optimized": ort_optimized, "calibration": reader.summary()}
    if method == CalibrationMethod.Percentile:
        result["percentile"] = float(settings["percentile"])
    return result


def _folded(src: Path, dst: Path, external: bool) -> tuple[Path, int]:
    """``src`` with its attention scales folded, saved as ``dst`` (``src`` itself if none)."""
    from vidsort.export.optimize import fold_attention_scale

    model = onnx.load(str(src))
    folded = fold_attention_scale(model)
    if not folded:
        return src, 0
    onnx.save(model, str(dst), save_as_external_data=external, all_tensors_to_one_file=True,
              location=dst.name + "_data" if external else None)
    return dst, folded


def _seven_bit_operands(attention: Sequence[onnx.NodeProto],
                        ranges: TensorsData) -> dict[str, list[dict[str, Any]]]:
    """Overrides making the second operand of each attention MatMul symmetric int8 in ±63.

    u8×s8 kernels without VNNI (AVX2 ``vpmaddubsw``) add two u8·s8 products in 16 bits;
    255·63·2 < 2¹⁵ cannot saturate, 255·127·2 can. 7 bits cost ~nothing in accuracy here.
    """
    overrides: dict[str, list[dict[str, Any]]] = {}
    for node in attention:
        name = node.input[1]
        if name not in ranges:
            continue
        absmax = max(float(np.abs(np.asarray(v, dtype=np.float64)).max())
                     for v in ranges[name].range_value)
        bound = np.float32(absmax * 127 / 63)
        overrides[name] = [{"quant_type": QuantType.QInt8, "symmetric": True,
                            "rmin": np.array(-bound, dtype=np.float32),
                            "rmax": np.array(bound, dtype=np.float32)}]
    return overrides
