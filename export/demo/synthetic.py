"""A renderer of eight motion classes: the data behind the embedded ``tiny-motion`` model.

One antialiased, asymmetric shape moves over a background; the class is its motion as seen on
screen (image rows grow downwards, so "moving up" lowers the row and "clockwise" is clockwise to
a viewer). A single frame cannot tell the classes apart and playing a clip backwards gives its
opposite class (`OPPOSITE`), so a model has to use time. NumPy and PyAV only (no torch).

Everything random is drawn from the ``seed``: `clip_params` makes the plan of a clip (a plain
dict), `draw_frames` draws any of its frames on its own (training renders only the frames it
samples), `render_clip` draws them all and `write_clip` encodes real H.264 with PyAV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from vidsort.export.demo.synthetic_layers import (
    background_base,
    background_plan,
    colour,
    noise_at,
    noise_field,
    profile,
    shape_layer,
)

LABELS = ("moving left", "moving right", "moving up", "moving down",
          "rotating clockwise", "rotating counterclockwise", "growing", "shrinking")
#: the class a clip of each class becomes when played backwards
OPPOSITE = {"moving left": "moving right", "moving right": "moving left",
            "moving up": "moving down", "moving down": "moving up",
            "rotating clockwise": "rotating counterclockwise",
            "rotating counterclockwise": "rotating clockwise",
            "growing": "shrinking", "shrinking": "growing"}
SIZES = ((320, 240), (426, 240), (352, 288), (480, 360), (640, 360), (640, 480), (360, 360))
SHAPES = ("polygon", "star", "notched_disk", "pacman", "blob", "arrow", "notched_ellipse")
FILLS = ("solid", "two_tone", "stripes", "gradient", "dot")
BACKGROUNDS = ("solid", "noisy", "gradient", "textured")
TRANSLATION = (0.003, 0.01)  # fraction of the width per frame
ROTATION = (3.0, 8.0)  # degrees per frame
SCALING = (0.01, 0.02)  # relative size change per frame
SECONDS = (2.0, 4.0)
FPS = (24, 30)

_DIRS = {"moving left": (-1, 0), "moving right": (1, 0),
         "moving up": (0, -1), "moving down": (0, 1)}


@dataclass
class RenderedClip:
    """A rendered clip: ``frames`` uint8 (T, H, W, 3) RGB, its ``label``, ``fps`` and ``params``."""

    frames: np.ndarray
    label: str
    fps: int
    params: dict = field(repr=False)


def _pick(rng: np.random.Generator, given, choices):
    return given if given is not None else choices[int(rng.integers(len(choices)))]


def clip_params(label: str, seed: int, *, width: int | None = None, height: int | None = None,
                fps: int | None = None, seconds: float | None = None, style: str | None = None,
                shape: str | None = None, fill: str | None = None) -> dict:
    """Plan one clip: every random choice, drawn from ``seed``.

    Args:
        label: one of `LABELS`.
        seed: the seed; equal seeds give equal plans.
        width, height: frame size in pixels (even); None draws one of `SIZES`.
        fps: frames per second; None draws 24..30.
        seconds: duration; None draws 2..4 s (shortened if the motion would not fit on screen).
        style: background kind, one of `BACKGROUNDS`; None draws one.
        shape: shape kind, one of `SHAPES`; None draws one.
        fill: the shape's fill, one of `FILLS`; None draws one.

    Returns:
        A dict: size, fps, num_frames, background and shape plans, and the motion per frame
        (``centres`` (T, 2) in pixels, ``angles`` in degrees, ``radii`` in pixels).
    """
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; choose one of {', '.join(LABELS)}")
    if style is not None and style not in BACKGROUNDS:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(BACKGROUNDS)}")
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if fill is not None and fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
    rng = np.random.default_rng(seed)
    if width is None or height is None:
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        width, height = width or w, height or h
    fps = int(fps if fps is not None else rng.integers(FPS[0], FPS[1] + 1))
    secs = float(seconds if seconds is not None else rng.uniform(*SECONDS))
    n = max(2, round(secs * fps))
    bg = background_plan(_pick(rng, style, BACKGROUNDS), rng)
    kind = _pick(rng, shape, SHAPES)
    prof = profile(kind, rng)
    fill = {"kind": _pick(rng, fill, FILLS), "colour": colour(rng), "colour2": colour(rng),
            "offset": float(rng.uniform(-0.3, 0.3)), "freq": float(rng.uniform(2, 5)),
            "dot": rng.uniform(-0.4, 0.4, 2).astype(np.float32).tolist()}
    c1, c2 = (np.asarray(c, np.float32) for c in bg["colours"])
    uses_c2 = bg["kind"] in ("gradient", "textured") or bg.get("gradient", False)
    refs = [c1, c2, (c1 + c2) / 2] if uses_c2 else [c1]
    for _ in range(50):  # the shape must stand out from every part of its background
        if min(np.linalg.norm(fill["colour"] - r) for r in refs) >= 80:
            break
        fill["colour"] = colour(rng)
    else:
        fill["colour"] = (255 - refs[-1]).astype(np.float32)
    fill["colour"], fill["colour2"] = fill["colour"].tolist(), fill["colour2"].tolist()
    short = min(width, height)
    radius = short * rng.uniform(0.08, 0.22)
    angle0 = rng.uniform(0, 360)
    t = np.arange(n, dtype=np.float64)
    margin = 2.0
    if label in _DIRS:
        dx, dy = _DIRS[label]
        along, across = (width, height) if dx else (height, width)
        speed = width * rng.uniform(*TRANSLATION)
        drift = speed * rng.uniform(-0.15, 0.15)
        # keep the whole path on screen (a bounce would flip the label): shrink speed, then time
        radius = min(radius, 0.3 * along)
        room = along - 2 * (radius + margin)
        speed = min(speed, max(width * TRANSLATION[0], room / (n - 1)))
        n = int(min(n, 1 + room // speed))
        t = t[:n]
        travel = speed * (n - 1)
        drift = float(np.clip(drift, -(across / 2 - radius - margin) / n,
                              (across / 2 - radius - margin) / n))
        mid = _mid(rng, along, radius + margin + travel / 2, width > height and dx != 0, across)
        mid_x = _mid(rng, across, radius + margin + abs(drift) * n / 2,
                     width > height and dy != 0, along)
        pos = mid + (t - (n - 1) / 2) * speed * (dx or dy)
        off = mid_x + (t - (n - 1) / 2) * drift
        centres = np.stack([pos, off] if dx else [off, pos], 1)
        angles, radii = np.full(n, angle0), np.full(n, radius)
    else:
        rate, omega = 1.0, 0.0
        if label.startswith("rotating"):
            omega = rng.uniform(*ROTATION) * (1 if label == "rotating clockwise" else -1)
        else:
            rate = 1 + rng.uniform(*SCALING)
            r_small, r_big = max(5.0, 0.05 * short), 0.42 * short
            rate = min(rate, max(1 + SCALING[0], (r_big / r_small) ** (1 / (n - 1))))
            n = int(min(n, 1 + np.log(r_big / r_small) // np.log(rate)))
            t = t[:n]
            ratio = rate ** (n - 1)
            small = rng.uniform(r_small, r_big / ratio)
            radius = small if label == "growing" else small * ratio
            rate = rate if label == "growing" else 1 / rate
        big = radius * max(1.0, rate ** (n - 1))
        cx = _mid(rng, width, big + margin, width > height, height)
        cy = _mid(rng, height, big + margin, height > width, width)
        centres = np.tile([cx, cy], (n, 1))
        angles, radii = angle0 + omega * t, radius * rate ** t
    return {"label": label, "seed": int(seed), "width": int(width), "height": int(height),
            "fps": fps, "num_frames": int(n), "background": bg,
            "shape": {"kind": kind, "profile": prof, "fill": fill},
            "centres": centres.astype(np.float32), "angles": angles.astype(np.float32),
            "radii": radii.astype(np.float32)}


def _mid(rng: np.random.Generator, length: float, keep: float, centre_square: bool,
         square: float) -> float:
    """A centre coordinate keeping ``keep`` pixels clear of both ends.

    On the long side of a wide frame it stays inside the central square where it can, because
    classifiers centre-crop that square.
    """
    lo, hi = keep, length - keep
    if centre_square:
        clo, chi = (length - square) / 2 + keep * 0.5, (length + square) / 2 - keep * 0.5
        if max(lo, clo) < min(hi, chi):
            lo, hi = max(lo, clo), min(hi, chi)
    return float(rng.uniform(lo, hi)) if hi > lo else length / 2


def draw_frames(params: dict, indices=None) -> np.ndarray:
    """Draw frames of a planned clip.

    Args:
        params: a plan from `clip_params`.
        indices: which frames (any order, repeats allowed); None draws all.

    Returns:
        uint8 (len(indices), H, W, 3) RGB frames, identical to those of a full render.
    """
    n, W, H = params["num_frames"], params["width"], params["height"]
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"frame indices must lie in [0, {n})")
    bg = params["background"]
    base = background_base(bg, W, H)
    noisy = bg["kind"] == "noisy"
    field = noise_field(bg, W, H) if noisy else None
    dynamic = noisy and bg["dynamic"]
    if noisy and not dynamic:
        base = base + field[:H, :W]
    # frames hold value + 0.5, so the uint8 cast rounds
    base = np.clip(base, 0, 255) + np.float32(0.5)
    base_u8 = base.astype(np.uint8)
    out = np.empty((len(idx), H, W, 3), dtype=np.uint8)
    for i, t in enumerate(idx.tolist()):
        if dynamic:
            frame = base + noise_at(bg, field, t, W, H)
            np.clip(frame, 0.5, 255.5, out=frame)
            out[i] = frame
        else:
            frame = base
            out[i] = base_u8
        box, cov, colour = shape_layer(params, t)
        out[i][box] = np.clip(frame[box] * (1 - cov) + colour + 0.5 * cov, 0, 255)
    return out


def render_clip(label: str, seed: int, *, width: int | None = None, height: int | None = None,
                fps: int | None = None, seconds: float | None = None, style: str | None = None,
                shape: str | None = None, fill: str | None = None) -> RenderedClip:
    """Render one clip of ``label`` (arguments as in `clip_params`; None draws from the seed).

    Returns:
        A `RenderedClip` with every frame drawn.
    """
    params = clip_params(label, seed, width=width, height=height, fps=fps, seconds=seconds,
                         style=style, shape=shape, fill=fill)
    return RenderedClip(draw_frames(params), label, params["fps"], params)


def write_clip(path, clip: RenderedClip, codec: str = "libx264") -> Path:
    """Encode ``clip`` to ``path`` with PyAV (yuv420p; the container follows the suffix).

    Args:
        path: the output file, e.g. ``clip.mp4``.
        clip: a `RenderedClip`.
        codec: an FFmpeg encoder name.

    Returns:
        The path written.
    """
    return write_frames(path, clip.frames, clip.fps, codec)


def write_frames(path, frames: np.ndarray, fps: int, codec: str = "libx264") -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to ``path`` with PyAV, one frame per 1/fps s.

    Args:
        path: the output file (created with its folder; the container follows the suffix).
        frames: the frames, RGB.
        fps: frames per second.
        codec: an FFmpeg encoder name (pixel format yuv420p).

    Returns:
        The path written.
    """
    import av  # only writers need PyAV

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, h, w, _ = frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def render_dataset(out_dir, n_per_class: int, seed: int, **kw) -> list[tuple[Path, str]]:
    """Render and encode ``n_per_class`` clips of every label into ``out_dir``.

    Args:
        out_dir: folder for the ``.mp4`` files (created).
        n_per_class: clips per label.
        seed: master seed; each clip's seed derives from it, its label and its number.
        **kw: passed to `render_clip` (width, height, fps, seconds, style, shape, fill).

    Returns:
        ``(path, label)`` per clip, label by label.
    """
    out = Path(out_dir)
    items = []
    for li, label in enumerate(LABELS):
        slug = re.sub(r"\W+", "_", label)
        for j in range(n_per_class):
            clip_seed = int(np.random.SeedSequence([seed, li, j]).generate_state(1)[0])
            clip = render_clip(label, clip_seed, **kw)
            items.append((write_clip(out / f"{slug}_{j:04d}.mp4", clip), label))
    return items
