"""Logits → ranked ``[{"label", "score"}]``, the transformers pipeline's output format."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vidsort.options import FUNCTIONS


def apply_function(logits: np.ndarray, function: str = "softmax") -> np.ndarray:
    """Scores from logits along the last axis: softmax, sigmoid or none (the logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    if function == "softmax":
        shifted = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=-1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if function == "none":
        return logits
    raise ValueError(f"unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}")


def default_function(problem_type: str | None) -> str:
    """Sigmoid for multi-label models, softmax otherwise (as the transformers pipeline does)."""
    return "sigmoid" if problem_type == "multi_label_classification" else "softmax"


def top_k_predictions(logits: np.ndarray, labels: Sequence[str], top_k: int = 5,
                      function: str = "softmax") -> list[dict]:
    """Best ``top_k`` labels for one clip's logits (1-D), best first.

    Args:
        logits: shape (num_labels,).
        labels: names in index order.
        top_k: how many to return (capped at the number of labels).
        function: softmax | sigmoid | none.

    Returns:
        ``[{"label": str, "score": float}, ...]`` sorted by score, descending.
    """
    logits = np.asarray(logits).reshape(-1)
    if len(labels) != logits.shape[0]:
        raise ValueError(f"model gives {logits.shape[0]} logits but has {len(labels)} labels")
    scores = apply_function(logits, function)
    k = max(1, min(int(top_k), scores.shape[0]))
    # Stable sort so equal scores keep label order, like the pipeline's topk on CPU.
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"label": labels[i], "score": float(scores[i])} for i in order]
