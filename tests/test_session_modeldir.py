"""Model directories and ONNX Runtime sessions, on a hand-built ONNX graph (no export needed)."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from vidsort.errors import ModelDirError, ProviderUnavailableError
from vidsort.modeldir import ModelDir
from vidsort.session import available_providers, create_session, provider_chain, resolve_precision

LABELS = ["x", "y", "z"]


def write_linear_model(path, frames=2, size=4, labels=3):
    """pixel_values (N, T, 3, S, S) → logits (N, labels) = mean over pixels * weights."""
    shape = ["batch", frames, 3, size, size]
    inp = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, shape)
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, labels], [1.0, -1.0, 0.5][:labels])
    axes = helper.make_tensor("axes", TensorProto.INT64, [4], [1, 2, 3, 4])
    nodes = [helper.make_node("ReduceMean", ["pixel_values", "axes"], ["m"], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
             helper.make_node("Mul", ["m2", "w"], ["logits"])]
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "lin", [inp], [out], [w, axes, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, path)


@pytest.fixture()
def bare_dir(tmp_path):
    write_linear_model(tmp_path / "model.onnx")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "videomae", "num_frames": 2, "image_size": 4,
        "id2label": {str(i): name for i, name in enumerate(LABELS)}}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "do_resize": True, "size": {"shortest_edge": 4}, "crop_size": {"height": 4, "width": 4},
        "do_center_crop": True, "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return tmp_path


def test_bare_directory_gets_defaults(bare_dir):
    model = ModelDir.load(bare_dir)
    assert model.labels == LABELS
    assert model.num_frames == model.clip_len == 2
    assert model.frame_sample_rate == 4 and model.strategy == "centre"
    assert model.variants == {"fp32": "model.onnx"}
    session = create_session(model.model_file("fp32"), "cpu")
    (logits,) = session.run(None, {"pixel_values": np.ones((2, 2, 3, 4, 4), np.float32)})
    np.testing.assert_allclose(logits, [[1.0, -1.0, 0.5]] * 2)


@pytest.mark.parametrize("missing", ["config.json", "preprocessor_config.json", "model.onnx"])
def test_missing_file_names_the_file(bare_dir, missing):
    (bare_dir / missing).unlink()
    with pytest.raises(ModelDirError, match=missing.replace(".", r"\.")):
        ModelDir.load(bare_dir)


def test_corrupt_files(bare_dir):
    (bare_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="config.json"):
        ModelDir.load(bare_dir)


def test_corrupt_onnx_is_a_model_dir_error(bare_dir):
    (bare_dir / "model.onnx").write_bytes(b"\x00garbage" * 10)
    model = ModelDir.load(bare_dir)
    with pytest.raises(ModelDirError, match="model.onnx"):
        create_session(model.model_file("fp32"), "cpu")


def test_manifest_sizes_are_checked(bare_dir):
    size = (bare_dir / "model.onnx").stat().st_size
    (bare_dir / "vidsort.json").write_text(json.dumps({
        "labels": LABELS, "num_frames": 2, "image_size": [4, 4],
        "variants": {"fp32": "model.onnx"}, "files": {"model.onnx": {"bytes": size + 1}}}))
    with pytest.raises(ModelDirError, match="truncated or replaced"):
        ModelDir.load(bare_dir)


def test_missing_precision_is_explained(bare_dir):
    with pytest.raises(ModelDirError, match="no int8 model"):
        ModelDir.load(bare_dir).model_file("int8")


def test_not_a_directory(tmp_path):
    with pytest.raises(ModelDirError, match="does not exist"):
        ModelDir.load(tmp_path / "nope")


@pytest.mark.skipif("cuda" in available_providers(), reason="a CUDA build is installed")
def test_explicit_cuda_without_gpu_is_a_clear_error(bare_dir):
    with pytest.raises(ProviderUnavailableError, match="cuda"):
        create_session(bare_dir / "model.onnx", "cuda")
    with pytest.raises(ProviderUnavailableError):
        provider_chain("tensorrt")


def test_precision_choice():
    both = {"fp32": "model.onnx", "int8": "q.onnx", "fp16": "h.onnx"}
    assert resolve_precision("auto", "cpu", both) == "int8"
    assert resolve_precision("auto", "cuda", both) == "fp16"
    assert resolve_precision("auto", "cpu", {"fp32": "model.onnx"}) == "fp32"
    assert resolve_precision("fp32", "cpu", both) == "fp32"
    with pytest.raises(ValueError):
        resolve_precision("int4", "cpu", both)


# -- what the runtime supports (vidsort.supported) and the manifest's format version ----------


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_unsupported_model_type_is_refused(bare_dir):
    # V-JEPA 2: a transformers video classifier the runtime leaves out (see vidsort.supported)
    _edit_json(bare_dir / "config.json", model_type="vjepa2")
    with pytest.raises(ModelDirError) as info:
        ModelDir.load(bare_dir)
    message = str(info.value)
    assert "\n" not in message
    assert "config.json" in message and "'vjepa2'" in message and "videomae" in message


def test_unsupported_architecture_class_is_refused(bare_dir):
    _edit_json(bare_dir / "config.json", architectures=["VideoMAEForPreTraining"])
    with pytest.raises(ModelDirError, match="ForPreTraining.*VideoMAEForVideoClassification"):
        ModelDir.load(bare_dir)


def test_unsupported_processor_type_is_refused(bare_dir):
    # ViViT's processor rescales with an offset: preprocessing it as VideoMAE would be wrong
    _edit_json(bare_dir / "preprocessor_config.json", image_processor_type="VivitImageProcessor")
    with pytest.raises(ModelDirError) as info:
        ModelDir.load(bare_dir)
    message = str(info.value)
    assert "\n" not in message
    assert "preprocessor_config.json" in message and "VivitImageProcessor" in message
    assert "VideoMAEImageProcessor" in message


def test_supported_processor_type_and_parsed_config(bare_dir):
    _edit_json(bare_dir / "preprocessor_config.json", image_processor_type="VideoMAEImageProcessor")
    model = ModelDir.load(bare_dir)
    assert model.model_type == "videomae"
    assert model.preprocess.crop_height == 4 and model.preprocess.shortest_edge == 4


@pytest.mark.parametrize("edit, bad_file", [
    ({"model_type": "vjepa2"}, "config.json"),
    ({"image_processor_type": "VivitImageProcessor"}, "preprocessor_config.json"),
])
def test_classify_exits_2_on_an_unsupported_model(bare_dir, tmp_path, edit, bad_file):
    import subprocess
    import sys

    _edit_json(bare_dir / bad_file, **edit)
    out = subprocess.run([sys.executable, "-m", "vidsort", "classify", str(bare_dir),
                          str(tmp_path / "any.mp4")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and bad_file in lines[0] and "not" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_manifest_format_version(bare_dir):
    from vidsort.manifest import FORMAT_VERSION

    size = (bare_dir / "model.onnx").stat().st_size
    manifest = {"labels": LABELS, "num_frames": 2, "image_size": [4, 4],
                "variants": {"fp32": "model.onnx"}, "files": {"model.onnx": {"bytes": size}}}
    for version in (FORMAT_VERSION, f"{FORMAT_VERSION}.3"):  # same major: read
        (bare_dir / "vidsort.json").write_text(json.dumps({**manifest, "format_version": version}))
        assert ModelDir.load(bare_dir).labels == LABELS
    (bare_dir / "vidsort.json").write_text(json.dumps({**manifest,
                                                        "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelDirError) as info:
        ModelDir.load(bare_dir)
    message = str(info.value)
    assert "vidsort.json" in message and str(FORMAT_VERSION + 1) in message
    assert f"up to {FORMAT_VERSION}" in message


def test_provider_table_is_the_one_source():
    from vidsort.options import PROVIDER_CHOICES
    from vidsort.providers import PROVIDER_TABLE

    assert PROVIDER_CHOICES == ("auto", *(p.name for p in PROVIDER_TABLE))
    assert provider_chain("cpu") == ["CPUExecutionProvider"]
    assert [p.name for p in PROVIDER_TABLE if p.gpu] == ["tensorrt", "cuda"]
