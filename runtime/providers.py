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
        default_options: provider options passed to ONNX Runtime unless the caller sets them.
        fallbacks: short names of the providers requested after it, for the nodes it cannot
            run (CPU last, so every node has a home).
        install_hint: what to install when it is missing.
    """

    name: str
    ort_name: str
    gpu: bool
    default_options: dict[str, Any] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    install_hint: str = ""


#: best first: ``auto`` requests every available one in this order
PROVIDER_TABLE: tuple[Provider, ...] = (
    Provider("tensorrt", "TensorrtExecutionProvider", gpu=True, fallbacks=("cuda", "cpu"),
             install_hint="install onnxruntime-gpu with TensorRT and check its libraries"),
    Provider("cuda", "CUDAExecutionProvider", gpu=True, fallbacks=("cpu",),
             install_hint="install onnxruntime-gpu and check CUDA/cuDNN"),
    Provider("cpu", "CPUExecutionProvider", gpu=False),
)
PROVIDERS_BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDER_TABLE}
#: what ``--provider`` accepts
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *PROVIDERS_BY_NAME)


def by_ort_name(ort_name: str) -> Provider | None:
    """The table row for an ONNX Runtime provider name (None for one vidsort does not know)."""
    return next((p for p in PROVIDER_TABLE if p.ort_name == ort_name), None)
