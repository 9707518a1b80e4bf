"""The PyTorch side of the GPU check: transformers VideoMAE on the same device, fp32 and fp16
(SDPA attention), timed like `vidsort bench` times ONNX Runtime, and logits for parity."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from vidsort.bench.measure import percentiles, time_calls


def load(hf_dir: str, device: str, dtype: str):
    """transformers VideoMAEForVideoClassification on ``device`` in ``dtype`` (fp32 | fp16),
    SDPA attention; returns (model, load seconds)."""
    import torch
    from transformers import VideoMAEForVideoClassification

    started = time.perf_counter()
    model = VideoMAEForVideoClassification.from_pretrained(hf_dir, attn_implementation="sdpa")
    model = model.to(device=device, dtype=torch.float16 if dtype == "fp16" else torch.float32)
    return model.eval(), time.perf_counter() - started


def forward(model, batch: np.ndarray) -> np.ndarray:
    """Logits (float32, on the host) for a float32 host batch: the copy in, the model, the copy
    out, as a user's call would do."""
    import torch

    param = next(model.parameters())
    with torch.inference_mode():
        pixel = torch.from_numpy(batch).to(device=param.device, dtype=param.dtype)
        return model(pixel_values=pixel).logits.float().cpu().numpy()


def measure(hf_dir: str, device: str, dtype: str, batches: list[int], clip: tuple[int, ...],
            seconds: float, min_calls: int, warmup: int) -> list[dict[str, Any]]:
    """Rows like `vidsort bench`'s model-only records (``implementation`` "pytorch").

    A combination that cannot run (fp16 kernels missing on CPU, out of memory) is a row with
    the reason.
    """
    import torch

    rows: list[dict[str, Any]] = []
    base = {"implementation": "pytorch", "provider": device, "precision": dtype,
            "attention": "sdpa"}
    try:
        model, load_s = load(hf_dir, device, dtype)
    except Exception as exc:  # report and go on: the other rows still tell something
        return [{**base, "batch": b, "status": "failed", "reason": f"{type(exc).__name__}: "
                 f"{str(exc).splitlines()[0][:300]}"} for b in batches]
    cuda = device.startswith("cuda")
    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.standard_normal((batch, *clip), dtype=np.float32)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            def call(x=x, m=model):
                forward(m, x)  # .cpu() in forward synchronises the device

            durations = time_calls(call, seconds, min_calls, warmup)
        except Exception as exc:  # e.g. CUDA out of memory at batch 32: this row only
            rows.append({**base, "batch": batch, "status": "failed",
                         "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"})
            continue
        rows.append({**base, "batch": batch, "status": "ok", "load_s": round(load_s, 3),
                     "calls": len(durations), "latency_ms": percentiles(durations),
                     "throughput": round(batch * len(durations) / sum(durations), 3),
                     "peak_device_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
                     if cuda else None})
    del model
    if cuda:
        torch.cuda.empty_cache()
    return rows


def closeness(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Lowest per-clip cosine, top-1 agreement and max |Δ| of ``other``'s logits vs
    ``reference``'s (NaN/inf count too)."""
    a, b = reference.astype(np.float64), other.astype(np.float64)
    finite = np.isfinite(b).all(axis=1)
    b = np.where(np.isfinite(b), b, 0.0)
    cosine = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1)
                                                * np.linalg.norm(b, axis=1), 1e-30)
    cosine = np.where(finite, cosine, -1.0)
    return {"cosine_min": round(float(cosine.min()), 6),
            "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
            "max_abs_diff": round(float(np.max(np.abs(a - b))), 6),
            "nonfinite": int((~finite).sum()), "clips": int(len(a))}
