"""Graph-level speed work: ORT's transformer fusions, attention rewrites, offline ORT optimization.

- `optimize_graph`: ONNX Runtime's transformer optimizer on the fp32 graph. Attention becomes
  ``MultiHeadAttention`` (com.microsoft; CPU and CUDA kernels) rather than the packed
  ``Attention`` op: on VideoMAE-Base (2 threads, AMD EPYC Zen 4) the packed op was ~4 % slower
  than the unfused graph, MultiHeadAttention as fast as the fastest. Only fusions that run on
  every execution provider are applied (``opt_level=1``), so one model.onnx serves CPU and GPU.
  The caller keeps the result only if it still matches PyTorch.
- `fold_attention_scale`: moves the ``QKᵀ / sqrt(d)`` scaling into the query projection's
  weights (static quantization starts from the unfused graph, where the Div runs over the whole
  (heads, tokens, tokens) score tensor; with a power-of-two ``sqrt(d)`` the fold is exact).
- `attention_matmuls`: the activation × activation MatMuls (QKᵀ and probabilities × V).
- `save_ort_optimized`: ONNX Runtime's own graph optimizations (QDQ → integer kernels), applied
  once and saved, with chosen optimizers disabled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from vidsort.export.onnx_config import VideoOnnxConfig
from vidsort.export.quantize import needs_external_data, quiet_logging

#: shape-only ops the query may pass through between its projection and QKᵀ
_SHAPE_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze")


def optimize_graph(src: Path, dst: Path, onnx_config: VideoOnnxConfig) -> dict[str, Any]:
    """Fuse ``src`` into ``dst``.

    Args:
        src: the exported fp32 graph.
        dst: where the optimized graph goes.
        onnx_config: the architecture's ONNX config (optimizer model type and attention geometry).

    Returns:
        ``{"model_type", "opt_level", "attention_op", "fused": {op: count}}``. Raises ValueError
        when the architecture declares no optimizer model type.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = onnx_config.ORT_OPTIMIZER_MODEL_TYPE
    if model_type is None:
        raise ValueError(f"no onnxruntime optimizer model type for {type(onnx_config).__name__}")
    options = FusionOptions(model_type)
    options.use_multi_head_attention = True
    with quiet_logging():
        optimized = optimize_model(str(src), model_type=model_type, opt_level=1, use_gpu=False,
                                   optimization_options=options,
                                   **onnx_config.ort_optimizer_args())
        dst.parent.mkdir(parents=True, exist_ok=True)
        optimized.save_model_to_file(str(dst), use_external_data_format=needs_external_data(src))
        fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    return {"model_type": model_type, "opt_level": 1, "attention_op": "MultiHeadAttention",
            "fused": fused}


