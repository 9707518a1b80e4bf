"""ONNX Runtime's transformer optimizer on the fp32 graph (attention, LayerNorm, GELU fusions).

Only fusions that run on every execution provider are applied (``opt_level=1``: no CPU- or
CUDA-specific layouts), so one optimized model.onnx serves CPU and GPU alike. The caller keeps
the result only if it still matches PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidsort.export.onnx_config import VideoOnnxConfig
from vidsort.export.quantize import needs_external_data, quiet_logging


def optimize_graph(src: Path, dst: Path, onnx_config: VideoOnnxConfig) -> dict[str, Any]:
    """Fuse ``src`` into ``dst``.

    Args:
        src: the exported fp32 graph.
        dst: where the optimized graph goes.
        onnx_config: the architecture's ONNX config (optimizer model type and attention geometry).

    Returns:
        ``{"model_type", "opt_level", "fused": {op: count}}``. Raises ValueError when the
        architecture declares no optimizer model type.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = onnx_config.ORT_OPTIMIZER_MODEL_TYPE
    if model_type is None:
        raise ValueError(f"no onnxruntime optimizer model type for {type(onnx_config).__name__}")
    with quiet_logging():
        optimized = optimize_model(str(src), model_type=model_type, opt_level=1, use_gpu=False,
                                   **onnx_config.ort_optimizer_args())
        dst.parent.mkdir(parents=True, exist_ok=True)
        optimized.save_model_to_file(str(dst), use_external_data_format=needs_external_data(src))
        fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    return {"model_type": model_type, "opt_level": 1, "fused": fused}
