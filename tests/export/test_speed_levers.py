"""The CPU speed levers: attention-scale folding, static int8 options, ORT-optimized saves,
session settings and pipelined classification. Correctness only: no timings are asserted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from vidsort.errors import ExportError
from vidsort.session import SessionSettings, create_session

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from vidsort.export import export_model  # noqa: E402
from vidsort.export import quantize as q  # noqa: E402
from vidsort.export.optimize import (  # noqa: E402
    attention_matmuls,
    fold_attention_scale,
    save_ort_optimized,
)

pytestmark = pytest.mark.export
LAYERS = 2  # conftest.TINY_CONFIG
CLIPS = np.random.default_rng(5).standard_normal((2, 4, 3, 32, 32)).astype(np.float32)


def run(path, clips: np.ndarray = CLIPS, **kwargs) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"], **kwargs)
    return session.run(None, {"pixel_values": clips})[0]


def ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


@pytest.fixture(scope="module")
def plain_dir(tiny_videomae_dir, tmp_path_factory) -> Path:
    """The tiny model exported without ORT's fusions: the graph static int8 starts from."""
    out = tmp_path_factory.mktemp("plain") / "onnx"
    export_model(tiny_videomae_dir, out, optimize=False, log=None)
    return out


@pytest.fixture(scope="module")
def pre_graph(plain_dir, tmp_path_factory) -> Path:
    """The plain graph after ORT's quant_pre_process (which merges equal initializers)."""
    dst = tmp_path_factory.mktemp("pre") / "model.pre.onnx"
    assert q.preprocess(plain_dir / "model.onnx", dst) is None
    return dst


@pytest.fixture(scope="module")
def reader(plain_dir, tmp_path_factory):
    from vidsort.testing.videogen import make_clip

    videos = tmp_path_factory.mktemp("calib")
    for seed in range(2):
        make_clip(videos / f"clip{seed}.mp4", num_frames=24, width=64, height=48, seed=seed)
    return q.VideoCalibrationReader([videos], plain_dir, num_frames=4)


# -- attention-scale folding -------------------------------------------------------------------

@pytest.mark.parametrize("graph", ["plain", "pre"])
def test_fold_removes_the_score_scaling_and_keeps_the_logits(plain_dir, pre_graph, graph,
                                                             tmp_path):
    src = plain_dir / "model.onnx" if graph == "plain" else pre_graph
    model = onnx.load(str(src))
    before = sum(op == "Div" for op in ops(src))
    assert fold_attention_scale(model) == LAYERS
    dst = tmp_path / "folded.onnx"
    onnx.save(model, str(dst))
    producers = {o: n for n in model.graph.node for o in n.output}
    for softmax in (n for n in model.graph.node if n.op_type == "Softmax"):
        assert producers[softmax.input[0]].op_type == "MatMul"  # the Div is gone
    assert sum(op == "Div" for op in ops(dst)) == before - LAYERS
    # head size 16: dividing by sqrt(16) = 4 is exact, so the logits are the same to rounding
    np.testing.assert_allclose(run(dst), run(src), rtol=0, atol=1e-5)
    assert fold_attention_scale(model) == 0  # nothing left to fold


