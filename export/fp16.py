"""The fp16 variant (``model_fp16.onnx``, for GPUs): converted so that it stays right, then checked.

Conversion (`convert_fp16`) is onnxruntime.transformers' float16 converter, given:

- ``keep_io_types=True``: the graph takes and returns float32, so callers never cast and the
  runtime feeds fp16 and fp32 files alike; the casts run on the device, inside the graph.
- an op block list: ORT's own (`float16.DEFAULT_OP_BLOCK_LIST`, ops without fp16 kernels) plus
  the reductions (`ALWAYS_FP32_OPS`): a mean over VideoMAE's 1,568 tokens sums them first, and one
  Cast of a (batch, tokens, 768) tensor is all that fp32 costs there.
- a node block list from measurement: the fp32 graph runs on the check clips with every float
  tensor's max |value| as an extra output (`activation_ranges`), and a node whose inputs or
  outputs come within `HEADROOM` of fp16's largest value (65504) stays fp32. For fused attention
  the QKᵀ scores are inside the kernel, so the scan recomputes them (`_score_scan`) and the
  attention node stays fp32 when they come close. LayerNormalization / SkipLayerNormalization and
  Softmax are NOT blocked by type: their fp16 kernels accumulate in fp32 (LayerNormalization's
  ``stash_type`` is 1 = float32 by the ONNX spec; ORT's CUDA softmax and layer-norm kernels
  accumulate in float), so only an input that would itself overflow fp16 needs fp32 — which is
  what the range rule catches.

The fused attention stays ``MultiHeadAttention`` (what `vidsort.export.optimize` writes): its CUDA
kernel runs flash / memory-efficient attention for fp16 on recent GPUs, and its CPU kernel lets the
check below run on a machine without one.

Check (`check_fp16`): the fp16 graph against the fp32 PyTorch logits on the seeded reference
clips (batch 1 and 2: the batch axis stays dynamic) and on real clips when there are any: lowest
cosine ≥ `MIN_COSINE` and no NaN/inf, else `ExportError`. It runs on CUDA when this onnxruntime has
a usable GPU, else on CPU (ORT's CPU provider runs fp16 graphs, computing ops without fp16 kernels
in fp32 between casts — so the CPU check proves the conversion and the weights, and the range scan
above is what guards the GPU's fp16 arithmetic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from vidsort.errors import ExportError, first_line
from vidsort.export.quantize import needs_external_data, quiet_logging
from vidsort.export.validate import Reference

#: largest finite fp16 value
FP16_MAX = float(np.finfo(np.float16).max)
#: a node stays fp32 when a value it reads or writes reaches FP16_MAX / HEADROOM on the check
#: clips: clips not in the check may run larger, and a sum of a few such values must still fit
HEADROOM = 16.0
#: op types kept fp32 always, on top of ORT's DEFAULT_OP_BLOCK_LIST (see the module docstring)
ALWAYS_FP32_OPS = ("ReduceMean", "ReduceSum")
#: the fp16 variant must reach this cosine similarity to fp32 on every check clip
MIN_COSINE = 0.999
#: fused attention ops whose QKᵀ scores the range scan recomputes
_ATTENTION_OPS = ("MultiHeadAttention",)
_SCAN_SUFFIX = "__vidsort_absmax"


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique name (the converter's node block list goes by name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_vidsort_{i}"
        seen.add(node.name)


def _float_tensors(model: onnx.ModelProto) -> tuple[set[str], dict[str, list]]:
    """Names of the float32 tensors nodes produce, and their inferred shapes (dims or names)."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    # symbolic inference knows ORT's contrib ops (MultiHeadAttention, SkipLayerNormalization...),
    # which onnx's own inference leaves untyped
    with quiet_logging():
        inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    floats, shapes = set(), {}
    for info in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = info.type.tensor_type
        if tensor.elem_type == TensorProto.FLOAT:
            floats.add(info.name)
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param
                                 for d in tensor.shape.dim]
    produced = {o for node in model.graph.node for o in node.output}
    return floats & produced, shapes


def _absmax(graph: onnx.GraphProto, tensor: str, out: str) -> None:
    """Append ``out = ReduceMax(Abs(tensor))`` (a scalar) as a graph output."""
    graph.node.append(helper.make_node("Abs", [tensor], [out + "_abs"]))
    graph.node.append(helper.make_node("ReduceMax", [out + "_abs"], [out], keepdims=0))
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, []))


