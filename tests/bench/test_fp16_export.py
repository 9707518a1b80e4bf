"""The fp16 variant: fp32 inputs/outputs, dynamic batch, range-checked conversion, and its check
on export (cosine >= 0.999, no NaN/inf) — on the embedded model with real clips, and (slow) on a
VideoMAE-Base-shaped export."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

pytest.importorskip("optimum.exporters.onnx")

from vidsort.errors import ExportError  # noqa: E402
from vidsort.export import export_model  # noqa: E402
from vidsort.export import fp16 as half  # noqa: E402


def _io_types(path) -> tuple[list[int], list[int]]:
    model = onnx.load(str(path), load_external_data=False)
    return ([i.type.tensor_type.elem_type for i in model.graph.input],
            [o.type.tensor_type.elem_type for o in model.graph.output])


def _check_variant(out, real_clips: bool) -> dict:
    manifest = json.loads((out / "vidsort.json").read_text())
    figures = manifest["validation"]["fp16"]
    assert figures["cosine"] >= half.MIN_COSINE
    assert figures["nonfinite"] == 0
    assert figures["provider"] == "CPUExecutionProvider"  # no GPU here: the check ran on CPU
    assert set(figures["sets"]) == ({"noise", "real_clips"} if real_clips else {"noise"})
    assert figures["sets"]["noise"]["clips"] == 3  # batch 1 and batch 2: the batch axis is dynamic
    settings = manifest["export"]["fp16"]
    assert settings["keep_io_types"] is True and settings["max_abs_activation"] > 0
    assert settings["attention_scores_measured"] > 0
    float32 = onnx.TensorProto.FLOAT
    assert _io_types(out / "model_fp16.onnx") == ([float32], [float32])  # callers never cast
    graph = onnx.load(str(out / "model_fp16.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    return manifest


def test_embedded_model_fp16_checked_on_real_clips(tmp_path, shared_videos):
    import onnxruntime as ort

    out = tmp_path / "tiny-motion"
    export_model("tiny-motion", out, fp16=True, fp16_videos=[shared_videos], log=None)
    manifest = _check_variant(out, real_clips=True)
    assert manifest["validation"]["fp16"]["sets"]["real_clips"]["clips"] >= 2
    session = ort.InferenceSession(str(out / "model_fp16.onnx"),
                                   providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).standard_normal((3, 8, 3, 64, 64), dtype=np.float32)
    logits = session.run(None, {"pixel_values": batch})[0]
    assert logits.dtype == np.float32 and logits.shape == (3, 8) and np.isfinite(logits).all()


def test_attention_scores_are_measured_like_the_unfused_graph(tiny_videomae_dir, tmp_path):
    """The scan recomputes QKᵀ inside fused MultiHeadAttention; the unfused graph shows the same
    scores as the input of its Softmax."""
    fused = tmp_path / "fused"
    plain = tmp_path / "plain"
    export_model(tiny_videomae_dir, fused, validate=False, log=None)
    export_model(tiny_videomae_dir, plain, validate=False, optimize=False, log=None)
    clips = [np.random.default_rng(1).standard_normal((2, 4, 3, 32, 32), dtype=np.float32)]
    model = onnx.load(str(fused / "model.onnx"))
    half._name_nodes(model)
    _, attention = half.activation_ranges(model, clips, "pixel_values")
    plain_model = onnx.load(str(plain / "model.onnx"))
    tensors, _ = half.activation_ranges(plain_model, clips, "pixel_values")
    softmax_inputs = [n.input[0] for n in plain_model.graph.node if n.op_type == "Softmax"]
    assert len(attention) == len(softmax_inputs) == 2
    assert max(attention.values()) == pytest.approx(max(tensors[t] for t in softmax_inputs),
                                                    rel=1e-4)


def test_nodes_past_the_limit_stay_fp32(exported_tiny_dir, tmp_path, monkeypatch):
    clips = [np.random.default_rng(2).standard_normal((1, 4, 3, 32, 32), dtype=np.float32)]
    model = onnx.load(str(exported_tiny_dir / "model.onnx"))
    half._name_nodes(model)
    tensors, attention = half.activation_ranges(model, clips, "pixel_values")
    limit = sorted(tensors.values())[-3]  # the few largest activations pass it
    blocked = half.block_list(model, tensors, attention, limit)
    assert blocked and all("reaches" in why for why in blocked.values())
    monkeypatch.setattr(half, "HEADROOM", half.FP16_MAX / limit)
    settings = half.convert_fp16(exported_tiny_dir / "model.onnx", tmp_path / "h.onnx", clips)
    assert set(settings["fp32_nodes"]) == set(blocked)
    converted = onnx.load(str(tmp_path / "h.onnx"))
    produced = {}
    for info in onnx.shape_inference.infer_shapes(converted).graph.value_info:
        produced[info.name] = info.type.tensor_type.elem_type
    kept = [n for n in converted.graph.node if n.name in blocked]
    assert kept
    for node in kept:  # blocked nodes read and write float32 (casts around them)
        for name in node.output:
            assert produced.get(name, onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT, node.name


def test_failed_check_refuses_the_export(tiny_videomae_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(half, "MIN_COSINE", 1.01)  # no fp16 graph can pass this
    out = tmp_path / "refused"
    with pytest.raises(ExportError, match="fp16 graph's logits reach cosine"):
        export_model(tiny_videomae_dir, out, fp16=True, log=None)
    assert not out.exists()


def test_fp16_videos_need_fp16_and_must_exist(tiny_videomae_dir, tmp_path):
    with pytest.raises(ExportError, match="only used with fp16"):
        export_model(tiny_videomae_dir, tmp_path / "a", fp16_videos=[tmp_path], log=None)
    with pytest.raises(ExportError, match="does not exist"):
        export_model(tiny_videomae_dir, tmp_path / "b", fp16=True,
                     fp16_videos=[tmp_path / "missing.mp4"], log=None)


@pytest.mark.slow
def test_base_shaped_fp16_export_is_checked(tmp_path, shared_videos):
    from vidsort.testing.models import build_videomae_dir

    source = build_videomae_dir(tmp_path / "base", base=True)
    out = tmp_path / "onnx"
    export_model(source, out, fp16=True, fp16_videos=[shared_videos / "arm_wrestling_340x256.mp4"],
                 log=None)
    manifest = _check_variant(out, real_clips=True)
    assert manifest["export"]["fp16"]["attention_scores_measured"] == 12
