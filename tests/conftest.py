"""Shared fixtures: tiny VideoMAE classifiers built from VideoMAEConfig, and their exports.

torch/transformers are imported inside the fixtures only, so runtime-only test files (and a
runtime-only install) never pay for them; fixtures that need them skip when they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The suite is offline by contract: never let a Hub id reach the network. Set before anything
# imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: real clips and label names shared by all checkouts (see ../shared/videos/SOURCES.md)
SHARED = Path(__file__).parents[1].parent / "shared"

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
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

    labels = kinetics_labels() if labels is None else labels
    fields = {} if overrides.pop("base", False) else dict(TINY_CONFIG)
    fields.update(overrides)
    config = VideoMAEConfig(**fields, num_labels=len(labels),
                            id2label=dict(enumerate(labels)),
                            label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(seed)
    model = VideoMAEForVideoClassification(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("q_bias", "v_bias")):
                param.normal_(0.0, 0.5)
    model.save_pretrained(path)
    if processor:
        size = config.image_size
        VideoMAEImageProcessor(size={"shortest_edge": size},
                               crop_size={"height": size, "width": size}).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def shared_videos() -> Path:
    """The shared real clips directory; skips the test if this checkout has none."""
    path = SHARED / "videos"
    if not path.is_dir():
        pytest.skip(f"{path}: shared test videos not present")
    return path


@pytest.fixture(scope="session")
def tiny_videomae_dir(tmp_path_factory) -> Path:
    """A save_pretrained tiny VideoMAE video classifier with Kinetics-400 labels (4 x 32 px)."""
    return build_videomae_dir(tmp_path_factory.mktemp("tiny-videomae") / "model")


@pytest.fixture(scope="session")
def exported_tiny_dir(tiny_videomae_dir, tmp_path_factory) -> Path:
    """`tiny_videomae_dir` exported with dynamic int8 and fp16 variants (validated)."""
    pytest.importorskip("optimum.exporters.onnx")
    from vidsort.export import export_model

    out = tmp_path_factory.mktemp("tiny-export") / "onnx"
    export_model(tiny_videomae_dir, out, quantize="dynamic", fp16=True, log=None)
    return out


@pytest.fixture(scope="session")
def tiny_motion_dir(tmp_path_factory) -> Path:
    """The embedded tiny-motion model exported with dynamic int8 (skips if not shipped)."""
    pytest.importorskip("optimum.exporters.onnx")
    from vidsort.export import export_model
    from vidsort.export.demo.embedded import resolve_embedded

    if resolve_embedded("tiny-motion") is None:
        pytest.skip("embedded tiny-motion model not present")
    out = tmp_path_factory.mktemp("tiny-motion") / "onnx"
    export_model("tiny-motion", out, quantize="dynamic", log=None)
    return out
