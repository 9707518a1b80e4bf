"""The export step: save_pretrained VideoMAE → validated ONNX model directory."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from vidsort.errors import ExportError
from vidsort.testing.models import build_videomae_dir, kinetics_labels

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from vidsort.export import ExportReport, export_model  # noqa: E402

pytestmark = pytest.mark.export

MANIFEST_KEYS = {"format_version", "task", "model_type", "source", "input", "output", "num_frames",
                 "image_size", "sampling", "labels", "problem_type", "variants", "quantization",
                 "files", "versions", "validation", "created"}
VERSION_KEYS = {"vidsort", "torch", "transformers", "optimum", "optimum-onnx", "onnx",
                "onnxruntime"}


def manifest_of(path: Path) -> dict:
    return json.loads((path / "vidsort.json").read_text(encoding="utf-8"))


def torch_logits(model_dir: Path, clips: np.ndarray) -> np.ndarray:
    import torch
    from transformers import VideoMAEForVideoClassification

    model = VideoMAEForVideoClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(clips)).logits.numpy()


def run_onnx(path: Path, clips: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixel_values": clips})[0]


def leftovers(parent: Path) -> list[str]:
    """Temporary build/backup dirs the exporter must never leave behind."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def export_quietly(model, out, **kwargs) -> ExportReport:
    kwargs.setdefault("log", None)
    return export_model(model, out, **kwargs)


def test_task_and_architecture_are_registered_with_optimum():
    from optimum.exporters.tasks import TasksManager
    from transformers import VideoMAEConfig
    from vidsort.export.onnx_config import (
        VideoMAEOnnxConfig,
        onnx_config_for,
        supported_model_types,
    )
    from vidsort.supported import BY_MODEL_TYPE

    # the export registry and the runtime's table of what it preprocesses faithfully agree
    assert supported_model_types() == ["timesformer", "videomae", "vivit"] == sorted(BY_MODEL_TYPE)
    tasks = TasksManager.get_supported_tasks_for_model_type("videomae", "onnx",
                                                            library_name="transformers")
    assert "video-classification" in tasks
    config = onnx_config_for(VideoMAEConfig(**{"num_frames": 4, "image_size": 32}))
    assert isinstance(config, VideoMAEOnnxConfig)
    assert config.inputs == {"pixel_values": {0: "batch"}}
    assert dict(config.outputs) == {"logits": {0: "batch"}}
    dummy = config.generate_dummy_inputs(framework="np", batch_size=3)
    assert dummy["pixel_values"].shape == (3, 4, 3, 32, 32)


# -- a good export ------------------------------------------------------------------------------

def test_directory_holds_every_file_with_correct_hashes(exported_tiny_dir):
    names = {p.name for p in exported_tiny_dir.iterdir()}
    assert names == {"model.onnx", "model_quantized.onnx", "model_fp16.onnx", "config.json",
                     "preprocessor_config.json", "vidsort.json"}
    manifest = manifest_of(exported_tiny_dir)
    assert set(manifest["files"]) == names - {"vidsort.json"}
    for name, meta in manifest["files"].items():
        data = (exported_tiny_dir / name).read_bytes()
        assert meta["bytes"] == len(data)
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()


