"""The motion renderer behind the embedded ``tiny-motion`` model (`synthetic`)."""

from __future__ import annotations

import subprocess
import sys

import av
import numpy as np
import pytest
from vidsort.export.demo import synthetic as S
from vidsort.export.demo.synthetic import (
    LABELS,
    OPPOSITE,
    clip_params,
    draw_frames,
    render_clip,
    write_clip,
)

SMALL = {"width": 192, "height": 144, "fps": 24, "seconds": 2.0}


def _mask(frames: np.ndarray, params: dict) -> np.ndarray:
    """Pixels that differ from a solid background: (T, H, W) bool."""
    bg = np.asarray(params["background"]["colours"][0], np.float32)
    return np.abs(frames.astype(np.float32) - bg).max(-1) > 40


def _turn(mask_a: np.ndarray, mask_b: np.ndarray, centre, radius: float) -> float:
    """Degrees the shape turned from a to b (positive: clockwise on screen), from its pixels."""
    phi = np.radians(np.arange(360))
    rings = np.linspace(0.35, 0.95, 8) * radius
    xs = (centre[0] + rings[:, None] * np.cos(phi)).astype(int)
    ys = (centre[1] + rings[:, None] * np.sin(phi)).astype(int)
    pa = mask_a[ys, xs].mean(0) - 0.5
    pb = mask_b[ys, xs].mean(0) - 0.5
    shifts = np.arange(-45, 46)
    score = [np.dot(np.roll(pa, s), pb) for s in shifts]
    return float(shifts[int(np.argmax(score))])


def motion_of(frames: np.ndarray, params: dict) -> str:
    """Name the motion in the pixels of a clip over a solid background, without the model."""
    mask = _mask(frames, params)
    area = mask.sum((1, 2)).astype(float)
    if area[-1] > 1.3 * area[0] or area[0] > 1.3 * area[-1]:
        return "growing" if area[-1] > area[0] else "shrinking"
    ys, xs = np.nonzero(mask[0])
    y1, x1 = np.nonzero(mask[-1])
    dx, dy = x1.mean() - xs.mean(), y1.mean() - ys.mean()
    if max(abs(dx), abs(dy)) > 0.02 * params["width"]:
        if abs(dx) > abs(dy):
            return "moving right" if dx > 0 else "moving left"
        return "moving down" if dy > 0 else "moving up"
    centre, radius = params["centres"][0], float(params["radii"][0])
    turns = [_turn(mask[t], mask[t + 2], centre, radius) for t in range(0, len(frames) - 2, 5)]
    return "rotating clockwise" if np.median(turns) > 0 else "rotating counterclockwise"


@pytest.mark.parametrize("label", LABELS)
def test_pixels_move_as_the_label_says_and_reversed_clips_show_the_opposite(label):
    for seed in range(3):
        clip = render_clip(label, seed, style="solid", **SMALL)
        assert motion_of(clip.frames, clip.params) == label, (label, seed)
        assert motion_of(clip.frames[::-1], clip.params) == OPPOSITE[label], (label, seed)


def test_moving_right_centroid_moves_right_every_few_frames():
    clip = render_clip("moving right", 7, style="solid", **SMALL)
    mask = _mask(clip.frames, clip.params)
    xs = [np.nonzero(m)[1].mean() for m in mask[::6]]
    assert np.all(np.diff(xs) > 0)
    step = np.diff(clip.params["centres"][:, 0]).mean()
    assert np.diff(xs).mean() == pytest.approx(6 * step, rel=0.2)


def test_rotation_turns_by_the_planned_angle_per_frame():
    clip = render_clip("rotating clockwise", 3, style="solid", **SMALL)
    p = clip.params
    per_frame = float(np.diff(p["angles"]).mean())
    assert S.ROTATION[0] <= per_frame <= S.ROTATION[1]
    mask = _mask(clip.frames, p)
    turned = _turn(mask[0], mask[4], p["centres"][0], float(p["radii"][0]))
    assert turned == pytest.approx(4 * per_frame, abs=4)


def test_same_seed_same_clip_other_seed_other_clip():
    a, b = render_clip("growing", 11, **SMALL), render_clip("growing", 11, **SMALL)
    assert np.array_equal(a.frames, b.frames)
    assert a.params["shape"]["kind"] == b.params["shape"]["kind"]
    c = render_clip("growing", 12, **SMALL)
    assert not np.array_equal(a.frames[: len(c.frames)], c.frames[: len(a.frames)])


def test_shapes_types_and_requested_format():
    clip = render_clip("moving up", 5, width=426, height=240, fps=30, seconds=2.0)
    assert clip.frames.dtype == np.uint8
    assert clip.frames.shape == (clip.params["num_frames"], 240, 426, 3)
    assert clip.fps == 30 and clip.label == "moving up"
    assert 2 <= clip.params["num_frames"] <= 60


def test_requested_style_shape_and_fill_are_used():
    for seed in range(5):
        p = clip_params("rotating clockwise", seed, style="noisy", shape="pacman", fill="solid")
        assert p["background"]["kind"] == "noisy"
        assert p["shape"]["kind"] == "pacman" and p["shape"]["fill"]["kind"] == "solid"
    fills = {clip_params("growing", seed)["shape"]["fill"]["kind"] for seed in range(40)}
    assert fills == set(S.FILLS)  # and drawn from all of them otherwise


