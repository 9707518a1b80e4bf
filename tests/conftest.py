"""Shared fixtures: tiny VideoMAE classifiers built from VideoMAEConfig, and their exports.

torch/transformers are imported inside the fixtures only, so runtime-only test files (and a
runtime-only install) never pay for them; fixtures that need them skip when they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vidsort.testing.models import SHARED, build_videomae_dir

# The suite is offline by contract: never let a Hub id reach the network. Set before anything
# imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