def _score_scan(graph: onnx.GraphProto, node: onnx.NodeProto, inits: dict[str, np.ndarray],
                shapes: dict[str, list]) -> str | None:
    """Recompute a MultiHeadAttention node's scaled QKᵀ scores; returns the absmax output name.

    Only the separate query / key layout (B, S, hidden) with an optional packed q/k/v bias is
    handled; for anything else the scores are not measured (None).
    """
    if len(node.input) < 2 or not node.input[1]:
        return None
    hidden = (shapes.get(node.input[0]) or [None])[-1]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    heads = int(attrs.get("num_heads", 0))
    if not isinstance(hidden, int) or heads <= 0 or hidden % heads:
        return None
    head = hidden // heads
    scale = float(attrs.get("scale", 0.0)) or 1.0 / np.sqrt(head)
    prefix = f"{node.name}{_SCAN_SUFFIX}"
    q, k = node.input[0], node.input[1]
    bias = inits.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if bias is not None:
        for name, part in (("q", 0), ("k", 1)):
            init = f"{prefix}_{name}_bias"
            values = bias.reshape(-1)[part * hidden:(part + 1) * hidden].astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(values, init))
            source = q if name == "q" else k
            graph.node.append(helper.make_node("Add", [source, init], [f"{prefix}_{name}b"]))
        q, k = f"{prefix}_qb", f"{prefix}_kb"
    split = f"{prefix}_split"
    graph.initializer.append(numpy_helper.from_array(np.array([0, 0, heads, head], np.int64),
                                                     split))
    graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32),
                                                     f"{prefix}_scale"))
    graph.node.extend([
        helper.make_node("Reshape", [q, split], [f"{prefix}_q4"]),
        helper.make_node("Transpose", [f"{prefix}_q4"], [f"{prefix}_qt"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", [k, split], [f"{prefix}_k4"]),
        helper.make_node("Transpose", [f"{prefix}_k4"], [f"{prefix}_kt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", [f"{prefix}_qt", f"{prefix}_kt"], [f"{prefix}_qk"]),
        helper.make_node("Mul", [f"{prefix}_qk", f"{prefix}_scale"], [f"{prefix}_scores"]),
    ])
    _absmax(graph, f"{prefix}_scores", f"{prefix}_scores_max")
    return f"{prefix}_scores_max"


def activation_ranges(model: onnx.ModelProto, inputs: list[np.ndarray],
                      input_name: str) -> tuple[dict[str, float], dict[str, float]]:
    """Max |value| of every float tensor of ``model`` over ``inputs``, run in fp32 on CPU.

    Args:
        model: the fp32 graph (initializers loaded; not modified).
        inputs: clips (N, T, C, H, W), run one at a time (bounds memory on large models).
        input_name: the graph input.

    Returns:
        ``(tensor -> max |value|, attention node name -> max |scaled QKᵀ|)``.
    """
    import onnxruntime as ort

    floats, shapes = _float_tensors(model)
    scan = onnx.ModelProto()
    scan.CopyFrom(model)
    del scan.graph.output[:]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    outputs: dict[str, str] = {}
    for tensor in sorted(floats):
        _absmax(scan.graph, tensor, tensor + _SCAN_SUFFIX)
        outputs[tensor + _SCAN_SUFFIX] = tensor
    scores: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type in _ATTENTION_OPS:
            out = _score_scan(scan.graph, node, inits, shapes)
            if out is not None:
                scores[out] = node.name
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # basic level only: the extra outputs must not be fused away or folded into new nodes
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(scan.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    del scan
    names = [o.name for o in session.get_outputs()]
    ranges: dict[str, float] = {}
    for clip in inputs:
        for batch in np.asarray(clip, dtype=np.float32):
            values = session.run(names, {input_name: batch[None]})
            for name, value in zip(names, values, strict=True):
                ranges[name] = max(ranges.get(name, 0.0), float(value))
    tensors = {t: ranges[o] for o, t in outputs.items()}
    attention = {n: ranges[o] for o, n in scores.items()}
    return tensors, attention


def block_list(model: onnx.ModelProto, tensors: dict[str, float], attention: dict[str, float],
               limit: float) -> dict[str, str]:
    """Nodes that must stay fp32, each with the reason.

    Args:
        model: the fp32 graph (named nodes).
        tensors: max |value| per float tensor (`activation_ranges`).
        attention: max |scaled QKᵀ| per attention node.
        limit: the largest value accepted in fp16.

    Returns:
        ``{node name: reason}``.
    """
    blocked: dict[str, str] = {}
    for node in model.graph.node:
        seen = [(tensors[t], t) for t in (*node.input, *node.output) if t in tensors]
        if node.name in attention:
            seen.append((attention[node.name], "QKᵀ scores"))
        if not seen:
            continue
        peak, where = max(seen)
        if peak > limit:
            blocked[node.name] = f"{node.op_type}: |{where}| reaches {peak:.4g} (> {limit:.4g})"
    return blocked


def convert_fp16(src: Path, dst: Path, clips: list[np.ndarray],
                 input_name: str = "pixel_values") -> dict[str, Any]:
    """Write the fp16 variant of ``src`` to ``dst`` (see the module docstring).

    Args:
        src: the (optimized) fp32 graph.
        dst: where the fp16 graph goes.
        clips: clips for the range scan (reference clips, and real ones when there are any).
        input_name: the graph input.

    Returns:
        The settings and measurements, for the manifest.
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(src))
    _name_nodes(model)
    limit = FP16_MAX / HEADROOM
    tensors, attention = activation_ranges(model, clips, input_name)
    blocked = block_list(model, tensors, attention, limit)
    op_block = sorted({*DEFAULT_OP_BLOCK_LIST, *ALWAYS_FP32_OPS})
    wrapped = OnnxModel(model)
    with quiet_logging():
        wrapped.convert_float_to_float16(keep_io_types=True, op_block_list=op_block,
                                         node_block_list=sorted(blocked))
    dst.parent.mkdir(parents=True, exist_ok=True)
    wrapped.save_model_to_file(str(dst), use_external_data_format=needs_external_data(src))
    peak = max(tensors.values(), default=0.0)
    return {"keep_io_types": True, "converter": "onnxruntime.transformers.float16",
            "op_block_list_extra": list(ALWAYS_FP32_OPS), "headroom": HEADROOM,
            "limit": limit, "range_clips": int(sum(len(c) for c in clips)),
            "max_abs_activation": round(peak, 4),
            "max_abs_attention_score": round(max(attention.values(), default=0.0), 4),
            "attention_scores_measured": len(attention),
            "fp32_nodes": blocked}


def _providers() -> list[str]:
    """CUDA when this onnxruntime has a working GPU, else CPU (see the module docstring)."""
    import onnxruntime as ort

    return (["CUDAExecutionProvider", "CPUExecutionProvider"]
            if "CUDAExecutionProvider" in ort.get_available_providers()
            else ["CPUExecutionProvider"])


def _closeness(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Lowest per-clip cosine (-1 for a clip with NaN/inf), top-1 agreement, max |Δ| of logits."""
    finite = np.isfinite(b).all(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(np.where(np.isfinite(b), b, 0.0), axis=1)
    dots = np.sum(a * np.where(np.isfinite(b), b, 0.0), axis=1)
    cosine = np.where(finite, dots / np.maximum(norms, 1e-30), -1.0)
    return {"cosine": float(cosine.min()),
            "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
            "max_abs_diff": float(np.max(np.abs(a - b))) if finite.all() else None,
            "clips": int(len(a)), "nonfinite": int((~finite).sum())}


def check_fp16(path: Path, refs: dict[str, Reference]) -> dict[str, Any]:
    """Run the fp16 graph on each reference set and compare with the fp32 PyTorch logits.

    Args:
        path: the fp16 graph.
        refs: name -> `Reference` (e.g. ``"noise"``: seeded clips at batch 1 and 2;
            ``"real_clips"``: clips from videos).

    Returns:
        ``{"cosine", "top1_agreement", "max_abs_diff", "clips", "nonfinite", "provider",
        "sets": {name: figures}}``. Raises `ExportError` when a clip has NaN/inf logits or a
        cosine below `MIN_COSINE`.
    """
    import onnxruntime as ort

    providers = _providers()
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # ORT raises several types for graphs it cannot run
        raise ExportError(f"{path}: the fp16 graph cannot be loaded for its check: "
                          f"{first_line(exc)}") from None
    sets: dict[str, dict[str, Any]] = {}
    every: list[tuple[np.ndarray, np.ndarray]] = []
    for name, ref in refs.items():
        a = np.concatenate([ref.logits[k] for k in ref.inputs]).astype(np.float64)
        b = np.concatenate([session.run(None, {ref.input_name: v})[0]
                            for v in ref.inputs.values()]).astype(np.float64)
        sets[name] = _closeness(a, b)
        every.append((a, b))
    figures = _closeness(np.concatenate([a for a, _ in every]),
                         np.concatenate([b for _, b in every]))
    figures.update(provider=session.get_providers()[0], min_cosine=MIN_COSINE, sets=sets)
    if figures["nonfinite"]:
        raise ExportError(f"{path}: the fp16 graph gives NaN/inf logits on "
                          f"{figures['nonfinite']} of {figures['clips']} check clips; "
                          "export without --fp16, or report the model")
    if figures["cosine"] < MIN_COSINE:
        worst = min(sets, key=lambda k: sets[k]["cosine"])
        raise ExportError(f"{path}: the fp16 graph's logits reach cosine {figures['cosine']:.5f} "
                          f"to fp32 on the {worst} clips (< {MIN_COSINE}); export without --fp16")
    return figures
