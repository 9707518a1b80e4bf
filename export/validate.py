"""Parity checks: the exported graphs against the PyTorch model they came from.

fp32 must match PyTorch to `FP32_ATOL` on batch 1 and batch 2 (the batch axis is dynamic, so
both sizes are checked). int8 and fp16 cannot match to that bar; they report how close they are
(cosine of the logit vectors, top-1 agreement, max |Δlogit|) against the fp32 PyTorch logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

#: largest |Δlogit| accepted between the fp32 ONNX graph and PyTorch
FP32_ATOL = 1e-4


@dataclass
class Reference:
    """Seeded inputs and the PyTorch logits for them."""

    input_name: str
    inputs: dict[str, np.ndarray]  #: "batch1" -> (1, T, C, H, W), "batch2" -> (2, T, C, H, W)
    logits: dict[str, np.ndarray]  #: same keys -> (batch, num_labels)


def torch_reference(model, clip_shape: tuple[int, ...], input_name: str = "pixel_values",
                    seed: int = 0) -> Reference:
    """Run the PyTorch model on three seeded clips, split into a batch of 1 and a batch of 2.

    Args:
        model: the torch video classifier (eval mode).
        clip_shape: (num_frames, channels, height, width) of one clip.
        input_name: the model's input (and ONNX graph input) name.
        seed: seed of the standard-normal inputs (normalised pixels are roughly N(0, 1)).

    Returns:
        The inputs and logits.
    """
    import torch

    rng = np.random.default_rng(seed)
    clips = rng.standard_normal((3, *clip_shape)).astype(np.float32)
    inputs = {"batch1": clips[:1], "batch2": clips[1:]}
    logits = {}
    with torch.no_grad():
        for key, value in inputs.items():
            out = model(**{input_name: torch.from_numpy(value)})
            logits[key] = out.logits.float().numpy()
    return Reference(input_name, inputs, logits)


def clips_reference(model, clips: list[np.ndarray], input_name: str = "pixel_values") -> Reference:
    """PyTorch logits for given (1, T, C, H, W) clips, e.g. real calibration clips.

    Args:
        model: the torch video classifier (eval mode).
        clips: preprocessed clips, each with a batch axis of 1.
        input_name: the model's input name.

    Returns:
        A `Reference` keyed ``clip0``, ``clip1``, ...
    """
    import torch

    inputs = {f"clip{i}": np.asarray(c, dtype=np.float32) for i, c in enumerate(clips)}
    with torch.no_grad():
        logits = {k: model(**{input_name: torch.from_numpy(v)}).logits.float().numpy()
                  for k, v in inputs.items()}
    return Reference(input_name, inputs, logits)


def onnx_logits(path: str | Path, ref: Reference,
                providers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run an ONNX model on the reference inputs (CPU unless ``providers`` says otherwise)."""
    session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
    return {key: session.run(None, {ref.input_name: value})[0].astype(np.float32)
            for key, value in ref.inputs.items()}


def fp32_figures(path: str | Path, ref: Reference) -> dict[str, Any]:
    """``{"max_abs_diff": {"batch1": .., "batch2": ..}}`` of the ONNX graph vs PyTorch."""
    got = onnx_logits(path, ref)
    return {"max_abs_diff": {key: float(np.max(np.abs(got[key] - ref.logits[key])))
                             for key in ref.inputs}}


def fp32_worst(figures: dict[str, Any]) -> float:
    """The largest |Δlogit| over the batches in `fp32_figures`' result."""
    return max(figures["max_abs_diff"].values())


def variant_figures(path: str | Path, ref: Reference) -> dict[str, Any]:
    """Closeness of a reduced-precision graph to the fp32 PyTorch logits, over all ref clips.

    Returns:
        ``cosine`` (lowest per-clip cosine similarity), ``top1_agreement`` (fraction of clips
        with the same arg-max), ``max_abs_diff``, ``clips``.
    """
    got = onnx_logits(path, ref)
    a = np.concatenate([ref.logits[k] for k in ref.inputs]).astype(np.float64)
    b = np.concatenate([got[k] for k in ref.inputs]).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.sum(a * b, axis=1) / np.maximum(norms, 1e-30)
    return {"cosine": float(cosine.min()),
            "top1_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
            "max_abs_diff": float(np.max(np.abs(a - b))), "clips": int(len(a))}


def format_table(validation: dict[str, dict[str, Any]], variants: dict[str, str]) -> str:
    """A plain-text table of the validation figures, one row per variant."""
    rows = [("variant", "file", "max|Δlogit|", "cosine", "top-1", "status")]
    for name, figures in validation.items():
        diff = figures.get("max_abs_diff")
        if isinstance(diff, dict):
            shown = " ".join(f"{k.replace('batch', 'b')}={v:.2e}" for k, v in diff.items())
        else:
            shown = "-" if diff is None else f"{diff:.2e}"
        cosine = f"{figures['cosine']:.6f}" if "cosine" in figures else "-"
        top1 = f"{figures['top1_agreement']:.0%}" if "top1_agreement" in figures else "-"
        status = figures.get("status")
        if status is None:
            status = "ok" if not isinstance(diff, dict) or fp32_worst(figures) <= FP32_ATOL \
                else f"FAILED (> {FP32_ATOL:g})"
        rows.append((name, variants.get(name, "-"), shown, cosine, top1, status))
        real = figures.get("calibration_clips")
        if real:
            rows.append((f"{name} (real clips)", variants.get(name, "-"),
                         f"{real['max_abs_diff']:.2e}", f"{real['cosine']:.6f}",
                         f"{real['top1_agreement']:.0%}", "ok"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines)
