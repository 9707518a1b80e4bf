"""TimeSformer and ViViT beside VideoMAE: export parity (fp32 at batch 1 and 2, int8 on real
clips, fp16), sampling defaults in the manifest, and `VideoClassifier` against the transformers
recipe on the shared real clips; every consumer of a model dir (classify, segments, bench, the
server) takes them as they are.

CI uses small random-weight models built from `TimesformerConfig` / `VivitConfig` with the real
clip lengths (8 and 32 frames); the ``slow`` tests export each at its default size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from vidsort import VideoClassifier, sample_indices
from vidsort.manifest import MANIFEST, VARIANT_FILES
from vidsort.supported import BY_MODEL_TYPE, SUPPORTED
from vidsort.testing.models import kinetics_labels

pytest.importorskip("optimum.exporters.onnx")

#: the two new families: tiny but with each one's real clip length and layout
TINY = {
    "timesformer": dict(num_frames=8, image_size=32, patch_size=16, hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "vivit": dict(num_frames=32, image_size=32, tubelet_size=[2, 16, 16], hidden_size=32,
                  num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
}
ARCHS = sorted(TINY)
VIDEOS = ("arm_wrestling_340x256.mp4", "short_32f.mp4", "ntu_1080p_h264.avi",
          "clip_mpeg4_320x240.avi")
FP32_ATOL = 1e-4  # the bar at batch 1 and 2
INT8_COSINE = 0.99  # the bar on real clips


def build_dir(path: Path, model_type: str, base: bool = False, head_gain: float = 40.0,
              processor: bool = True, seed: int = 0) -> Path:
    """Save a random-weight classifier (+ its own image processor) with save_pretrained.

    Biases are drawn non-zero (random init leaves them at zero, which would hide an export that
    drops them) and the head is scaled so that scores are well separated, as a trained head's.

    Args:
        path: directory to write.
        model_type: ``timesformer`` or ``vivit``.
        base: the config class's defaults (the real size) instead of `TINY`.
        head_gain: factor on the classifier weights.
        processor: also save the architecture's image processor.
        seed: torch seed.

    Returns:
        ``path``.
    """
    import torch
    import transformers

    labels = kinetics_labels()
    names = {"timesformer": ("TimesformerConfig", "TimesformerForVideoClassification"),
             "vivit": ("VivitConfig", "VivitForVideoClassification")}[model_type]
    config = getattr(transformers, names[0])(
        **({} if base else TINY[model_type]), num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(seed)
    model = getattr(transformers, names[1])(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.1)
        model.classifier.weight.mul_(head_gain)
    model.save_pretrained(path)
    if processor and model_type == "vivit":
        # ViViT's own processor (offset rescale), sizes scaled like the Hub one's 256 -> 224
        size = config.image_size
        transformers.VivitImageProcessor(size={"shortest_edge": size * 8 // 7},
                                         crop_size={"height": size, "width": size}
                                         ).save_pretrained(path)
    elif processor:
        # TimeSformer checkpoints ship a VideoMAEImageProcessor config (Kinetics mean/std)
        size = config.image_size
        transformers.VideoMAEImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size},
            image_mean=[0.45] * 3, image_std=[0.225] * 3).save_pretrained(path)
    return path


def vidsort_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidsort", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", params=ARCHS)
def exported(request, tmp_path_factory):
    """(model_type, hf_dir, onnx_dir): a tiny model exported by ``vidsort export`` (the user's
    command) with dynamic int8 and fp16."""
    model_type = request.param
    root = tmp_path_factory.mktemp(model_type)
    hf = build_dir(root / "hf", model_type)
    out = vidsort_cli("export", hf, root / "onnx", "--quantize", "dynamic", "--fp16")
    assert out.returncode == 0, out.stderr
    return model_type, hf, root / "onnx"


def torch_model(hf: Path):
    from transformers import AutoModelForVideoClassification

    return AutoModelForVideoClassification.from_pretrained(hf).eval()


def torch_logits(model, pixel_values: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()


def onnx_logits(path: Path, pixel_values: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"pixel_values": pixel_values})[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def real_clips(model_dir: Path, videos: Path, names=VIDEOS) -> list[np.ndarray]:
    """The runtime's own input for the shared clips (decode, sample, preprocess)."""
    from vidsort.modeldir import ModelDir
    from vidsort.pipeline import PrepareSpec, prepare_clip

    model = ModelDir.load(model_dir)
    spec = PrepareSpec(model.preprocess, clip_len=model.clip_len,
                       frame_sample_rate=model.frame_sample_rate)
    return [prepare_clip(videos / name, spec).pixel_values for name in names]


