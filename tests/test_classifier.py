"""VideoClassifier and `vidsort classify` end to end, against the seed recipe on real clips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from vidsort import VideoClassifier, sample_indices
from vidsort.errors import UnsupportedInputError, VideoNotFoundError
from vidsort.testing.models import build_videomae_dir
from vidsort.testing.videogen import make_clip

#: 16 frames like the real models (so the 64-frame window and short-video stretch are exercised)
PARITY_CONFIG = dict(num_frames=16, image_size=64, hidden_size=48, intermediate_size=96,
                     num_attention_heads=2, num_hidden_layers=2)


@pytest.fixture(scope="module")
def parity_dirs(tmp_path_factory):
    """A 16x64 VideoMAE whose head is scaled so scores are well separated, and its export."""
    pytest.importorskip("optimum.exporters.onnx")
    import torch
    from transformers import VideoMAEForVideoClassification
    from vidsort.export import export_model

    root = tmp_path_factory.mktemp("parity")
    hf = build_videomae_dir(root / "hf", seed=7, **PARITY_CONFIG)
    model = VideoMAEForVideoClassification.from_pretrained(hf)
    with torch.no_grad():  # random init gives near-uniform scores; spread them like a trained head
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(hf)
    export_model(hf, root / "onnx", log=None)
    return hf, root / "onnx"


def seed_recipe(hf_dir: Path, video: Path, top_k: int = 5) -> list[dict]:
    """The recipe vidsort replaces: decord frames → VideoMAEImageProcessor → PyTorch eager."""
    import decord
    import torch
    from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

    model = VideoMAEForVideoClassification.from_pretrained(hf_dir).eval()
    processor = VideoMAEImageProcessor.from_pretrained(hf_dir)
    reader = decord.VideoReader(str(video), num_threads=1)
    indices = sample_indices(len(reader), model.config.num_frames, 4, "centre")
    frames = reader.get_batch(indices).asnumpy()
    with torch.inference_mode():
        logits = model(**processor(list(frames), return_tensors="pt")).logits[0]
    probs = logits.softmax(-1)
    top = probs.topk(top_k)
    return [{"label": model.config.id2label[int(i)], "score": float(s)}
            for s, i in zip(top.values, top.indices, strict=True)]


@pytest.mark.parametrize("name", ["arm_wrestling_340x256.mp4", "short_32f.mp4",
                                  "ntu_1080p_h264.avi", "clip_mpeg4_320x240.avi"])
def test_matches_the_seed_recipe_on_real_clips(parity_dirs, shared_videos, name):
    hf, onnx_dir = parity_dirs
    clf = VideoClassifier(onnx_dir, precision="fp32", provider="cpu")
    ours = clf(shared_videos / name, top_k=5)
    reference = seed_recipe(hf, shared_videos / name)
    assert [p["label"] for p in ours] == [p["label"] for p in reference]
    for a, b in zip(ours, reference, strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-3
    # scores well separated, so the same top-5 order means something
    assert ours[0]["score"] > 2 * ours[4]["score"]


def test_predictions_shape_and_labels(exported_tiny_dir, shared_videos):
    clf = VideoClassifier(exported_tiny_dir, precision="fp32")
    preds = clf(shared_videos / "arm_wrestling_340x256.mp4", top_k=5)
    labels = json.loads((exported_tiny_dir / "config.json").read_text())["id2label"].values()
    assert len(preds) == 5 and {p["label"] for p in preds} <= set(labels)
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_frames_array_equals_path(exported_tiny_dir, tmp_path):
    from vidsort.decode import read_frames

    video = make_clip(tmp_path / "a.mp4", num_frames=40, width=64, height=48)
    clf = VideoClassifier(exported_tiny_dir, precision="fp32")
    all_frames = read_frames(video, lambda n: np.arange(n)).frames
    from_path = clf(video, top_k=3)
    from_array = clf(all_frames, top_k=3)
    assert [p["label"] for p in from_path] == [p["label"] for p in from_array]
    np.testing.assert_allclose([p["score"] for p in from_path],
                               [p["score"] for p in from_array], atol=1e-5)
    with pytest.raises(UnsupportedInputError):
        clf(np.zeros((4, 8, 8), np.float32))
    with pytest.raises(VideoNotFoundError, match="missing.mp4"):
        clf(tmp_path / "missing.mp4")


def test_classify_many_keeps_order_and_survives_bad_files(exported_tiny_dir, tmp_path):
    good = [make_clip(tmp_path / f"g{i}.mp4", num_frames=20 + i, seed=i) for i in range(4)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    inputs = [good[0], bad, good[1], tmp_path / "nope.mp4", good[2], good[3]]
    clf = VideoClassifier(exported_tiny_dir, precision="fp32")
    one = list(clf.classify_many(inputs, top_k=2))
    four = list(clf.classify_many(inputs, top_k=2, batch_size=4))
    assert [r["video"] for r in one] == [str(p) for p in inputs] == [r["video"] for r in four]
    assert ["error" in r for r in one] == [False, True, False, True, False, False]
    assert one[1]["error"]["type"] == "VideoDecodeError" and "bad.mp4" in one[1]["error"]["message"]
    for a, b in zip(one, four, strict=True):
        if "predictions" in a:
            assert a["predictions"][0]["label"] == b["predictions"][0]["label"]
            score_a, score_b = a["predictions"][0]["score"], b["predictions"][0]["score"]
            assert score_a == pytest.approx(score_b, abs=1e-5)
            assert a["frames"] == b["frames"] and a["backend"] == b["backend"]


def test_multi_clip_averages_logits(exported_tiny_dir, tmp_path):
    video = make_clip(tmp_path / "long.mp4", num_frames=90, width=64, height=48)
    clf = VideoClassifier(exported_tiny_dir, precision="fp32", num_clips=3)
    (result,) = clf.classify_many([video], top_k=400, function="none")
    assert len(result["frames"]) == 3 * clf.model.clip_len
    from vidsort.pipeline import prepare_clip

    prepared = prepare_clip(video, clf.spec)
    mean = clf.predict_logits(prepared.pixel_values).mean(axis=0)
    by_label = {p["label"]: p["score"] for p in result["predictions"]}
    np.testing.assert_allclose([by_label[label] for label in clf.labels], mean, atol=1e-5)


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "vidsort", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_cli_json_lines_and_exit_codes(exported_tiny_dir, tmp_path):
    good = make_clip(tmp_path / "ok clip é.mp4", num_frames=24)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = run_cli("classify", exported_tiny_dir, good, empty, "--json", "--top-k", "3")
    assert out.returncode == 1, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["video"] for line in lines] == [str(good), str(empty)]
    assert len(lines[0]["predictions"]) == 3
    assert lines[1]["error"]["type"] == "VideoDecodeError"
    assert "Traceback" not in out.stderr

    ok = run_cli("classify", exported_tiny_dir, good)
    assert ok.returncode == 0 and "1." in ok.stdout and "Traceback" not in ok.stderr


def test_cli_model_and_usage_errors_exit_2(tmp_path):
    out = run_cli("classify", tmp_path / "no-model", tmp_path / "v.mp4")
    assert out.returncode == 2 and "no-model" in out.stderr and "Traceback" not in out.stderr
    assert run_cli("classify").returncode == 2
    export_bad = run_cli("export", tmp_path / "missing-model", tmp_path / "out")
    assert export_bad.returncode == 2 and "Traceback" not in export_bad.stderr