def test_manifest_describes_the_model(exported_tiny_dir, tiny_videomae_dir):
    manifest = manifest_of(exported_tiny_dir)
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["format_version"] == 1
    assert manifest["task"] == "video-classification"
    assert manifest["model_type"] == "videomae"
    assert manifest["source"] == str(tiny_videomae_dir)
    assert manifest["input"] == {"name": "pixel_values", "shape": ["batch", 4, 3, 32, 32],
                                 "dtype": "float32", "layout": "NTCHW"}
    assert manifest["output"] == {"name": "logits", "shape": ["batch", 400]}
    assert manifest["num_frames"] == 4 and manifest["image_size"] == [32, 32]
    assert manifest["sampling"] == {"clip_len": 4, "frame_sample_rate": 4, "strategy": "centre"}
    assert manifest["labels"] == kinetics_labels()
    assert manifest["variants"] == {"fp32": "model.onnx", "int8": "model_quantized.onnx",
                                    "fp16": "model_fp16.onnx"}
    assert manifest["quantization"]["mode"] == "dynamic"
    assert manifest["quantization"]["weight_type"] == "QInt8"
    assert set(manifest["versions"]) == VERSION_KEYS
    assert manifest["versions"]["onnxruntime"] == ort.__version__
    config = json.loads((exported_tiny_dir / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(400)] == manifest["labels"]
    source_pre = (tiny_videomae_dir / "preprocessor_config.json").read_bytes()
    assert (exported_tiny_dir / "preprocessor_config.json").read_bytes() == source_pre


def test_graph_has_dynamic_batch_and_fixed_clip_shape(exported_tiny_dir):
    graph = onnx.load(str(exported_tiny_dir / "model.onnx")).graph
    (inp,), (out,) = graph.input, graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "pixel_values" and dims == ["batch", 4, 3, 32, 32]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert out.name == "logits" and out_dims == ["batch", 400]


def test_fp32_matches_pytorch_at_batch_1_and_2(exported_tiny_dir, tiny_videomae_dir):
    figures = manifest_of(exported_tiny_dir)["validation"]["fp32"]["max_abs_diff"]
    assert set(figures) == {"batch1", "batch2"}
    assert all(0 <= v <= 1e-4 for v in figures.values())
    # independent check on other inputs than the exporter used
    rng = np.random.default_rng(1234)
    for batch in (1, 2):
        clips = rng.standard_normal((batch, 4, 3, 32, 32)).astype(np.float32)
        expected = torch_logits(tiny_videomae_dir, clips)
        got = run_onnx(exported_tiny_dir / "model.onnx", clips)
        assert got.shape == (batch, 400)
        assert np.abs(got - expected).max() <= 1e-4
        # the q/v biases are non-zero: logits must depend on the input, not be a constant
        assert np.ptp(expected) > 1e-3


def test_int8_and_fp16_variants_load_and_run(exported_tiny_dir, tiny_videomae_dir):
    clips = np.random.default_rng(7).standard_normal((2, 4, 3, 32, 32)).astype(np.float32)
    reference = torch_logits(tiny_videomae_dir, clips)
    for name in ("model_quantized.onnx", "model_fp16.onnx"):
        got = run_onnx(exported_tiny_dir / name, clips)
        assert got.shape == (2, 400) and got.dtype == np.float32 and np.isfinite(got).all()
        cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(
            reference, axis=1)
        assert cosine.min() > 0.99, name
    int8_ops = {n.op_type for n in onnx.load(str(exported_tiny_dir / "model_quantized.onnx"))
                .graph.node}
    assert int8_ops & {"MatMulInteger", "QAttention", "DynamicQuantizeLinear"}
    fp16 = onnx.load(str(exported_tiny_dir / "model_fp16.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16.graph.initializer)
    validation = manifest_of(exported_tiny_dir)["validation"]
    for variant in ("int8", "fp16"):
        assert set(validation[variant]) >= {"cosine", "top1_agreement", "max_abs_diff"}
        assert 0.99 < validation[variant]["cosine"] <= 1.0 + 1e-9


def test_runtime_reads_the_exported_directory(exported_tiny_dir):
    from vidsort.modeldir import ModelDir

    model_dir = ModelDir.load(exported_tiny_dir, verify=True)
    assert model_dir.labels == kinetics_labels()
    assert model_dir.num_frames == 4 and model_dir.image_size == (32, 32)
    assert set(model_dir.variants) == {"fp32", "int8", "fp16"}


def test_report_and_progress(tiny_videomae_dir, tmp_path):
    lines: list[str] = []
    report = export_model(tiny_videomae_dir, tmp_path / "out", log=lines.append)
    assert report.out_dir == (tmp_path / "out").absolute()
    assert report.files == {k: v["sha256"] for k, v in report.manifest["files"].items()}
    assert report.validation["fp32"]["max_abs_diff"]["batch2"] <= 1e-4
    assert {"load", "export", "validate", "total"} <= set(report.timings)
    steps = " ".join(lines)
    for word in ("loading", "exporting", "optimizing", "validating"):
        assert word in steps
    assert lines[0].startswith("[") and "s] " in lines[0]
    assert "model.onnx" in lines[-1] and "fp32" in lines[-1]  # the validation table
    assert report.manifest["variants"] == {"fp32": "model.onnx"}
    assert report.manifest["quantization"] is None


def test_default_preprocessor_and_no_validation(tiny_videomae_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_videomae_dir, bare)
    (bare / "preprocessor_config.json").unlink()
    out = tmp_path / "out"
    report = export_quietly(bare, out, validate=False, optimize=False)
    pre = json.loads((out / "preprocessor_config.json").read_text())
    assert pre["crop_size"] == {"height": 32, "width": 32}
    assert pre["size"] == {"shortest_edge": 32}
    assert report.validation == {} and manifest_of(out)["validation"] == {}
    assert report.manifest["export"]["optimization"]["applied"] is False
    clips = np.zeros((1, 4, 3, 32, 32), np.float32)
    assert run_onnx(out / "model.onnx", clips).shape == (1, 400)


def test_external_data_travels_with_the_graph(tiny_videomae_dir, tmp_path, monkeypatch):
    # optimum's switch that forces the > 2 GB layout (weights in model.onnx_data) on a tiny model
    monkeypatch.setenv("FORCE_ONNX_EXTERNAL_DATA", "1")
    out = tmp_path / "out"
    report = export_quietly(tiny_videomae_dir, out, optimize=False, quantize="dynamic")
    assert "model.onnx_data" in report.files
    assert (out / "model.onnx").stat().st_size < (out / "model.onnx_data").stat().st_size
    assert report.validation["fp32"]["max_abs_diff"]["batch2"] <= 1e-4
    clips = np.ones((2, 4, 3, 32, 32), np.float32)
    assert run_onnx(out / "model.onnx", clips).shape == (2, 400)
    assert run_onnx(out / "model_quantized.onnx", clips).shape == (2, 400)


def test_quantization_options_override_defaults(tiny_videomae_dir, tmp_path):
    report = export_quietly(tiny_videomae_dir, tmp_path / "out", quantize="dynamic",
                            validate=False, optimize=False,
                            quantize_options={"per_channel": False, "reduce_range": False})
    quant = report.manifest["quantization"]
    assert quant["per_channel"] is False and quant["reduce_range"] is False
    with pytest.raises(ExportError, match="int4"):
        export_quietly(tiny_videomae_dir, tmp_path / "bad", quantize="dynamic",
                       quantize_options={"weight_type": "int4"})
    with pytest.raises(ExportError, match="unknown dynamic quantization option"):
        export_quietly(tiny_videomae_dir, tmp_path / "bad", quantize="dynamic",
                       quantize_options={"bits": 4})
    assert not (tmp_path / "bad").exists() and leftovers(tmp_path) == []


# -- static quantization ------------------------------------------------------------------------

def test_static_quantization_calibrates_on_real_videos(tiny_videomae_dir, tmp_path):
    pytest.importorskip("vidsort.decode", reason="vidsort.decode not written yet")
    pytest.importorskip("vidsort.preprocess", reason="vidsort.preprocess not written yet")
    from vidsort.testing.videogen import make_clip

    videos = tmp_path / "calib"
    videos.mkdir()
    for seed in range(2):
        make_clip(videos / f"clip{seed}.mp4", num_frames=24, width=64, height=48, seed=seed)
    (videos / "notes.txt").write_text("not a video: directories only yield video files")
    out = tmp_path / "out"
    report = export_quietly(tiny_videomae_dir, out, quantize="static", calibration=[videos])
    quant = report.manifest["quantization"]
    assert quant["mode"] == "static" and quant["format"] == "QDQ"
    assert quant["activation_type"] == "QUInt8" and quant["weight_type"] == "QInt8"
    assert quant["calibration"]["videos"] == ["clip0.mp4", "clip1.mp4"]
    assert quant["calibration"]["clips"] == 4  # 2 clips per video by default
    ops = {n.op_type for n in onnx.load(str(out / "model_quantized.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    clips = np.random.default_rng(3).standard_normal((2, 4, 3, 32, 32)).astype(np.float32)
    assert run_onnx(out / "model_quantized.onnx", clips).shape == (2, 400)
    assert report.validation["int8"]["cosine"] > 0.9
    # int8 measured on real calibration clips too (noise inputs exceed the calibrated ranges)
    real = report.validation["int8"]["calibration_clips"]
    assert real["clips"] == 4 and real["cosine"] > 0.99


def test_static_quantization_needs_calibration(tiny_videomae_dir, tmp_path):
    with pytest.raises(ExportError, match="calibration"):
        export_quietly(tiny_videomae_dir, tmp_path / "out", quantize="static")
    with pytest.raises(ExportError, match="static"):
        export_quietly(tiny_videomae_dir, tmp_path / "out", calibration=[tmp_path])
    assert not (tmp_path / "out").exists()


def test_missing_calibration_video_is_named(tiny_videomae_dir, tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(ExportError, match="nope.mp4"):
        export_quietly(tiny_videomae_dir, tmp_path / "out", quantize="static",
                       calibration=[missing])


# -- bad input ----------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ExportError, match="no-such-model") as info:
        export_quietly(missing, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_hub_id_offline_is_refused_with_reason(tmp_path):
    with pytest.raises(ExportError, match="HF_HUB_OFFLINE"):
        export_quietly("nobody-here/no-such-video-model", tmp_path / "out")


def test_bert_config_dir_is_not_a_video_classifier(tmp_path):
    from transformers import BertConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).save_pretrained(bert)
    with pytest.raises(ExportError, match="not a video classifier") as info:
        export_quietly(bert, tmp_path / "out")
    assert str(bert) in str(info.value)
    assert leftovers(tmp_path) == []


def test_unsupported_video_architecture(tmp_path):
    from transformers import VJEPA2Config

    vjepa2 = tmp_path / "vjepa2"  # a video classifier left out on purpose (vidsort.supported)
    VJEPA2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(vjepa2)
    with pytest.raises(ExportError, match="unsupported architecture 'vjepa2'"):
        export_quietly(vjepa2, tmp_path / "out")


def test_pretraining_checkpoint_has_no_head(tiny_videomae_dir, tmp_path):
    pretrain = tmp_path / "pretrain"
    shutil.copytree(tiny_videomae_dir, pretrain)
    config = json.loads((pretrain / "config.json").read_text())
    config["architectures"] = ["VideoMAEForPreTraining"]
    (pretrain / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="classification head"):
        export_quietly(pretrain, tmp_path / "out")


def test_missing_weights(tiny_videomae_dir, tmp_path):
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(tiny_videomae_dir / name, no_weights / name)
    with pytest.raises(ExportError, match="no weights") as info:
        export_quietly(no_weights, tmp_path / "out")
    assert str(no_weights) in str(info.value)


def test_weights_without_classifier_are_refused(tiny_videomae_dir, tmp_path):
    from safetensors.numpy import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(tiny_videomae_dir, partial)
    tensors = load_file(str(partial / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith("classifier.")},
              str(partial / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ExportError, match="classifier.weight"):
        export_quietly(partial, tmp_path / "out")


def test_non_empty_out_dir_is_refused_then_overwritten(tiny_videomae_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    with pytest.raises(ExportError, match="not empty"):
        export_quietly(tiny_videomae_dir, out)
    assert (out / "stale.txt").exists()
    export_quietly(tiny_videomae_dir, out, overwrite=True, validate=False, optimize=False)
    assert not (out / "stale.txt").exists()
    assert (out / "model.onnx").is_file() and (out / "vidsort.json").is_file()
    assert leftovers(tmp_path) == []


def test_empty_out_dir_is_used(tiny_videomae_dir, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    export_quietly(tiny_videomae_dir, out, validate=False, optimize=False)
    assert (out / "vidsort.json").is_file()


def test_failed_validation_leaves_no_directory(tiny_videomae_dir, tmp_path, monkeypatch):
    import vidsort.export.exporter as exporter

    # a zero tolerance no float graph can meet: the real failure path, end to end
    monkeypatch.setattr(exporter, "FP32_ATOL", 0.0)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_quietly(tiny_videomae_dir, out)
    assert not out.exists()
    assert leftovers(tmp_path) == []
    # an existing export survives a failed --overwrite
    out.mkdir()
    (out / "keep.txt").write_text("previous export")
    with pytest.raises(ExportError):
        export_quietly(tiny_videomae_dir, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "previous export"
    assert leftovers(tmp_path) == []


# -- the real architecture ----------------------------------------------------------------------

@pytest.mark.slow
def test_base_architecture_exports_and_validates(tmp_path):
    """VideoMAEConfig() defaults: 16 x 224 px, 400 labels (videomae-base-finetuned-kinetics)."""
    model_dir = build_videomae_dir(tmp_path / "base", base=True, processor=False)
    report = export_quietly(model_dir, tmp_path / "out")
    manifest = report.manifest
    assert manifest["input"]["shape"] == ["batch", 16, 3, 224, 224]
    assert manifest["output"]["shape"] == ["batch", 400]
    assert max(manifest["validation"]["fp32"]["max_abs_diff"].values()) <= 1e-4
    assert manifest["export"]["optimization"]["fused"].get("MultiHeadAttention") == 12
    pre = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
    assert pre["crop_size"] == {"height": 224, "width": 224}
