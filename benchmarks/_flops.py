"""Model cost per clip: multiply-adds counted in the ONNX graph, cross-checked with the config.

Units: a multiply-add (MAC) is 2 FLOPs. VideoMAE-Base at 16x224 is ~180.3 GMACs = ~360.7 GFLOPs
per clip, so the "≈ 361 GFLOPs per clip" figure counts FLOPs (2 per multiply-add), not MACs.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any


def config_macs(config: dict[str, Any]) -> dict[str, float]:
    """Multiply-adds per clip of a VideoMAE classifier from its config.json alone.

    Args:
        config: the parsed config.json (num_frames, image_size, patch_size, tubelet_size,
            hidden_size, intermediate_size, num_hidden_layers, num_labels).

    Returns:
        MACs by part (patch embedding, attention projections, attention matrices, MLP,
        classifier) and ``total``; norms, softmax and GELU are left out (< 1%).
    """
    size = config.get("image_size", 224)
    height, width = (size, size) if isinstance(size, int) else size
    patch, tubelet = config.get("patch_size", 16), config.get("tubelet_size", 2)
    hidden, inter = config.get("hidden_size", 768), config.get("intermediate_size", 3072)
    layers = config.get("num_hidden_layers", 12)
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 400
    tokens = (config.get("num_frames", 16) // tubelet) * (height // patch) * (width // patch)
    parts = {
        "patch_embedding": tokens * (3 * tubelet * patch * patch) * hidden,
        "attention_projections": layers * 4 * tokens * hidden * hidden,
        "attention_matrices": layers * 2 * tokens * tokens * hidden,
        "mlp": layers * 2 * tokens * hidden * inter,
        "classifier": hidden * labels,
    }
    parts = {k: float(v) for k, v in parts.items()}
    parts["total"] = sum(parts.values())
    parts["tokens"] = float(tokens)
    return parts


def _dims(value_info) -> list[int] | None:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return dims


def _infer(model, input_shape: list[int]):
    """Shape-infer with the model input fixed to ``input_shape`` (handles ORT fused ops)."""
    inp = model.graph.input[0]
    for dim, value in zip(inp.type.tensor_type.shape.dim, input_shape, strict=False):
        dim.ClearField("dim_param")
        dim.dim_value = int(value)
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True), "ort-symbolic"
    except Exception:  # sympy missing, or an op it does not know: plain ONNX inference
        import onnx

        return onnx.shape_inference.infer_shapes(model), "onnx"


def graph_macs(onnx_path: str | Path, input_shape: list[int]) -> dict[str, Any]:
    """Multiply-adds per inference counted from an fp32 ONNX graph.

    Counts MatMul, Gemm, Conv and ONNX Runtime's fused Attention / MultiHeadAttention;
    reports which other ops it saw (elementwise ops are not counted).

    Args:
        onnx_path: the fp32 model.onnx.
        input_shape: concrete input shape, e.g. ``[1, 16, 3, 224, 224]``.

    Returns:
        ``{"total", "by_op", "uncounted_ops", "shape_inference"}``; MACs.
    """
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    model, how = _infer(model, input_shape)
    shapes: dict[str, list[int] | None] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        shapes[vi.name] = _dims(vi)
    for init in model.graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]

    by_op: Counter = Counter()
    unknown: Counter = Counter()
    skipped: Counter = Counter()
    for node in model.graph.node:
        ins = [shapes.get(n) for n in node.input]
        out = shapes.get(node.output[0]) if node.output else None
        macs = _node_macs(node, ins, out)
        if macs is None:
            if node.op_type in _COUNTED:
                unknown[node.op_type] += 1
            else:
                skipped[node.op_type] += 1
            continue
        by_op[node.op_type] += macs
    return {"total": float(sum(by_op.values())), "by_op": {k: float(v) for k, v in by_op.items()},
            "unresolved_shapes": dict(unknown), "uncounted_ops": dict(skipped),
            "shape_inference": how}


_COUNTED = {"MatMul", "Gemm", "Conv", "Attention", "MultiHeadAttention", "FusedMatMul"}


def _node_macs(node, ins: list, out: list[int] | None) -> float | None:
    op = node.op_type
    if op not in _COUNTED or any(s is None for s in ins[:2]) or (out is None and op != "Attention"):
        return None
    if op in ("MatMul", "FusedMatMul"):
        k = ins[0][-1]
        return float(math.prod(out) * k)
    if op == "Gemm":
        trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
        k = ins[0][0] if trans_a else ins[0][-1]
        return float(math.prod(out) * k)
    if op == "Conv":
        w = ins[1]  # (C_out, C_in / group, *kernel)
        return float(math.prod(out) * math.prod(w[1:]))
    if op == "Attention":
        batch, seq, hidden_in = ins[0]
        proj = ins[1][-1]  # 3 * hidden
        hidden = proj // 3
        return float(batch * seq * hidden_in * proj + 2 * batch * seq * seq * hidden)
    if op == "MultiHeadAttention":
        batch, seq, hidden = ins[0][:3]
        kv_seq = ins[1][1] if len(ins) > 1 and ins[1] is not None and len(ins[1]) == 3 else seq
        return float(2 * batch * seq * kv_seq * hidden)
    return None
