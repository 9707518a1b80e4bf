"""The execution providers vidsort knows: one table that session creation, precision choice and
the CLI all read. Adding a provider is one row.

Pure data (no onnxruntime import), so ``vidsort --help`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provider:
    """One execution provider.

    Attributes:
        name: the short name users type (``--provider``).
        ort_name: ONNX Runtime's name for it.
        gpu: runs on a GPU (takes a ``device_id``; precision ``auto`` prefers fp16 there).
        default_options: provider options passed to ONNX Runtime unless the caller sets them
            (`vidsort.session.SessionSettings` documents each one).
        fallbacks: short names of the providers requested after it, for the nodes it cannot
            run (CPU last, so every node has a home).
        install_hint: what to install when it is missing.
        libraries: shared libraries the provider loads at session start; checked first, so a
            missing one is a clear `ProviderUnavailableError` instead of ONNX Runtime's silent
            fall-back to the next provider.
    """

    name: str
    ort_name: str
    gpu: bool
    default_options: dict[str, Any] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    install_hint: str = ""
    libraries: tuple[str, ...] = ()


#: best first: ``auto`` requests every available one in this order.
#: CUDA defaults are ONNX Runtime's own, written out so that sessions and benchmark records show
#: them; they stay until the GPU machine's measurements (benchmarks/gpu) say otherwise.
#: TensorRT caches its engines and timing data (building a VideoMAE-Base engine takes minutes);
#: ``~`` is expanded when the session starts. TensorRT is untested: no machine here has it.
PROVIDER_TABLE: tuple[Provider, ...] = (
    Provider("tensorrt", "TensorrtExecutionProvider", gpu=True, fallbacks=("cuda", "cpu"),
             default_options={"trt_fp16_enable": False,
                              "trt_engine_cache_enable": True,
                              "trt_engine_cache_path": "~/.cache/vidsort/tensorrt",
                              "trt_timing_cache_enable": True,
                              "trt_timing_cache_path": "~/.cache/vidsort/tensorrt"},
             install_hint="install onnxruntime-gpu and TensorRT 10 (libnvinfer), and put its "
                          "libraries on LD_LIBRARY_PATH; or use --provider cuda",
             libraries=("libnvinfer.so.10", "libnvinfer_plugin.so.10",
                        "libnvonnxparser.so.10")),
    Provider("cuda", "CUDAExecutionProvider", gpu=True, fallbacks=("cpu",),
             default_options={"cudnn_conv_algo_search": "EXHAUSTIVE",
                              "arena_extend_strategy": "kNextPowerOfTwo",
                              "do_copy_in_default_stream": True,
                              "enable_cuda_graph": False},
             install_hint="install onnxruntime-gpu and check CUDA/cuDNN"),
    Provider("cpu", "CPUExecutionProvider", gpu=False),
)
PROVIDERS_BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDER_TABLE}
#: what ``--provider`` accepts
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *PROVIDERS_BY_NAME)


def by_ort_name(ort_name: str) -> Provider | None:
    """The table row for an ONNX Runtime provider name (None for one vidsort does not know)."""
    return next((p for p in PROVIDER_TABLE if p.ort_name == ort_name), None)
