"""ONNX Runtime sessions: execution provider and precision choice, thread, GPU and TensorRT
settings."""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from vidsort.errors import ModelDirError, ProviderUnavailableError, first_line
from vidsort.options import PRECISION_CHOICES
from vidsort.providers import PROVIDER_CHOICES, PROVIDER_TABLE, PROVIDERS_BY_NAME, by_ort_name

PROVIDERS = PROVIDER_CHOICES
PRECISIONS = PRECISION_CHOICES


def available_providers() -> list[str]:
    """Short names of the execution providers this onnxruntime build offers and whose libraries
    load, best first."""
    have = set(ort.get_available_providers())
    return [p.name for p in PROVIDER_TABLE if p.ort_name in have and not missing_libraries(p.name)]


def provider_chain(provider: str) -> list[str]:
    """ORT provider names to request for ``provider`` (auto = every available one, best first).

    Raises ProviderUnavailableError when an explicitly requested provider is not in this build
    or its libraries are missing (`unavailable_reason`).
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    have = available_providers()
    if provider == "auto":
        return [PROVIDERS_BY_NAME[p].ort_name for p in have]
    row = PROVIDERS_BY_NAME[provider]
    reason = unavailable_reason(provider)
    if reason is not None:
        raise ProviderUnavailableError(reason)
    return [row.ort_name] + [PROVIDERS_BY_NAME[f].ort_name for f in row.fallbacks if f in have]


def unavailable_reason(provider: str) -> str | None:
    """Why ``provider`` (a short name) cannot start here, or None when it may.

    Covers what can be known without a session: not in this onnxruntime build, or a library it
    loads is missing. A GPU that is absent shows only when a session starts (`create_session`).
    """
    row = PROVIDERS_BY_NAME[provider]
    hint = f" ({row.install_hint})" if row.install_hint else ""
    in_build = [p.name for p in PROVIDER_TABLE if p.ort_name in set(ort.get_available_providers())]
    if provider not in in_build:
        return (f"execution provider {provider!r} is not available in this onnxruntime build "
                f"(available: {', '.join(in_build)}){hint}")
    missing = missing_libraries(provider)
    if missing:
        return (f"execution provider {provider!r} is in this onnxruntime build but its libraries "
                f"cannot be loaded: {', '.join(missing)}{hint}")
    return None


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
#: cuDNN convolution algorithm search (CUDA): EXHAUSTIVE tries every algorithm on the first call
#: of each shape (ONNX Runtime's default), HEURISTIC asks cuDNN's heuristics, DEFAULT takes the
#: first algorithm
CONV_ALGO_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
#: how the CUDA memory arena grows
ARENA_EXTEND = ("kNextPowerOfTwo", "kSameAsRequested")


@dataclass
class SessionSettings:
    """Knobs for `create_session` (and `VideoClassifier`'s ``session_settings``).

    ``threads=0`` lets ORT use every physical core. ``spinning`` is off by default: spinning
    worker threads busy-wait between operators, which on a machine with few cores takes CPU time
    from the decoder thread that `VideoClassifier.classify_many` runs beside inference and from
    other processes (measured in benchmarks/results/cpu_speed.md). ``graph_optimization`` and
    ``disabled_optimizers`` select ORT's load-time graph optimizations (``all`` includes the
    machine-specific layout transforms; names as ORT's transformers are called).

    GPU (CUDA; defaults in `vidsort.providers.PROVIDER_TABLE`, None = the table's):

    - ``io_binding``: run through an IO binding — the input goes to the device once per call from
      pinned host memory, the output is bound on the device (`vidsort.iobinding`). None = on for
      GPU providers, off on CPU (where it saves nothing; it works there, and tests use it).
    - ``cuda_graph``: capture the model as a CUDA graph on the first call and replay it (saves
      the kernel launches; needs ``io_binding`` and a fixed batch: calls are padded to the
      batch of the first call, larger ones run in chunks of it).
    - ``cudnn_conv_algo_search``: one of `CONV_ALGO_SEARCH`.
    - ``arena_extend_strategy``: one of `ARENA_EXTEND`; ``gpu_mem_limit_mb``: cap of the arena.

    TensorRT (untested here: no machine has its libraries):

    - ``trt_fp16``: let TensorRT pick fp16 kernels (for an fp32 model file).
    - ``trt_cache_dir``: engine and timing cache directory (building an engine takes minutes).
    - ``trt_batch``: the optimisation profile's (min, opt, max) batch; the clip shape is fixed.

    ``provider_options``: raw ONNX Runtime options per provider short name, applied last.
    """

    threads: int = 0
    spinning: bool = False
    arena: bool = True
    optimized_model_path: str | None = None
    device_id: int = 0
    graph_optimization: str = "all"
    disabled_optimizers: tuple[str, ...] = ()
    io_binding: bool | None = None
    cuda_graph: bool = False
    cudnn_conv_algo_search: str | None = None
    arena_extend_strategy: str | None = None
    gpu_mem_limit_mb: int | None = None
    trt_fp16: bool | None = None
    trt_cache_dir: str | None = None
    trt_batch: tuple[int, int, int] = (1, 8, 32)
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError for a setting outside its choices."""
        if self.graph_optimization not in GRAPH_OPTIMIZATION:
            raise ValueError(f"unknown graph_optimization {self.graph_optimization!r}; choose one "
                             f"of {', '.join(GRAPH_OPTIMIZATION)}")
        if self.cudnn_conv_algo_search not in (None, *CONV_ALGO_SEARCH):
            raise ValueError(f"unknown cudnn_conv_algo_search {self.cudnn_conv_algo_search!r}; "
                             f"choose one of {', '.join(CONV_ALGO_SEARCH)}")
        if self.arena_extend_strategy not in (None, *ARENA_EXTEND):
            raise ValueError(f"unknown arena_extend_strategy {self.arena_extend_strategy!r}; "
                             f"choose one of {', '.join(ARENA_EXTEND)}")
        low, opt, high = self.trt_batch
        if not 1 <= low <= opt <= high:
            raise ValueError(f"trt_batch must be (min, opt, max) with 1 <= min <= opt <= max, "
                             f"got {self.trt_batch}")
        if self.cuda_graph and self.io_binding is False:
            raise ValueError("cuda_graph needs io_binding (leave it None or True)")

    def uses_binding(self, provider: str) -> bool:
        """Whether sessions on ``provider`` (a short name) run through an IO binding."""
        if self.io_binding is not None:
            return self.io_binding
        return self.cuda_graph or _is_gpu(provider)


def _option_text(value: Any) -> str:
    # ONNX Runtime parses provider options from strings; "1"/"0" are its canonical booleans
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def provider_options(name: str, settings: SessionSettings,
                     input_spec: tuple[str, tuple[int, ...]] | None = None) -> dict[str, str]:
    """The ONNX Runtime options for one provider: table defaults, then ``settings``.

    Args:
        name: the provider's short name.
        settings: the session settings.
        input_spec: ``(input name, shape of one clip)`` — TensorRT's batch profile needs it.

    Returns:
        Option name -> string value.
    """
    row = PROVIDERS_BY_NAME[name]
    options: dict[str, Any] = dict(row.default_options)
    if row.gpu:
        options["device_id"] = settings.device_id
    if name == "cuda":
        chosen = {"cudnn_conv_algo_search": settings.cudnn_conv_algo_search,
                  "arena_extend_strategy": settings.arena_extend_strategy,
                  "enable_cuda_graph": settings.cuda_graph or None,
                  "gpu_mem_limit": settings.gpu_mem_limit_mb and settings.gpu_mem_limit_mb << 20}
        options.update({k: v for k, v in chosen.items() if v is not None})
    elif name == "tensorrt":
        if settings.trt_fp16 is not None:
            options["trt_fp16_enable"] = settings.trt_fp16
        if settings.trt_cache_dir is not None:
            options["trt_engine_cache_path"] = settings.trt_cache_dir
            options["trt_timing_cache_path"] = settings.trt_cache_dir
        for key in ("trt_engine_cache_path", "trt_timing_cache_path"):
            if key in options:
                options[key] = os.path.expanduser(str(options[key]))
        if input_spec is not None:
            input_name, clip = input_spec
            dims = "x".join(str(int(d)) for d in clip)
            for key, batch in zip(("min", "opt", "max"), settings.trt_batch, strict=True):
                options[f"trt_profile_{key}_shapes"] = f"{input_name}:{batch}x{dims}"
    options.update(settings.provider_options.get(name, {}))
    return {k: _option_text(v) for k, v in options.items()}


def missing_libraries(name: str) -> list[str]:
    """The shared libraries a provider needs that this process cannot load."""
    return [lib for lib in PROVIDERS_BY_NAME[name].libraries if not _loads(lib)]


@functools.cache
def _loads(library: str) -> bool:
    # the loader's search path is fixed when the process starts: one answer per library
    import ctypes

    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def create_session(model_path: str | os.PathLike, provider: str = "auto",
                   settings: SessionSettings | None = None,
                   input_spec: tuple[str, tuple[int, ...]] | None = None) -> ort.InferenceSession:
    """Open an ONNX Runtime session for ``model_path``.

    Args:
        model_path: the .onnx file.
        provider: auto | cpu | cuda | tensorrt.
        settings: threads, spinning, memory arena, GPU and TensorRT options (`SessionSettings`).
        input_spec: ``(input name, shape of one clip)``, for TensorRT's batch profile.

    Returns:
        The session. Raises ModelDirError for a missing or corrupt model, and
        ProviderUnavailableError when the requested provider cannot run it.
    """
    settings = settings or SessionSettings()
    path = Path(model_path)
    if not path.is_file():
        raise ModelDirError(f"{path}: missing")
    settings.check()
    chain = provider_chain(provider)
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
    names = [by_ort_name(o) for o in chain]
    provider_opts = [provider_options(r.name, settings, input_spec) if r else {} for r in names]
    # ORT's Python wrapper print()s an "EP Error" banner and retries on the next provider when one
    # fails to start; keep that off stdout (it may carry JSON) and report it as one line below.
    banner = io.StringIO()
    try:
        with contextlib.redirect_stdout(banner):
            session = ort.InferenceSession(str(path), sess_options=options, providers=chain,
                                           provider_options=provider_opts,
                                           disabled_optimizers=set(settings.disabled_optimizers))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/RuntimeException types
        message = first_line(exc)
        if _is_gpu(provider) and ("CUDA" in message or "cuda" in message):
            raise ProviderUnavailableError(
                f"{path}: {provider} could not start: {message}") from None
        raise ModelDirError(f"{path}: ONNX Runtime cannot load it: {message}") from None
    if _is_gpu(provider) and chain[0] not in session.get_providers():
        # onnxruntime-gpu lists CUDA even without a GPU, then falls back to CPU.
        why = next((line.strip() for line in banner.getvalue().splitlines()
                    if "EP Error" in line), "")
        raise ProviderUnavailableError(
            f"{provider} was requested but ONNX Runtime could not use it (no GPU, driver or "
            f"CUDA libraries?); the session would have run on {session.get_providers()[0]}"
            + (f" ({why[:300]})" if why else ""))
    return session


def session_provider(session: ort.InferenceSession) -> str:
    """Short name of the provider that runs most of the session (its first)."""
    first = session.get_providers()[0]
    row = by_ort_name(first)
    return row.name if row else first


def input_dtype(session: ort.InferenceSession) -> np.dtype:
    """NumPy dtype the session's first input wants (fp16 exports may keep fp16 inputs)."""
    return np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