class _Graph:
    """Producer/consumer indexes over a graph (rebuilt by the caller after big edits)."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers = {i.name: i for i in self.graph.initializer}
        self.outputs = {o.name for o in self.graph.output}

    def only_use(self, tensor: str) -> bool:
        """True when one node, and no graph output, reads ``tensor``."""
        return len(self.consumers.get(tensor, [])) == 1 and tensor not in self.outputs

    def scalar(self, tensor: str) -> float | None:
        """The value of a one-element constant (initializer or Constant node), else None."""
        if tensor in self.initializers:
            value = numpy_helper.to_array(self.initializers[tensor])
        else:
            node = self.producer.get(tensor)
            if node is None or node.op_type != "Constant":
                return None
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is None:
                return None
            value = numpy_helper.to_array(attr.t)
        return float(value.reshape(-1)[0]) if value.size == 1 else None


def _query_projection(g: _Graph, tensor: str) -> tuple[onnx.NodeProto, list[tuple]] | None:
    """Walk the query operand of QKᵀ back through shape-only ops to its projection.

    Returns:
        ``(matmul, [(node, initializer name), ...])``: the initializers to scale (the bias of an
        ``Add``, if any, then the MatMul weight), or None if the pattern does not hold.
    """
    node = g.producer.get(tensor)
    while node is not None and node.op_type in _SHAPE_OPS and g.only_use(tensor):
        tensor = node.input[0]
        node = g.producer.get(tensor)
    if node is None or not g.only_use(tensor):
        return None
    to_scale = []
    if node.op_type == "Add":
        bias = next((i for i in node.input if i in g.initializers), None)
        other = next((i for i in node.input if i != bias), None)
        if bias is None or other is None or not g.only_use(other):
            return None
        to_scale.append((node, bias))
        node = g.producer.get(other)
    if node is None or node.op_type != "MatMul" or node.input[1] not in g.initializers:
        return None
    to_scale.append((node, node.input[1]))
    return node, to_scale


def fold_attention_scale(model: onnx.ModelProto) -> int:
    """Fold ``Softmax(MatMul(q, kᵀ) / c)`` into ``Softmax(MatMul(q / c, kᵀ))``, in place.

    ``q`` must come from ``MatMul(x, W) [+ b]`` through shape-only ops; ``W`` and ``b`` are
    scaled by ``1 / c`` (copied first when another node shares them) and the Div (or Mul by a
    constant) is removed. Exact when ``c`` is a power of two (``sqrt(64)`` for VideoMAE).

    Args:
        model: an fp32 ONNX model with its initializers loaded.

    Returns:
        How many attention blocks were folded.
    """
    g = _Graph(model)
    removed: list[onnx.NodeProto] = []
    folded = 0
    for softmax in [n for n in g.graph.node if n.op_type == "Softmax"]:
        scale_node = g.producer.get(softmax.input[0])
        if scale_node is None or scale_node.op_type not in ("Div", "Mul"):
            continue
        constant = g.scalar(scale_node.input[1])
        if constant in (None, 0.0) or not g.only_use(scale_node.output[0]):
            continue
        factor = 1.0 / constant if scale_node.op_type == "Div" else constant
        scores = g.producer.get(scale_node.input[0])
        if scores is None or scores.op_type != "MatMul" or not g.only_use(scores.output[0]):
            continue
        found = _query_projection(g, scores.input[0])
        if found is None:
            continue
        for node, name in found[1]:
            array = numpy_helper.to_array(g.initializers[name])
            scaled = numpy_helper.from_array((array * np.float32(factor)).astype(array.dtype))
            if len(g.consumers[name]) == 1:
                scaled.name = name
                g.initializers[name].CopyFrom(scaled)
                continue
            # deduplicated initializers (quant_pre_process merges equal tensors): copy
            scaled.name = _unique_name(g, f"{name}/attention_scaled")
            g.graph.initializer.append(scaled)
            g.initializers[scaled.name] = scaled
            node.input[list(node.input).index(name)] = scaled.name
            g.consumers[name].remove(node)
            g.consumers[scaled.name] = [node]
        softmax.input[0] = scores.output[0]
        removed.append(scale_node)
        folded += 1
    for node in removed:
        g.graph.node.remove(node)
    _drop_unused_initializers(model)
    return folded


def _unique_name(g: _Graph, base: str) -> str:
    name, k = base, 0
    while name in g.initializers or name in g.producer:
        k += 1
        name = f"{base}_{k}"
    return name


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used.update(o.name for o in model.graph.output)
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def attention_matmuls(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """The MatMuls whose operands are both activations, by role.

    Returns:
        ``{"scores": [...], "context": [...], "other": [...]}``: ``scores`` feed a Softmax (QKᵀ,
        possibly through a scaling op), ``context`` read one (probabilities × V).
    """
    g = _Graph(model)
    roles: dict[str, list[onnx.NodeProto]] = {"scores": [], "context": [], "other": []}
    for node in g.graph.node:
        if node.op_type != "MatMul" or any(i in g.initializers for i in node.input):
            continue
        if any(g.scalar(i) is not None for i in node.input):
            continue  # a Constant-node operand is a weight too
        after = [c for c in g.consumers.get(node.output[0], [])]
        if len(after) == 1 and after[0].op_type in ("Div", "Mul"):
            after = g.consumers.get(after[0].output[0], [])
        source = g.producer.get(node.input[0])
        if any(c.op_type == "Softmax" for c in after):
            roles["scores"].append(node)
        elif source is not None and source.op_type == "Softmax":
            roles["context"].append(node)
        else:
            roles["other"].append(node)
    return roles


def save_ort_optimized(src: Path, dst: Path, disabled: Iterable[str] = (),
                       level: str = "extended") -> dict[str, Any]:
    """Run ONNX Runtime's graph optimizations on ``src`` (CPU) and save the result as ``dst``.

    ``extended`` is the highest level whose output ORT calls hardware-independent (the layout
    transforms of ``all`` are tied to the machine); the runtime applies those at load time.

    Args:
        src: an ONNX model.
        dst: where the optimized model goes (tensors over 2 GiB in total go to a side file).
        disabled: names of ORT graph transformers to skip (e.g. ``QDQS8ToU8Transformer``).
        level: ``basic`` or ``extended``.

    Returns:
        ``{"level", "disabled"}`` for the manifest.
    """
    import onnxruntime as ort

    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    if needs_external_data(src):
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                         dst.name + "_data")
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    dst.parent.mkdir(parents=True, exist_ok=True)
    ort.InferenceSession(os.fspath(src), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=set(disabled))
    return {"level": level, "disabled": sorted(disabled)}
