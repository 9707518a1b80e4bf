"""VideoPreprocessor: parity with transformers' VideoMAEImageProcessor (and Pillow), config
handling, errors. No timing here: speed is measured by benchmarks/bench_preprocess.py."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vidsort.errors import ModelDirError
from vidsort.preprocess import VideoPreprocessor, parse_config, resample_passes
from vidsort.preprocess.resample import (
    BICUBIC,
    BILINEAR,
    BOX,
    HAMMING,
    LANCZOS,
    NEAREST,
    AxisResampler,
    pil_coefficients,
)

VIDEOS = Path(__file__).parents[2].parent / "shared" / "videos"
MAX_ABS, MEAN_ABS = 0.035, 0.002  # the parity contract: ~2 uint8 levels max, tiny on average
VIDEOMAE_BASE = {
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 2, "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224}, "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}
RAW = {"do_rescale": False, "do_normalize": False}  # outputs are the resized uint8 values


def frames_for(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Noise on gradients: every pixel differs, so any misplaced tap or rounding shows."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 180, w)[None, :, None] + np.linspace(0, 60, h)[:, None, None]
    noise = rng.integers(0, 16, (t, h, w, 3))
    return np.clip(ramp[None] + noise + np.arange(t)[:, None, None, None], 0, 255).astype(np.uint8)


def reference(config: dict, frames: np.ndarray) -> np.ndarray:
    transformers = pytest.importorskip("transformers")
    processor = transformers.VideoMAEImageProcessor(**config)
    out = processor(list(frames), return_tensors="np")["pixel_values"]
    return np.asarray(out, dtype=np.float32)


def assert_parity(config: dict, frames: np.ndarray, max_abs=MAX_ABS, mean_abs=MEAN_ABS):
    expected = reference(config, frames)
    got = VideoPreprocessor.from_dict(config)(frames)
    assert got.shape == expected.shape
    assert got.dtype == np.float32 and got.flags.c_contiguous
    diff = np.abs(got - expected)
    assert diff.max() <= max_abs, f"max |delta| {diff.max()}"
    assert diff.mean() <= mean_abs, f"mean |delta| {diff.mean()}"
    return diff


def decode(name: str, count: int, step: int = 1) -> np.ndarray:
    av = pytest.importorskip("av")
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return np.stack(frames)


# --- parity with transformers -------------------------------------------------------------

@pytest.mark.parametrize("height,width", [
    (256, 340),  # Kinetics-style landscape
    (340, 256),  # portrait
    (224, 224),  # exactly the crop size: no resize at all
    (2, 2),  # upscaling from tiny
    (5, 7), (17, 31), (101, 203),  # odd sizes
    (225, 224), (224, 301),  # one pixel off / one axis only
    (600, 50),  # very tall: Pillow resizes rows first
])
def test_videomae_base_parity_on_awkward_sizes(height, width):
    diff = assert_parity(VIDEOMAE_BASE, frames_for(3, height, width))
    # the last rounding is exact and the first one misses ties by one level at most
    assert diff.max() <= 1.01 / 255 / 0.224


@pytest.mark.parametrize("config", [
    {"size": {"height": 100, "width": 150}, "crop_size": {"height": 120, "width": 90}},  # pad
    {"size": {"height": 64, "width": 48}, "do_center_crop": False},
    {"size": {"shortest_edge": 64}, "do_center_crop": False},
    {"size": {"shortest_edge": 160}, "crop_size": {"height": 200, "width": 180}},
    {"size": 96, "crop_size": 64},  # the old int form of VideoMAE configs
    {"do_resize": False, "crop_size": {"height": 50, "width": 60}},
    {"do_rescale": False, "image_mean": [100, 110, 120], "image_std": [50, 60, 70]},
    {"do_normalize": False},
    {"image_mean": 0.3, "image_std": 0.2},
    {"resample": NEAREST}, {"resample": BICUBIC}, {"resample": LANCZOS},
    {"resample": BOX}, {"resample": HAMMING},
    {"size": {"height": 80, "width": 80}, "resample": BICUBIC,
     "crop_size": {"height": 100, "width": 70}},
])
@pytest.mark.parametrize("height,width", [(120, 160), (160, 90), (37, 23)])
def test_config_variants_parity(config, height, width):
    diff = assert_parity(config, frames_for(2, height, width, seed=height))
    std = min(config.get("image_std", [0.5])) if not isinstance(config.get("image_std"), float) \
        else config["image_std"]
    scale = (1 / 255 if config.get("do_rescale", True) else 1.0) / std \
        if config.get("do_normalize", True) else (1 / 255 if config.get("do_rescale", True) else 1)
    assert diff.max() <= 1.01 * scale  # at most one uint8 level


@settings(max_examples=25, deadline=None)
@given(height=st.integers(2, 90), width=st.integers(2, 90), edge=st.integers(8, 64),
       crop=st.integers(8, 64), resample=st.sampled_from([NEAREST, BILINEAR, BICUBIC]))
def test_random_sizes_parity(height, width, edge, crop, resample):
    if height in (1, 3) or width in (1, 3):
        return  # transformers would read such an array as channels-first
    config = {"size": {"shortest_edge": edge}, "crop_size": {"height": crop, "width": crop},
              "resample": resample}
    assert_parity(config, frames_for(2, height, width, seed=height * 100 + width))


def test_real_clip_340x256_parity():
    frames = decode("arm_wrestling_340x256.mp4", 16, step=4)
    diff = assert_parity(VIDEOMAE_BASE, frames)
    assert diff.max() < 1e-5  # this size rounds exactly like Pillow


def test_real_clip_mpeg4_avi_parity():
    assert_parity(VIDEOMAE_BASE, decode("clip_mpeg4_320x240.avi", 8, step=3))


def test_real_clip_full_hd_parity():
    frames = decode("ntu_1080p_h264.avi", 6, step=15)
    assert frames.shape[1:] == (1080, 1920, 3)
    assert_parity(VIDEOMAE_BASE, frames)


def test_from_pretrained_matches_processor_saved_by_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = dict(VIDEOMAE_BASE, crop_size={"height": 112, "width": 96}, resample=3)
    transformers.VideoMAEImageProcessor(**config).save_pretrained(tmp_path)
    frames = frames_for(4, 90, 130)
    expected = transformers.VideoMAEImageProcessor.from_pretrained(tmp_path)(
        list(frames), return_tensors="np")["pixel_values"]
    ours = VideoPreprocessor.from_pretrained(tmp_path)
    assert ours.crop_size == (112, 96)
    diff = np.abs(ours(frames) - expected)
    assert diff.max() <= MAX_ABS and diff.mean() <= MEAN_ABS


# --- the resampling kernel against Pillow directly ----------------------------------------

@pytest.mark.parametrize("resample", [NEAREST, BOX, BILINEAR, HAMMING, BICUBIC, LANCZOS])
@pytest.mark.parametrize("src,dst", [
    ((48, 64), (17, 29)), ((30, 20), (61, 47)), ((256, 340), (224, 297)), ((40, 40), (40, 13)),
    # Pillow >= 13 resizes rows first when the height loses over twice the width's pixels
    ((300, 40), (30, 36)), ((120, 100), (50, 80)), ((120, 100), (80, 50)),
])
def test_resize_matches_pillow(resample, src, dst):
    image = pytest.importorskip("PIL.Image")
    frames = frames_for(1, *src, seed=7)
    expected = np.asarray(image.fromarray(frames[0]).resize(dst[::-1], resample=resample))
    config = dict(RAW, size={"height": dst[0], "width": dst[1]}, do_center_crop=False,
                  resample=resample)
    got = VideoPreprocessor.from_dict(config)(frames)[0, 0].transpose(1, 2, 0)
    diff = np.abs(got - expected)
    assert diff.max() <= 1  # float32 may miss a first-pass tie by one level
    assert (diff > 0).mean() < 0.002


def test_pil_coefficients_bilinear_antialias():
    first, fixed = pil_coefficients(8, 2, BILINEAR)  # shrink by 4: triangle 8 px wide
    assert first.tolist() == [0, 2]
    weights = fixed / 2**22
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    # output 0: centre 2.0, triangle of half-width 4 sampled at pixel centres 0.5 .. 5.5, the
    # part left of the image edge dropped, then normalised to sum to 1
    tent = 1 - np.abs(np.arange(6) + 0.5 - 2.0) / 4
    np.testing.assert_allclose(weights[0, :6], tent / tent.sum(), atol=1e-6)


def test_axis_resampler_only_reads_the_cropped_window():
    axis = AxisResampler(1920, 398, BILINEAR, start=87, stop=311)
    assert (axis.lo, axis.hi) == (417, 1503)  # 56% of the row, not all of it
    assert axis.matrix().shape == (224, axis.span)
    identity = AxisResampler(300, 300, BILINEAR, start=38, stop=262)
    assert identity.identity and (identity.lo, identity.hi) == (38, 262)


@pytest.mark.parametrize("size,resample,keep,block,slack", [
    ((1920, 398), BILINEAR, (87, 311), 4, 9),  # 1080p -> VideoMAE: uneven block starts
    ((340, 297), BICUBIC, (36, 260), 4, 9),    # negative lobes
    ((130, 61), LANCZOS, (0, 61), 3, 0),       # partial last block, no slack
    ((20, 47), BILINEAR, (0, 47), 4, 9),       # upscaling
    ((5, 2), BOX, (0, 2), 4, 9),               # one block
    ((1000, 224), HAMMING, (0, 224), 5, 30),
])
def test_window_plan_equals_the_dense_product(size, resample, keep, block, slack):
    axis = AxisResampler(*size, resample, *keep)
    plan = axis.windows(channels=3, block=block, slack=slack)
    rng = np.random.default_rng(1)
    rows = rng.uniform(0, 255, (7, 3 * axis.span)).astype(np.float32)
    expected = rows.astype(np.float64) @ np.kron(axis.matrix().T, np.eye(3))
    for before, fill in ((plan.lead, 0.0), (plan.lead + 6, 77.0)):
        # the input at `origin`; around it zeros, or other pixels (as when whole rows are
        # converted): their weights are 0 either way
        width = max(before + rows.shape[1], before + plan.reach) + 5
        buf = np.full((9, width), fill, np.float32)
        buf[:7, before:before + rows.shape[1]] = rows
        out = np.full((7, expected.shape[1]), np.nan, np.float32)
        plan.apply(buf, 7, before, out)
        np.testing.assert_allclose(out, expected, atol=2e-3)
    assert sum(g.windows for g in plan.groups) == -(-(keep[1] - keep[0]) // block)


@pytest.mark.parametrize("share", [0.0, 2.0])  # always / never convert whole rows
def test_columns_pass_reads_only_its_columns(monkeypatch, share):
    monkeypatch.setattr(resample_passes, "_WHOLE_ROWS_SHARE", share)
    axis = AxisResampler(340, 297, BILINEAR, 36, 260)
    frames = frames_for(3, 40, 340)
    band = np.ascontiguousarray(frames[:, :, axis.lo:axis.hi])
    expected = np.empty((3, 40, 224, 3), np.float32)
    resample_passes.resample_cols(band, axis, expected, True, _scratch())
    got = np.empty_like(expected)
    resample_passes.resample_cols(frames, axis, got, True, _scratch(), col0=axis.lo)
    np.testing.assert_array_equal(got, expected)
    poisoned = frames.copy()  # columns outside the axis' input must not matter
    poisoned[:, :, :axis.lo] = 255 - poisoned[:, :, :axis.lo]
    poisoned[:, :, axis.hi:] = 0
    resample_passes.resample_cols(poisoned, axis, got, True, _scratch(), col0=axis.lo)
    np.testing.assert_array_equal(got, expected)


def _scratch():
    buffers = {}

    def scratch(name, shape, dtype=np.float32):
        return buffers.setdefault((name, shape, np.dtype(dtype).str), np.empty(shape, dtype))
    return scratch


# --- behaviour ----------------------------------------------------------------------------

def test_output_layout_and_values_are_independent_of_threads_and_strides():
    frames = frames_for(5, 130, 170)
    one = VideoPreprocessor.from_dict(VIDEOMAE_BASE, num_threads=1)
    three = VideoPreprocessor.from_dict(VIDEOMAE_BASE, num_threads=3)
    out = one(frames)
    assert out.shape == (1, 5, 3, 224, 224) and out.dtype == np.float32
    np.testing.assert_array_equal(three(frames), out)
    bigger = np.zeros((5, 140, 180, 4), np.uint8)
    bigger[:, 5:135, 7:177, :3] = frames
    np.testing.assert_array_equal(one(bigger[:, 5:135, 7:177, :3]), out)  # a strided view
    np.testing.assert_array_equal(one(frames[2:3]), out[:, 2:3])  # frames are independent


def _child_call(pre, frames, queue):
    queue.put(pre(frames))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_usable_in_a_forked_child_after_threads_ran_in_the_parent():
    # pipelines keep preprocessors in a module cache and fork decode workers: the child must
    # not wait on the parent's worker threads, which do not exist after a fork
    pre = VideoPreprocessor.from_dict(VIDEOMAE_BASE, num_threads=2)
    frames = frames_for(4, 60, 80)
    expected = pre(frames)  # starts the parent's thread pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_call, args=(pre, frames, queue))
    child.start()
    try:
        got = queue.get(timeout=120)  # a hang would never deliver
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    np.testing.assert_array_equal(got, expected)


def test_one_frame_and_repeated_calls_with_other_sizes():
    pre = VideoPreprocessor.from_dict(VIDEOMAE_BASE)
    small, large = frames_for(1, 40, 60), frames_for(2, 300, 500)
    first = pre(small)
    pre(large)
    np.testing.assert_array_equal(pre(small), first)  # cached plans do not leak across sizes
    assert pre.output_size(300, 500) == (224, 224)


def test_crop_size_property():
    assert VideoPreprocessor.from_dict(VIDEOMAE_BASE).crop_size == (224, 224)
    assert VideoPreprocessor.from_dict({"crop_size": 160}).crop_size == (160, 160)
    free = VideoPreprocessor.from_dict({"do_center_crop": False,
                                        "size": {"height": 96, "width": 128}})
    assert free.crop_size == (96, 128)
    shortest = VideoPreprocessor.from_dict({"do_center_crop": False})
    assert shortest.crop_size is None and shortest.output_size(100, 200) == (224, 448)


@pytest.mark.parametrize("frames,message", [
    (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 3), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((2, 8, 8), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((2, 8, 8, 4), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((0, 8, 8, 3), np.uint8), "at least one"),
    (np.zeros((1, 0, 8, 3), np.uint8), "at least one"),
    ([[[[0, 0, 0]]]], "numpy array"),
])
def test_bad_frames_raise_value_error(frames, message):
    with pytest.raises(ValueError, match=message):
        VideoPreprocessor.from_dict(VIDEOMAE_BASE)(frames)


# --- config files -------------------------------------------------------------------------

def test_from_pretrained_missing_file_names_it(tmp_path):
    with pytest.raises(ModelDirError, match="preprocessor_config.json") as info:
        VideoPreprocessor.from_pretrained(tmp_path)
    assert str(tmp_path) in str(info.value) and "missing" in str(info.value)


@pytest.mark.parametrize("text,why", [
    ("{not json", "not valid JSON"),
    ("[1, 2, 3]", "JSON object"),
    (json.dumps({"resample": 9}), "resample"),
    (json.dumps({"size": {"longest_edge": 224}}), "size"),
    (json.dumps({"crop_size": "big"}), "crop_size"),
    (json.dumps({"image_mean": [0.5, 0.5]}), "image_mean"),
    (json.dumps({"image_std": [0.5, 0, 0.5]}), "image_std"),
    (json.dumps({"do_resize": "yes"}), "do_resize"),
    (json.dumps({"size": {"shortest_edge": 0}}), "positive"),
])
def test_from_pretrained_bad_config_names_file_and_reason(tmp_path, text, why):
    path = tmp_path / "preprocessor_config.json"
    path.write_text(text)
    with pytest.raises(ModelDirError, match=why) as info:
        VideoPreprocessor.from_pretrained(tmp_path)
    assert str(path) in str(info.value)


def test_from_pretrained_unreadable_bytes(tmp_path):
    (tmp_path / "preprocessor_config.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelDirError, match="preprocessor_config.json"):
        VideoPreprocessor.from_pretrained(tmp_path)


def test_parse_config_defaults_and_aliases():
    cfg = parse_config({"resample": "bicubic", "size": [120, 160], "crop_size": [100, 90],
                        "image_processor_type": "VideoMAEImageProcessor"})
    assert (cfg.resample, cfg.height, cfg.width) == (BICUBIC, 120, 160)
    assert (cfg.crop_height, cfg.crop_width) == (100, 90)
    defaults = parse_config({})
    assert defaults.shortest_edge == 224 and defaults.image_mean == (0.5, 0.5, 0.5)
    assert parse_config({"size": {"shortest_edge": 200, "longest_edge": 300}}).shortest_edge == 200
