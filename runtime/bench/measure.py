"""Timing and memory, as `vidsort bench` measures them.

- `time_calls`: warm-up calls (not timed), then timed calls until ``seconds`` have passed and at
  least ``min_calls`` were made; `percentiles` in milliseconds (linear interpolation).
- `clip_stages`: one clip end to end — the calls `VideoClassifier.__call__` makes (prepare_clip →
  predict_logits → top_k_predictions), timed apart: decode, preprocess, inference, postprocess,
  and one span around all four.
- Peak host RSS: the kernel's high-water mark (``VmHWM``), reset before each cell by writing 5 to
  ``/proc/self/clear_refs`` so a figure is that cell's; where the reset is refused the figure is
  the process's peak so far (``rss_scope`` says which). Not ``ru_maxrss`` alone: Linux carries a
  parent's RSS across fork + exec.
- Device memory: the CUDA memory this process holds after the cell — per process from
  ``nvidia-smi``, else the device-wide used memory minus its value before the session started
  (``cudaMemGetInfo``). ONNX Runtime's arena does not shrink during a session, so the figure after
  a cell is the session's high-water mark so far.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def time_calls(fn: Callable[[], Any], seconds: float, min_calls: int = 5,
               warmup: int = 2) -> list[float]:
    """Durations (s) of timed calls of ``fn`` after ``warmup`` untimed ones.

    Args:
        fn: the call to time.
        seconds: keep calling until this much time went into timed calls...
        min_calls: ...and at least this many were made.
        warmup: untimed calls first (lazy allocation, cuDNN algorithm search, CUDA graph capture).

    Returns:
        One duration per timed call.
    """
    for _ in range(warmup):
        fn()
    durations: list[float] = []
    spent = 0.0
    while spent < seconds or len(durations) < min_calls:
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
        spent += durations[-1]
    return durations


def percentiles(seconds: list[float]) -> dict[str, float]:
    """``{"p50", "p90", "p99", "mean", "min", "max"}`` in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    out = {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)}
    out.update(mean=float(ms.mean()), min=float(ms.min()), max=float(ms.max()))
    return {k: round(v, 3) for k, v in out.items()}


def clip_stages(clf, video) -> dict[str, Any]:
    """One clip through ``clf`` (a `VideoClassifier`), stage by stage.

    Returns:
        ``{"decode_s", "preprocess_s", "inference_s", "postprocess_s", "e2e_s", "predictions",
        "frames", "backend"}``; the decode/preprocess split is `prepare_clip`'s own timing.
    """
    from vidsort.pipeline import prepare_clip
    from vidsort.postprocess import top_k_predictions

    t0 = time.perf_counter()
    prepared = prepare_clip(video, clf.spec)
    t2 = time.perf_counter()
    logits = clf.predict_logits(prepared.pixel_values)
    t3 = time.perf_counter()
    predictions = top_k_predictions(logits.mean(axis=0), clf.labels, 5, clf.function)
    t4 = time.perf_counter()
    decode = min(prepared.info.get("timings", {}).get("decode_s", 0.0), t2 - t0)
    return {"decode_s": decode, "preprocess_s": t2 - t0 - decode, "inference_s": t3 - t2,
            "postprocess_s": t4 - t3, "e2e_s": t4 - t0, "predictions": predictions,
            "frames": prepared.info.get("frames", []), "backend": prepared.info.get("backend")}


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


class DeviceMemory:
    """CUDA memory held by this process (see the module docstring); None off GPUs."""

    def __init__(self, device_id: int = 0):
        self.device_id = device_id
        self._smi = shutil.which("nvidia-smi")
        self._cudart = None
        for name in ("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
            try:
                self._cudart = ctypes.CDLL(name)
                break
            except OSError:
                continue
        self.baseline = self._used_device_wide()

    def _used_device_wide(self) -> int | None:
        if self._cudart is None:
            return None
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._cudart.cudaSetDevice(self.device_id)
        if self._cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) != 0:
            return None
        return total.value - free.value

    def _per_process(self) -> float | None:
        if self._smi is None:
            return None
        try:
            proc = subprocess.run([self._smi, "--query-compute-apps=pid,used_memory",
                                   "--format=csv,noheader,nounits"], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        mine = [line.split(",") for line in proc.stdout.splitlines()
                if line.split(",")[0].strip() == str(os.getpid())]
        return float(sum(float(m[1]) for m in mine)) if mine else None

    def held_mib(self) -> tuple[float | None, str | None]:
        """``(MiB, method)``: per-process from nvidia-smi, else the device-wide delta."""
        per_process = self._per_process()
        if per_process is not None:
            return per_process, "nvidia-smi per process"
        used = self._used_device_wide()
        if used is not None and self.baseline is not None:
            return round((used - self.baseline) / 2**20, 1), "cudaMemGetInfo delta"
        return None, None
