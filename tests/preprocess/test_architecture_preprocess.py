"""Preprocessing parity per architecture: ViViT's `VivitImageProcessor` (offset rescale, its own
defaults) and TimeSformer's VideoMAE-style config, against transformers on the shared real clips
(1080p included) and on awkward sizes; config defaults and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_preprocess import decode  # the shared clips, decoded with PyAV
from vidsort.errors import ModelDirError
from vidsort.modeldir import ModelDir
from vidsort.preprocess import VideoPreprocessor, parse_config
from vidsort.preprocess.config import PROCESSOR_DEFAULTS
from vidsort.supported import BY_MODEL_TYPE, SUPPORTED

MEAN_ABS = 2e-3  # the bound on the mean |Δ|; the max is one uint8 level (`level`)
#: VivitImageProcessor() as google/vivit-b-16x2-kinetics400 configures it (the class defaults)
VIVIT = {"image_processor_type": "VivitImageProcessor"}
#: the VideoMAE-style processor config of TimeSformer checkpoints (Kinetics mean/std)
TIMESFORMER = {"image_processor_type": "VideoMAEImageProcessor", "size": {"shortest_edge": 224},
               "crop_size": {"height": 224, "width": 224}, "image_mean": [0.45, 0.45, 0.45],
               "image_std": [0.225, 0.225, 0.225], "resample": 2, "rescale_factor": 1 / 255}
CONFIGS = {"vivit": VIVIT, "timesformer": TIMESFORMER}


def transformers_processor(config: dict):
    """The transformers class the config names, built from it (as from_pretrained does)."""
    transformers = pytest.importorskip("transformers")
    fields = {k: v for k, v in config.items() if k != "image_processor_type"}
    return getattr(transformers, config["image_processor_type"])(**fields)


def level(config: dict) -> float:
    """One uint8 level after rescale and normalise (the largest over the channels)."""
    cfg = parse_config(config)
    factor = cfg.rescale_factor if cfg.do_rescale else 1.0
    return factor / min(cfg.image_std) if cfg.do_normalize else factor


def assert_parity(config: dict, frames: np.ndarray) -> np.ndarray:
    expected = np.asarray(transformers_processor(config)(list(frames), return_tensors="np")
                          ["pixel_values"], dtype=np.float32)
    got = VideoPreprocessor.from_dict(config)(frames)
    assert got.shape == expected.shape
    diff = np.abs(got - expected)
    assert diff.max() <= 1.01 * level(config), f"max |delta| {diff.max()}"
    assert diff.mean() <= MEAN_ABS, f"mean |delta| {diff.mean()}"
    return diff


def noise_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 50, h)[:, None, None]
    return np.clip(ramp[None] + rng.integers(0, 6, (t, h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
@pytest.mark.parametrize("name,count,step", [
    ("arm_wrestling_340x256.mp4", 8, 4), ("clip_mpeg4_320x240.avi", 6, 5),
    ("short_32f.mp4", 4, 8), ("ntu_1080p_h264.avi", 4, 25),
])
def test_real_clip_parity(arch, name, count, step):
    frames = decode(name, count, step)
    assert_parity(CONFIGS[arch], frames)


def test_full_hd_is_really_full_hd():
    assert decode("ntu_1080p_h264.avi", 1, 1).shape[1:] == (1080, 1920, 3)


@pytest.mark.parametrize("config", [
    {},  # VivitImageProcessor defaults
    {"offset": False, "rescale_factor": 1 / 255},  # plain rescale
    {"do_normalize": False},  # offset alone: x / 127.5 - 1
    {"image_mean": [0.45, 0.4, 0.35], "image_std": [0.225, 0.25, 0.2]},
    {"size": {"height": 60, "width": 90}, "crop_size": {"height": 80, "width": 70}},  # padding
    {"size": 48, "crop_size": 40, "resample": 3},  # int forms, bicubic
    {"do_resize": False, "crop_size": {"height": 30, "width": 20}},
])
@pytest.mark.parametrize("height,width", [(120, 160), (90, 50), (31, 33)])
def test_vivit_config_variants_parity(config, height, width):
    full = {**VIVIT, **config}
    assert_parity(full, noise_frames(2, height, width, seed=height + width))


def test_vivit_padding_value_is_the_offset_normalised_zero():
    # transformers pads with 0 before rescale: 0 / 127.5 - 1 = -1, normalised (-1 - .5) / .5 = -3
    config = {**VIVIT, "size": {"height": 10, "width": 10},
              "crop_size": {"height": 14, "width": 14}}
    out = VideoPreprocessor.from_dict(config)(noise_frames(1, 10, 10))
    assert np.allclose(out[0, 0, :, 0, :], -3.0) and np.allclose(out[0, 0, :, :, 0], -3.0)
    assert_parity(config, noise_frames(1, 10, 10))


def test_each_processor_uses_its_own_defaults():
    vivit = parse_config({}, default_processor="VivitImageProcessor")
    assert (vivit.shortest_edge, vivit.crop_height, vivit.offset) == (256, 224, True)
    assert vivit.rescale_factor == pytest.approx(1 / 127.5)
    assert vivit.affine() == (pytest.approx((1 / 63.75,) * 3), pytest.approx((-3.0,) * 3))
    videomae = parse_config({})
    assert (videomae.shortest_edge, videomae.offset, videomae.processor) == \
        (224, False, "VideoMAEImageProcessor")
    # the named class wins over the default, and VideoMAE ignores ViViT's key like transformers
    assert parse_config({"image_processor_type": "VideoMAEImageProcessor", "offset": True},
                        default_processor="VivitImageProcessor").offset is False


def test_transformers_defaults_are_the_ones_in_the_table():
    transformers = pytest.importorskip("transformers")
    for name, defaults in PROCESSOR_DEFAULTS.items():
        if name.endswith("FeatureExtractor"):
            continue  # removed alias of VideoMAEImageProcessor
        processor = getattr(transformers, name)()
        assert processor.size == defaults["size"]
        assert processor.rescale_factor == pytest.approx(defaults["rescale_factor"])
        assert getattr(processor, "offset", False) == defaults.get("offset", False)
        cfg = parse_config({"image_processor_type": name})
        assert (cfg.crop_height, cfg.crop_width) == (processor.crop_size["height"],
                                                     processor.crop_size["width"])
        assert cfg.resample == int(processor.resample)
        assert cfg.image_mean == tuple(processor.image_mean)


@pytest.mark.parametrize("config,why", [
    ({**VIVIT, "offset": "yes"}, "offset must be true or false"),
    ({**VIVIT, "do_rescale": False}, "offset needs do_rescale"),
    ({"image_processor_type": "VJEPA2VideoProcessor"}, "not one the runtime reproduces"),
])
def test_bad_configs_are_value_errors(config, why):
    with pytest.raises(ValueError, match=why):
        parse_config(config)


def _model_dir(path: Path, model_type: str, processor: dict) -> Path:
    """A bare model directory (config.json + preprocessor_config.json + a placeholder graph)."""
    arch = BY_MODEL_TYPE[model_type]
    path.mkdir()
    (path / "config.json").write_text(json.dumps(
        {"model_type": model_type, "architectures": list(arch.classes), "num_frames": 8,
         "image_size": 32, "id2label": {"0": "a", "1": "b"}}))
    (path / "preprocessor_config.json").write_text(json.dumps(processor))
    (path / "model.onnx").write_bytes(b"not read by ModelDir.load")
    return path


def test_from_pretrained_without_a_type_uses_the_models_own_processor(tmp_path):
    # no image_processor_type: a ViViT dir gets VivitImageProcessor's offset and sizes
    model_dir = _model_dir(tmp_path / "vivit", "vivit", {})
    ours = VideoPreprocessor.from_pretrained(model_dir)
    assert ours.config.processor == "VivitImageProcessor" and ours.config.offset
    frames = noise_frames(2, 300, 280)
    expected = transformers_processor(VIVIT)(list(frames), return_tensors="np")["pixel_values"]
    assert np.abs(ours(frames) - expected).max() <= 1.01 * level(VIVIT)
    assert ModelDir.load(model_dir).preprocess == ours.config


@pytest.mark.parametrize("arch", SUPPORTED, ids=lambda a: a.model_type)
def test_model_dir_reads_every_row(tmp_path, arch):
    model = ModelDir.load(_model_dir(tmp_path / arch.model_type, arch.model_type, {}))
    assert model.model_type == arch.model_type
    assert model.preprocess.processor == arch.processors[0]
    assert (model.clip_len, model.frame_sample_rate) == (8, arch.frame_sample_rate)


@pytest.mark.parametrize("model_type,processor", [
    ("vivit", "VideoMAEImageProcessor"), ("timesformer", "VivitImageProcessor"),
    ("videomae", "VivitImageProcessor"),
])
def test_a_processor_of_another_architecture_is_refused(tmp_path, model_type, processor):
    model_dir = _model_dir(tmp_path / "m", model_type, {"image_processor_type": processor})
    with pytest.raises(ModelDirError) as info:
        ModelDir.load(model_dir)
    message = str(info.value)
    assert "\n" not in message and "preprocessor_config.json" in message
    assert processor in message and BY_MODEL_TYPE[model_type].processors[0] in message


def test_vjepa2_is_refused_with_the_supported_list(tmp_path):
    model_dir = _model_dir(tmp_path / "m", "vivit", {})
    config = json.loads((model_dir / "config.json").read_text())
    config.update(model_type="vjepa2", architectures=["VJEPA2ForVideoClassification"])
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelDirError, match="'vjepa2' is not supported.*timesformer.*vivit"):
        ModelDir.load(model_dir)