def test_drawn_at_random_sizes_fps_and_durations():
    seen = set()
    for seed in range(30):
        p = clip_params(LABELS[seed % 8], seed)
        seen.add((p["width"], p["height"]))
        assert (p["width"], p["height"]) in S.SIZES
        assert S.FPS[0] <= p["fps"] <= S.FPS[1]
        assert p["num_frames"] <= S.SECONDS[1] * p["fps"] + 1
    assert len(seen) >= 4


def test_drawing_some_frames_equals_the_full_render():
    for style in S.BACKGROUNDS:
        clip = render_clip("shrinking", 21, style=style, **SMALL)
        idx = [5, 0, 5, len(clip.frames) - 1]
        assert np.array_equal(draw_frames(clip.params, idx), clip.frames[idx]), style


def test_background_styles_differ_and_dynamic_noise_changes_every_frame():
    std = {}
    for style in S.BACKGROUNDS:
        clip = render_clip("moving left", 4, style=style, **SMALL)
        assert clip.params["background"]["kind"] == style
        std[style] = clip.frames[0].astype(float).std((0, 1)).max()
    assert std["solid"] < std["noisy"]
    seed = next(s for s in range(100) if clip_params("growing", s, style="noisy", **SMALL)
                ["background"]["dynamic"])
    frames = render_clip("growing", seed, style="noisy", **SMALL).frames
    assert not np.array_equal(frames[0, :8, :8], frames[1, :8, :8])


def test_edges_are_antialiased():
    seed = next(s for s in range(200)
                if clip_params("moving down", s, style="solid", **SMALL)["shape"]["fill"]["kind"]
                == "solid")
    clip = render_clip("moving down", seed, style="solid", **SMALL)
    bg = np.asarray(clip.params["background"]["colours"][0])
    fg = np.asarray(clip.params["shape"]["fill"]["colour"])
    frame = clip.frames[0].astype(float)
    # how far each pixel lies from the background towards the fill colour
    a = ((frame - bg) @ (fg - bg)) / float((fg - bg) @ (fg - bg))
    partial = ((a > 0.15) & (a < 0.85)).sum()
    inside = (a >= 0.85).sum()
    assert partial > 0.05 * np.sqrt(inside)  # a soft rim, not a staircase of 0/1 pixels


@pytest.mark.parametrize("label", LABELS)
def test_plans_keep_speeds_in_range_and_the_whole_path_on_screen(label):
    for seed in np.random.default_rng(LABELS.index(label)).integers(0, 2**31, 25):
        _check_plan(label, clip_params(label, int(seed)))


def _check_plan(label: str, p: dict) -> None:
    c, r, a = p["centres"].astype(float), p["radii"].astype(float), p["angles"].astype(float)
    w, h = p["width"], p["height"]
    assert np.all(c[:, 0] - r >= 0) and np.all(c[:, 0] + r <= w)
    assert np.all(c[:, 1] - r >= 0) and np.all(c[:, 1] + r <= h)
    assert p["num_frames"] >= S.SECONDS[0] * p["fps"] - 1
    step = np.diff(c, axis=0).mean(0) / w
    turn = np.diff(a).mean()
    scale = r[1] / r[0]
    if label.startswith("moving"):
        main = {"moving left": -step[0], "moving right": step[0], "moving up": -step[1],
                "moving down": step[1]}[label]
        assert S.TRANSLATION[0] - 1e-6 <= main <= S.TRANSLATION[1] + 1e-6
        assert turn == 0 and scale == pytest.approx(1)
    elif label.startswith("rotating"):
        assert S.ROTATION[0] - 1e-4 <= abs(turn) <= S.ROTATION[1] + 1e-4
        assert (turn > 0) == (label == "rotating clockwise")
        assert np.all(step == 0)
    else:
        rate = scale if label == "growing" else 1 / scale
        assert 1 + S.SCALING[0] - 1e-5 <= rate <= 1 + S.SCALING[1] + 1e-5
        assert np.all(step == 0)


def test_write_clip_makes_a_decodable_h264_file(tmp_path):
    clip = render_clip("rotating counterclockwise", 2, **SMALL)
    path = write_clip(tmp_path / "sub" / "clip.mp4", clip)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == clip.frames.shape
    assert np.abs(frames.astype(float) - clip.frames).mean() < 8


def test_render_dataset_writes_every_label(tmp_path):
    items = S.render_dataset(tmp_path, 1, seed=3, width=160, height=120, fps=24, seconds=1.0)
    assert [label for _, label in items] == list(LABELS)
    assert len({p.name for p, _ in items}) == 8
    for path, label in items:
        assert path.suffix == ".mp4" and path.parent == tmp_path
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 24 and frames[0].shape == (120, 160, 3), label


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown label"):
        clip_params("jumping", 0)
    with pytest.raises(ValueError, match="unknown style"):
        clip_params("growing", 0, style="plaid")
    with pytest.raises(ValueError, match="unknown shape"):
        clip_params("growing", 0, shape="cube")
    with pytest.raises(ValueError, match="unknown fill"):
        clip_params("growing", 0, fill="plaid")
    with pytest.raises(ValueError, match="frame indices"):
        draw_frames(clip_params("growing", 0, **SMALL), [10_000])


def test_importing_the_renderer_does_not_import_torch():
    code = ("import sys, vidsort.export.demo.synthetic; "
            "sys.exit('torch' in sys.modules or 'av' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
