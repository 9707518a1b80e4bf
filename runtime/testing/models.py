"""Small random-weight VideoMAE classifiers for tests and benchmarks (``save_pretrained`` dirs).

torch and transformers (the export extra) are imported inside `build_videomae_dir` only. Under
pytest a missing extra skips the calling test, as the suite's fixtures always did.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: the project's shared real clips and labels (``../shared`` beside a checkout; override with
#: ``VIDSORT_SHARED``); absent in an installed wheel, where `kinetics_labels` generates names
SHARED = Path(os.environ.get("VIDSORT_SHARED") or Path(__file__).resolve().parents[2].parent
              / "shared")

#: tiny but structurally complete: 2 tubelets x 4 patches, 2 layers, 2 heads
TINY_CONFIG = dict(num_frames=4, image_size=32, patch_size=16, tubelet_size=2, hidden_size=32,
                   num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def kinetics_labels() -> list[str]:
    """The 400 Kinetics-400 class names, or generated names if the shared file is absent."""
    path = SHARED / "kinetics400_labels.txt"
    if path.is_file():
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
        if len(labels) == 400:
            return labels
    return [f"class_{i:03d}" for i in range(400)]


def _import_export_extra():
    try:
        import torch
        import transformers
    except ImportError as exc:
        if "pytest" in sys.modules:  # a test without the export extra is skipped, not failed
            import pytest

            pytest.skip(f"needs the export extra: {exc}")
        raise
    return torch, transformers


def build_videomae_dir(path: Path, seed: int = 0, labels: list[str] | None = None,
                       processor: bool = True, **overrides) -> Path:
    """Save a random-init VideoMAEForVideoClassification (+ image processor) with save_pretrained.

    q/v biases are drawn non-zero, as in trained checkpoints (random init leaves them at zero,
    which would hide an export that drops them).

    Args:
        path: directory to write.
        seed: torch seed for the weights.
        labels: id2label names (default: Kinetics-400).
        processor: also save a VideoMAEImageProcessor sized to the model.
        **overrides: VideoMAEConfig fields on top of `TINY_CONFIG` (``base=True``: no tiny
            fields at all, i.e. the VideoMAEConfig() defaults).

    Returns:
        ``path``.
    """
    torch, transformers = _import_export_extra()
    labels = kinetics_labels() if labels is None else labels
    fields = {} if overrides.pop("base", False) else dict(TINY_CONFIG)
    fields.update(overrides)
    config = transformers.VideoMAEConfig(**fields, num_labels=len(labels),
                                         id2label=dict(enumerate(labels)),
                                         label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(seed)
    model = transformers.VideoMAEForVideoClassification(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("q_bias", "v_bias")):
                param.normal_(0.0, 0.5)
    model.save_pretrained(path)
    if processor:
        size = config.image_size
        transformers.VideoMAEImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        ).save_pretrained(path)
    return path