def transformers_recipe(hf: Path, video: Path, indices: list[int], top_k: int = 5) -> list[dict]:
    """The transformers recipe on given frames: PyAV decode (rgb24), the checkpoint's own
    processor through AutoImageProcessor, PyTorch eager, softmax, top-k."""
    import av
    import torch
    from transformers import AutoImageProcessor

    wanted, frames = set(indices), {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= max(indices):
                break
    processor = AutoImageProcessor.from_pretrained(hf)
    model = torch_model(hf)
    inputs = processor([frames[i] for i in indices], return_tensors="pt")
    with torch.no_grad():
        probs = model(**inputs).logits[0].softmax(-1)
    top = probs.topk(top_k)
    return [{"label": model.config.id2label[int(i)], "score": float(s)}
            for s, i in zip(top.values, top.indices, strict=True)]


# --- registry and manifest ----------------------------------------------------------------

def test_every_supported_row_has_an_export_config():
    from vidsort.export.onnx_config import onnx_config_for, supported_model_types

    assert set(supported_model_types()) == set(BY_MODEL_TYPE) == {"videomae", "timesformer",
                                                                  "vivit"}
    import transformers

    for arch in SUPPORTED:
        config = transformers.AutoConfig.for_model(arch.model_type)
        onnx_config = onnx_config_for(config)
        assert list(onnx_config.inputs) == ["pixel_values"]
        assert list(onnx_config.outputs) == ["logits"]
        dummy = onnx_config.generate_dummy_inputs(framework="pt")["pixel_values"]
        assert tuple(dummy.shape[1:]) == (config.num_frames, 3, config.image_size,
                                          config.image_size)


def test_manifest_records_the_architecture_and_its_sampling(exported):
    model_type, hf, onnx_dir = exported
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    frames = TINY[model_type]["num_frames"]
    assert manifest["model_type"] == model_type
    assert manifest["sampling"] == {"clip_len": frames,
                                    "frame_sample_rate": BY_MODEL_TYPE[model_type]
                                    .frame_sample_rate, "strategy": "centre"}
    assert manifest["input"]["shape"] == ["batch", frames, 3, 32, 32]
    assert manifest["export"]["preprocessor_config"] == "copied"
    assert set(manifest["variants"]) == set(VARIANT_FILES)


def test_graph_has_a_dynamic_batch_and_the_clip_shape(exported):
    import onnx

    model_type, _, onnx_dir = exported
    graph = onnx.load(str(onnx_dir / "model.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == \
        [TINY[model_type]["num_frames"], 3, 32, 32]
    # no control flow: ONNX Runtime's shape inference (quantization, fusions) must see through
    assert not [n for n in graph.node if n.op_type == "If"]


# --- parity -------------------------------------------------------------------------------

def test_fp32_matches_pytorch_at_batch_1_and_2(exported):
    model_type, hf, onnx_dir = exported
    figures = json.loads((onnx_dir / MANIFEST).read_text())["validation"]["fp32"]
    assert max(figures["max_abs_diff"].values()) <= FP32_ATOL
    # and independently of the export's own check, on other inputs
    model = torch_model(hf)
    shape = (TINY[model_type]["num_frames"], 3, 32, 32)
    for batch in (1, 2):
        x = np.random.default_rng(batch + 10).standard_normal((batch, *shape)).astype(np.float32)
        diff = np.abs(onnx_logits(onnx_dir / "model.onnx", x) - torch_logits(model, x))
        assert diff.max() <= FP32_ATOL, f"batch {batch}: {diff.max():.2e}"


def test_int8_and_fp16_stay_close_on_real_clips(exported, shared_videos):
    model_type, hf, onnx_dir = exported
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    assert manifest["quantization"]["preprocessed"] is True  # quant_pre_process ran
    model = torch_model(hf)
    for clip in real_clips(onnx_dir, shared_videos):
        reference = torch_logits(model, clip)
        int8 = onnx_logits(onnx_dir / VARIANT_FILES["int8"], clip)
        assert cosine(int8, reference) >= INT8_COSINE
        fp16 = onnx_logits(onnx_dir / VARIANT_FILES["fp16"], clip)
        assert cosine(fp16, reference) >= 0.999


@pytest.mark.parametrize("name", VIDEOS)
def test_classifier_matches_the_transformers_recipe_on_real_clips(exported, shared_videos, name):
    model_type, hf, onnx_dir = exported
    clf = VideoClassifier(onnx_dir, precision="fp32", provider="cpu", isolation=None)
    result = next(clf.classify_many([shared_videos / name], top_k=5))
    arch = BY_MODEL_TYPE[model_type]
    # the model's own sampling defaults: clip length from its config, stride from the table
    assert result["frames"] == sample_indices(result["num_video_frames"],
                                              TINY[model_type]["num_frames"],
                                              arch.frame_sample_rate, "centre").tolist()
    reference = transformers_recipe(hf, shared_videos / name, result["frames"])
    ours = result["predictions"]
    assert [p["label"] for p in ours] == [p["label"] for p in reference]
    for a, b in zip(ours, reference, strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-3
    assert ours[0]["score"] > 2 * ours[4]["score"]  # separated: the same order means something


# clips holding TimeSformer's 8 x 32 window: the pipeline crashes on shorter videos (its decoder
# returns fewer frames than the clip length), where vidsort clamps the indices to the last frame
@pytest.mark.parametrize("name", ["arm_wrestling_340x256.mp4", "clip_340x256_300f.mp4"])
def test_classifier_matches_the_transformers_pipeline(exported, shared_videos, name):
    """``pipeline("video-classification")`` on the same frames: its window starts at frame 0
    (vidsort's ``start`` strategy) with the stride it is given."""
    from transformers import pipeline

    model_type, hf, onnx_dir = exported
    rate = BY_MODEL_TYPE[model_type].frame_sample_rate
    reference = pipeline("video-classification", model=str(hf))(
        str(shared_videos / name), top_k=5, frame_sampling_rate=rate)
    clf = VideoClassifier(onnx_dir, precision="fp32", provider="cpu", strategy="start",
                          isolation=None)
    ours = clf(shared_videos / name, top_k=5)
    assert [p["label"] for p in ours] == [p["label"] for p in reference]
    for a, b in zip(ours, reference, strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-3


# --- sampling defaults and overrides ------------------------------------------------------

def test_sampling_defaults_can_be_overridden(exported, tmp_path):
    model_type, hf, _ = exported
    from vidsort.export import export_model

    out = export_model(hf, tmp_path / "onnx", frame_sample_rate=3, validate=False,
                       optimize=False, log=None).out_dir
    assert json.loads((out / MANIFEST).read_text())["sampling"]["frame_sample_rate"] == 3
    frames = np.zeros((200, 40, 48, 3), np.uint8)
    clf = VideoClassifier(out, provider="cpu", frame_sample_rate=5, isolation=None)
    result = next(clf.classify_many([frames]))
    clip_len = TINY[model_type]["num_frames"]
    assert result["frames"] == sample_indices(200, clip_len, 5, "centre").tolist()


def test_default_preprocessor_is_the_architectures_own(tmp_path):
    from vidsort.export import export_model
    from vidsort.modeldir import ModelDir

    hf = build_dir(tmp_path / "hf", "vivit", processor=False)
    report = export_model(hf, tmp_path / "onnx", validate=False, optimize=False, log=None)
    assert report.manifest["export"]["preprocessor_config"] == "default"
    written = json.loads((report.out_dir / "preprocessor_config.json").read_text())
    assert written["image_processor_type"] == "VivitImageProcessor" and written["offset"]
    model = ModelDir.load(report.out_dir)
    assert model.preprocess.offset and (model.preprocess.crop_height, model.clip_len) == (32, 32)


# --- every consumer of a model dir --------------------------------------------------------

def test_classify_command(exported, shared_videos):
    _, _, onnx_dir = exported
    out = vidsort_cli("classify", onnx_dir, shared_videos / VIDEOS[0],
                      shared_videos / "missing.mp4", "--json", "--top-k", "3")
    assert out.returncode == 1, out.stderr  # one input missing: exit 1, the other classified
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines[0]["predictions"]) == 3 and lines[0]["precision"] == "int8"
    assert "error" in lines[1]


def test_segments(exported, shared_videos):
    _, _, onnx_dir = exported
    clf = VideoClassifier(onnx_dir, provider="cpu", isolation=None)
    result = clf.classify_segments(shared_videos / "clip_340x256_300f.mp4", top_k=3)
    assert result["windows"] and result["labels"]
    assert {p["label"] for p in result["labels"]} <= set(clf.labels)


def test_bench_command(exported, tmp_path):
    from vidsort.testing.videogen import make_clip

    _, _, onnx_dir = exported
    clip = make_clip(tmp_path / "clip.mp4", num_frames=40)
    out = vidsort_cli("bench", onnx_dir, "--batch", "1", "--seconds", "0", "--threads", "1",
                      "--precision", "fp32", "int8", "--video", clip,
                      "--json", tmp_path / "bench.json")
    assert out.returncode == 0, out.stderr
    records = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert {r["precision"] for r in records if r["kind"] == "model"} == {"fp32", "int8"}


def test_server(exported, shared_videos, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient
    from vidsort.serve.app import create_app
    from vidsort.serve.service import InferenceService
    from vidsort.serve.settings import ServeSettings

    _, _, onnx_dir = exported
    video = shared_videos / VIDEOS[0]
    service = InferenceService.load(ServeSettings(str(onnx_dir), tmp_dir=str(tmp_path)))
    try:
        with TestClient(create_app(service)) as client:
            r = client.post("/v1/classify?top_k=3", files={"video": (video.name,
                                                                     video.read_bytes())})
    finally:
        service.preparer.close()
    assert r.status_code == 200, r.text
    offline = VideoClassifier(onnx_dir, isolation=None)(video, top_k=3)
    assert [p["label"] for p in r.json()["predictions"]] == [p["label"] for p in offline]


# --- default size -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("model_type", ARCHS)
def test_default_size_exports_and_validates(model_type, tmp_path, shared_videos):
    """The config class's default shapes (TimeSformer-Base 8x224, ViViT-B 32x224), random
    weights: fp32 within 1e-4 at batch 1 and 2, int8 dynamic cosine >= 0.99 on real clips, fp16
    written and close (run on CPU)."""
    from vidsort.export import export_model

    hf = build_dir(tmp_path / "hf", model_type, base=True, head_gain=1.0)
    report = export_model(hf, tmp_path / "onnx", quantize="dynamic", fp16=True, log=None)
    fp32 = report.validation["fp32"]["max_abs_diff"]
    assert set(fp32) == {"batch1", "batch2"} and max(fp32.values()) <= FP32_ATOL
    model = torch_model(hf)
    for clip in real_clips(report.out_dir, shared_videos, names=VIDEOS[:2]):
        reference = torch_logits(model, clip)
        int8 = onnx_logits(report.out_dir / VARIANT_FILES["int8"], clip)
        assert cosine(int8, reference) >= INT8_COSINE
        fp16 = onnx_logits(report.out_dir / VARIANT_FILES["fp16"], clip)
        assert cosine(fp16, reference) >= 0.999
