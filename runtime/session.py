"""ONNX Runtime sessions: execution provider and precision choice, thread settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from vidsort.errors import ModelDirError, ProviderUnavailableError, first_line
from vidsort.options import PRECISION_CHOICES
from vidsort.providers import PROVIDER_CHOICES, PROVIDER_TABLE, PROVIDERS_BY_NAME, by_ort_name

PROVIDERS = PROVIDER_CHOICES
PRECISIONS = PRECISION_CHOICES


def available_providers() -> list[str]:
    """Short names of the execution providers this onnxruntime build offers, best first."""
    have = set(ort.get_available_providers())
    return [p.name for p in PROVIDER_TABLE if p.ort_name in have]


def provider_chain(provider: str) -> list[str]:
    """ORT provider names to request for ``provider`` (auto = every available one, best first).

    Raises ProviderUnavailableError when an explicitly requested provider is not in this build.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    have = available_providers()
    if provider == "auto":
        return [PROVIDERS_BY_NAME[p].ort_name for p in have]
    row = PROVIDERS_BY_NAME[provider]
    if provider not in have:
        hint = f" ({row.install_hint})" if row.install_hint else ""
        raise ProviderUnavailableError(
            f"execution provider {provider!r} is not available in this onnxruntime build "
            f"(available: {', '.join(have)}){hint}")
    return [row.ort_name] + [PROVIDERS_BY_NAME[f].ort_name for f in row.fallbacks if f in have]


def _is_gpu(provider: str) -> bool:
    row = PROVIDERS_BY_NAME.get(provider)
    return row is not None and row.gpu


def resolve_precision(precision: str, provider: str, variants: dict[str, str]) -> str:
    """Pick the model variant: auto = int8 on CPU if present, fp16 on GPU if present, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    on_gpu = _is_gpu(provider) or (
        provider == "auto" and any(_is_gpu(p) for p in available_providers()))
    if on_gpu and "fp16" in variants:
        return "fp16"
    if not on_gpu and "int8" in variants:
        return "int8"
    return "fp32"


GRAPH_OPTIMIZATION = ("all", "extended", "basic", "disabled")


@dataclass
class SessionSettings:
    """Knobs for `create_session`.

    ``threads=0`` lets ORT use every physical core. ``spinning`` is off by default: spinning
    worker threads busy-wait between operators, which on a machine with few cores takes CPU time
    from the decoder thread that `VideoClassifier.classify_many` runs beside inference and from
    other processes (measured in benchmarks/results/cpu_speed.md). ``graph_optimization`` and
    ``disabled_optimizers`` select ORT's load-time graph optimizations (``all`` includes the
    machine-specific layout transforms; names as ORT's transformers are called).
    """

    threads: int = 0
    spinning: bool = False
    arena: bool = True
    optimized_model_path: str | None = None
    device_id: int = 0
    graph_optimization: str = "all"
    disabled_optimizers: tuple[str, ...] = ()


def create_session(model_path: str | os.PathLike, provider: str = "auto",
                   settings: SessionSettings | None = None) -> ort.InferenceSession:
    """Open an ONNX Runtime session for ``model_path``.

    Args:
        model_path: the .onnx file.
        provider: auto | cpu | cuda | tensorrt.
        settings: threads, spinning, memory arena, where to save the optimized graph.

    Returns:
        The session. Raises ModelDirError for a missing or corrupt model, and
        ProviderUnavailableError when the requested provider cannot run it.
    """
    settings = settings or SessionSettings()
    path = Path(model_path)
    if not path.is_file():
        raise ModelDirError(f"{path}: missing")
    chain = provider_chain(provider)
    if settings.graph_optimization not in GRAPH_OPTIMIZATION:
        raise ValueError(f"unknown graph_optimization {settings.graph_optimization!r}; choose one "
                         f"of {', '.join(GRAPH_OPTIMIZATION)}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[settings.graph_optimization]
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = settings.arena
    options.log_severity_level = 3  # errors only: ORT's warnings are not for end users
    # Spinning threads burn the cores that a concurrent decoder (or another process) wants.
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if settings.spinning else "0")
    if settings.optimized_model_path:
        options.optimized_model_filepath = settings.optimized_model_path
    provider_options = []
    for name in chain:
        row = by_ort_name(name)
        options_for = dict(row.default_options) if row else {}
        if row is not None and row.gpu:
            options_for["device_id"] = settings.device_id
        provider_options.append(options_for)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=chain,
                                       provider_options=provider_options,
                                       disabled_optimizers=set(settings.disabled_optimizers))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/RuntimeException types
        message = first_line(exc)
        if _is_gpu(provider) and ("CUDA" in message or "cuda" in message):
            raise ProviderUnavailableError(
                f"{path}: {provider} could not start: {message}") from None
        raise ModelDirError(f"{path}: ONNX Runtime cannot load it: {message}") from None
    if _is_gpu(provider) and chain[0] not in session.get_providers():
        # onnxruntime-gpu lists CUDA even without a GPU, then quietly falls back to CPU.
        raise ProviderUnavailableError(
            f"{provider} was requested but ONNX Runtime could not use it (no GPU, driver or "
            f"CUDA libraries?); the session would have run on {session.get_providers()[0]}")
    return session


def session_provider(session: ort.InferenceSession) -> str:
    """Short name of the provider that runs most of the session (its first)."""
    first = session.get_providers()[0]
    row = by_ort_name(first)
    return row.name if row else first


def input_dtype(session: ort.InferenceSession) -> np.dtype:
    """NumPy dtype the session's first input wants (fp16 exports may keep fp16 inputs)."""
    return np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
