"""Two exports of the same model are byte-identical, but for vidsort.json's timestamp."""

from __future__ import annotations

import json

import pytest
from vidsort.manifest import MANIFEST

pytest.importorskip("optimum.exporters.onnx")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    from vidsort.testing.videogen import make_clip

    folder = tmp_path_factory.mktemp("repro-calib")
    for seed in range(2):
        make_clip(folder / f"clip{seed}.mp4", num_frames=40, width=96, height=72, seed=seed)
    return folder


@pytest.mark.parametrize("quantize", ["dynamic", "static"])
def test_two_exports_are_identical_but_for_the_timestamp(tmp_path, calibration, quantize):
    from vidsort.export import export_model

    kwargs = {"quantize": quantize, "fp16": True}
    if quantize == "static":
        kwargs["calibration"] = [calibration]
    first = export_model("tiny-motion", tmp_path / "a", log=None, **kwargs)
    second = export_model("tiny-motion", tmp_path / "b", log=None, **kwargs)
    names = sorted(p.name for p in first.out_dir.iterdir())
    assert names == sorted(p.name for p in second.out_dir.iterdir())
    assert {"model.onnx", "model_quantized.onnx", "model_fp16.onnx", MANIFEST} <= set(names)
    for name in names:
        if name != MANIFEST:
            a, b = (first.out_dir / name).read_bytes(), (second.out_dir / name).read_bytes()
            assert a == b, f"{name} differs between two exports"
    manifests = [json.loads((r.out_dir / MANIFEST).read_text()) for r in (first, second)]
    created = [m.pop("created") for m in manifests]
    assert all(created)
    assert manifests[0] == manifests[1]
