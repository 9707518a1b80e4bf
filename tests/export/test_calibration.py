"""Calibration for static int8: clips streamed from videos, and the calibration session's memory
behaviour (each calibrated tensor is reduced right after it is produced)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from vidsort.errors import ExportError

pytest.importorskip("optimum.exporters.onnx")

from vidsort.export import calibration as cal  # noqa: E402


@pytest.fixture(scope="module")
def plain_dir(tiny_videomae_dir, tmp_path_factory) -> Path:
    """The tiny VideoMAE exported without ORT fusions (the graph static int8 calibrates)."""
    from vidsort.export import export_model

    out = tmp_path_factory.mktemp("calib-plain") / "onnx"
    export_model(tiny_videomae_dir, out, optimize=False, validate=False, log=None)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    from vidsort.testing.videogen import make_clip

    folder = tmp_path_factory.mktemp("calib-videos")
    for seed in range(3):  # 24 frames: two 4-frame clips at stride 4 each
        make_clip(folder / f"clip{seed}.mp4", num_frames=24, width=64, height=48, seed=seed)
    return folder


def test_reader_streams_up_to_max_clips_and_keeps_a_few(plain_dir, videos):
    reader = cal.VideoCalibrationReader([videos], plain_dir, num_frames=4, clips_per_video=2,
                                        max_clips=5, keep=2)
    assert reader.count == 0 and reader.kept == []  # nothing decoded before it is asked for
    stream = reader.iter_clips()
    first = next(stream)
    assert first.shape == (1, 4, 3, 32, 32) and first.dtype == np.float32
    assert len(reader.used) == 1  # one video decoded so far
    rest = list(stream)
    assert 1 + len(rest) == reader.count == 5
    assert len(reader.used) == 3 and len(reader.kept) == 2
    np.testing.assert_array_equal(reader.kept[0], first)
    assert reader.summary()["clips"] == 5
    # a second pass (ORT's rewind) gives the same clips and keeps no more
    again = list(reader.iter_clips())
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate([first, *rest]))
    assert len(reader.kept) == 2


def test_reader_skips_bad_videos_and_fails_without_any(plain_dir, videos, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 500)
    reader = cal.VideoCalibrationReader([bad, videos / "clip0.mp4"], plain_dir, num_frames=4)
    assert len(list(reader.iter_clips())) == 2
    assert list(reader.summary()["skipped"]) == ["bad.mp4"]
    only_bad = cal.VideoCalibrationReader([bad], plain_dir, num_frames=4)
    with pytest.raises(ExportError, match="no calibration clip could be decoded"):
        list(only_bad.iter_clips())


def _lifetime_extensions(augmented: Path, options, clip: np.ndarray, tmp_path: Path) -> list[int]:
    """For each calibrated tensor: how many nodes its reductions ran after the last of the model's
    own nodes that reads it (how long calibration keeps it alive beyond the model's own need),
    in the order ONNX Runtime ran them (its profile)."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(augmented)).graph
    reductions: dict[str, list[str]] = {}
    readers: dict[str, list[str]] = {}
    for node in graph.node:
        is_reduction = node.op_type in ("ReduceMin", "ReduceMax")
        for tensor in node.input[:1] if is_reduction else node.input:
            (reductions if is_reduction else readers).setdefault(tensor, []).append(node.name)
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = ort.InferenceSession(str(augmented), options, providers=["CPUExecutionProvider"])
    session.run(None, {"pixel_values": clip})
    events = json.loads(Path(session.end_profiling()).read_text())
    order = [e["name"][:-len("_kernel_time")] for e in events
             if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    position = {name: i for i, name in enumerate(order)}
    # a tensor only reductions read (e.g. the graph's logits) has no lifetime of its own: 0
    return [max(position[n] for n in names) - max(position[n] for n in readers[tensor])
            if tensor in readers else 0 for tensor, names in reductions.items()]


def test_calibration_session_reduces_each_tensor_as_soon_as_it_exists(plain_dir, videos,
                                                                     tmp_path):
    """The memory fix: in ORT's default order every reduction waits for the end of the model, so
    every calibrated tensor (attention scores and probabilities included) is alive at once; the
    calibration session's order reduces each right after it is produced."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    model = plain_dir / "model.onnx"
    augmented = tmp_path / "augmented.onnx"
    create_calibrator(model, ["MatMul", "Conv", "Gemm"], augmented_model_path=str(augmented),
                      calibrate_method=CalibrationMethod.MinMax)
    clip = next(cal.VideoCalibrationReader([videos], plain_dir, num_frames=4).iter_clips())
    nodes = len(onnx.load(str(model)).graph.node)

    ours = _lifetime_extensions(augmented, cal.calibration_session_options(), clip, tmp_path)
    default = ort.SessionOptions()
    default.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = _lifetime_extensions(augmented, default, clip, tmp_path)
    assert len(ours) == len(theirs) > 10
    # ORT's default keeps tensors alive through most of the model; ours, as long as the model does
    assert max(theirs) > nodes // 2, sorted(theirs)[-5:]
    assert max(ours) <= 2, sorted(ours)[-5:]