def _attention_graph(scale: float, reuse_query: bool) -> onnx.ModelProto:
    """x → MatMul(Wq)+bq → q; q·kᵀ / scale → Softmax → ·v: a one-head attention."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((6, 6)).astype(np.float32), n)
             for n in ("wq", "wk", "wv")]
    inits += [numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "bq"),
              numpy_helper.from_array(np.array(scale, np.float32), "scale")]
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q0"]),
             helper.make_node("Add", ["q0", "bq"], ["q"]),
             helper.make_node("MatMul", ["x", "wk"], ["k"]),
             helper.make_node("MatMul", ["x", "wv"], ["v"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Div", ["s", "scale"], ["s2"]),
             helper.make_node("Softmax", ["s2"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if reuse_query:
        outputs.append(helper.make_tensor_value_info("q", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "attention",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 6])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_fold_with_any_scale_and_only_where_safe():
    x = np.random.default_rng(1).standard_normal((1, 5, 6)).astype(np.float32)

    def out(model):
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(["y"], {"x": x})[0]

    model = _attention_graph(np.sqrt(3.0), reuse_query=False)
    expected = out(model)
    assert fold_attention_scale(model) == 1
    np.testing.assert_allclose(out(model), expected, rtol=1e-5, atol=1e-6)
    roles = attention_matmuls(model)
    assert [len(roles[k]) for k in ("scores", "context", "other")] == [1, 1, 0]
    # q is also a graph output: scaling its projection would change that output, so no fold
    shared = _attention_graph(2.0, reuse_query=True)
    assert fold_attention_scale(shared) == 0


# -- static int8 options ---------------------------------------------------------------------

def _static(pre_graph, reader, tmp_path, **options) -> tuple[Path, dict]:
    dst = tmp_path / "model_quantized.onnx"
    settings = q.quantize_static_int8(pre_graph, dst, reader, **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_quantized.onnx"]  # no leftovers
    return dst, settings


def _attention_input_types(path: Path) -> list[int]:
    """Element types of the second operand of every integer attention op in an ORT-fused graph
    (the operand's QuantizeLinear zero point)."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    types = []
    for node in model.graph.node:
        if node.op_type in ("MatMulIntegerToFloat", "QLinearMatMul"):
            b = node.input[1] if node.op_type == "MatMulIntegerToFloat" else node.input[3]
            source = producers.get(b)
            while source is not None and source.op_type in ("Transpose", "Reshape"):
                source = producers.get(source.input[0])  # ORT moves Q ahead of layout ops
            if source is not None and source.op_type == "QuantizeLinear":  # an activation
                types.append(inits[source.input[2]].data_type)
    return types


def test_static_defaults_fuse_with_int8_attention_operands(pre_graph, reader, tmp_path):
    dst, settings = _static(pre_graph, reader, tmp_path)
    assert settings["attention"] == "s8" and settings["attention_scale_folded"] == LAYERS
    assert settings["attention_matmuls"] == {"scores": LAYERS, "context": LAYERS, "other": 0}
    assert settings["ort_optimized"] == {"level": "extended", "disabled": ["QDQS8ToU8Transformer"]}
    assert "MatMulIntegerToFloat" in ops(dst)  # saved after ORT's QDQ fusion
    assert _attention_input_types(dst) == [TensorProto.INT8] * (2 * LAYERS)
    clips = np.concatenate(reader.clips)
    assert cosine(run(dst, clips), run(pre_graph, clips)) > 0.99


def test_static_attention_u8_and_fp32_modes(pre_graph, reader, tmp_path):
    (tmp_path / "u8").mkdir()
    u8, _ = _static(pre_graph, reader, tmp_path / "u8", attention="u8")
    assert _attention_input_types(u8) == [TensorProto.UINT8] * (2 * LAYERS)
    (tmp_path / "fp32").mkdir()
    fp32, _ = _static(pre_graph, reader, tmp_path / "fp32", attention="fp32")
    assert _attention_input_types(fp32) == []
    assert ops(fp32).count("MatMul") == 2 * LAYERS  # QKᵀ and P·V left in float
    clips = np.concatenate(reader.clips)
    for path in (u8, fp32):
        assert cosine(run(path, clips), run(pre_graph, clips)) > 0.99


def test_static_plain_qdq_and_quantized_outputs(pre_graph, reader, tmp_path):
    dst, settings = _static(pre_graph, reader, tmp_path, ort_optimize=False,
                            quantize_outputs=True, fold_attention_scale=False)
    assert settings["ort_optimized"] is None and settings["attention_scale_folded"] == 0
    graph = ops(dst)
    assert "MatMulIntegerToFloat" not in graph and "QuantizeLinear" in graph
    fused = tmp_path.parent / f"{tmp_path.name}-fused.onnx"
    save_ort_optimized(dst, fused)
    assert "QLinearMatMul" in ops(fused)  # quantized outputs: requantizing integer MatMuls
    np.testing.assert_allclose(run(fused), run(dst), rtol=0, atol=1e-5)


def test_static_percentile_calibration_and_bad_options(pre_graph, reader, tmp_path):
    dst, settings = _static(pre_graph, reader, tmp_path, calibrate_method="Percentile",
                            percentile=99.9)
    assert settings["calibrate_method"] == "Percentile" and settings["percentile"] == 99.9
    clips = np.concatenate(reader.clips)
    assert cosine(run(dst, clips), run(pre_graph, clips)) > 0.98
    with pytest.raises(ExportError, match="attention mode"):
        q.quantize_static_int8(pre_graph, tmp_path / "x.onnx", reader, attention="int4")
    with pytest.raises(ExportError, match="unknown static quantization option"):
        q.quantize_static_int8(pre_graph, tmp_path / "x.onnx", reader, fold=True)


def test_clip_by_clip_calibration_equals_one_pass(pre_graph, reader, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    ours = q.calibrate(pre_graph, reader, CalibrationMethod.MinMax, ["MatMul"], tmp_path)

    class All(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"pixel_values": c} for c in reader.clips)

        def get_next(self):
            return next(self.it, None)

    (tmp_path / "ort").mkdir()
    calibrator = create_calibrator(pre_graph, ["MatMul"], str(tmp_path / "ort" / "aug.onnx"))
    calibrator.collect_data(All())
    theirs = calibrator.compute_data()
    assert set(ours.data) == set(theirs.data) and len(ours.data) > 0
    for name in ours.data:
        for a, b in zip(ours[name].range_value, theirs[name].range_value, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_export_static_records_the_levers(tiny_videomae_dir, reader, tmp_path):
    videos = Path(reader.used[0]).parent
    export_model(tiny_videomae_dir, tmp_path / "out", quantize="static", calibration=[videos],
                 log=None)
    manifest = json.loads((tmp_path / "out" / "vidsort.json").read_text())
    quant = manifest["quantization"]
    assert quant["attention_scale_folded"] == LAYERS and quant["attention"] == "s8"
    assert manifest["export"]["optimization"]["attention_op"] == "MultiHeadAttention"
    assert manifest["validation"]["int8"]["calibration_clips"]["cosine"] > 0.99


# -- ORT-optimized saves and session settings -------------------------------------------------

def test_saved_optimized_graph_loads_and_matches(plain_dir, tmp_path):
    src = plain_dir / "model.onnx"
    dst = tmp_path / "model.onnx"
    info = save_ort_optimized(src, dst)
    assert info == {"level": "extended", "disabled": []}
    assert len(ops(dst)) < len(ops(src))  # shape subgraphs folded, ops fused
    for level in ("disabled", "all"):
        session = create_session(dst, "cpu", SessionSettings(threads=1, graph_optimization=level))
        got = session.run(None, {"pixel_values": CLIPS})[0]
        np.testing.assert_allclose(got, run(src), rtol=0, atol=1e-5)


def test_session_settings(plain_dir):
    assert SessionSettings().spinning is False  # decoder threads share the cores
    with pytest.raises(ValueError, match="graph_optimization"):
        create_session(plain_dir / "model.onnx", "cpu", SessionSettings(graph_optimization="max"))
    settings = SessionSettings(threads=1, spinning=True, arena=False,
                               disabled_optimizers=("QDQS8ToU8Transformer",))
    session = create_session(plain_dir / "model.onnx", "cpu", settings)
    np.testing.assert_allclose(session.run(None, {"pixel_values": CLIPS})[0],
                               run(plain_dir / "model.onnx"), rtol=0, atol=1e-6)


# -- pipelined classification ------------------------------------------------------------------

def test_classify_many_equals_sequential_calls_in_order(exported_tiny_dir, tmp_path):
    from vidsort import VideoClassifier
    from vidsort.pipeline import iter_prepared
    from vidsort.testing.videogen import make_clip

    videos: list = []
    for seed in range(5):
        videos.append(make_clip(tmp_path / f"v{seed}.mp4", num_frames=20 + 4 * seed,
                                width=48 + 16 * seed, height=48, seed=seed))
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    videos.insert(2, tmp_path / "broken.mp4")
    videos.append(np.random.default_rng(0).integers(0, 255, (12, 40, 40, 3), dtype=np.uint8))
    # int8 here is dynamic: a batch shares its activation ranges, so batches > 1 are checked on
    # fp32 (pipelining must not change a result; batching may only by float rounding)
    for precision, batch_sizes in (("int8", (1,)), ("fp32", (1, 3))):
        clf = VideoClassifier(exported_tiny_dir, precision=precision, threads=1)
        sequential = []
        for video in videos:
            try:
                sequential.append(clf(video, top_k=3))
            except Exception as exc:  # the broken file: classify_many reports it in place
                sequential.append(type(exc).__name__)
        for prefetch in (0, 1, 4):
            for batch_size in batch_sizes:
                results = list(clf.classify_many(videos, top_k=3, prefetch=prefetch,
                                                 batch_size=batch_size))
                assert [r["video"] for r in results[:-1]] == [str(v) for v in videos[:-1]]
                for result, expected in zip(results, sequential, strict=True):
                    if isinstance(expected, str):
                        assert result["error"]["type"] == expected
                        continue
                    assert [p["label"] for p in result["predictions"]] == \
                        [p["label"] for p in expected]
                    np.testing.assert_allclose([p["score"] for p in result["predictions"]],
                                               [p["score"] for p in expected], atol=1e-5)
    # the prepared clips come back in input order whatever the prefetch depth
    names = [v for v, _ in iter_prepared(videos[:2], clf.spec, prefetch=1)]
    assert names == videos[:2]
