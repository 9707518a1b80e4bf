"""Small test videos made with PyAV (never copied from elsewhere): moving patterns in any codec."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern_frames(num_frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3) frames: a bright square sliding right over a noisy gradient.

    Each frame differs from the others, so tests can tell which frame a decoder returned.
    """
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    base = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 96, np.float32)], axis=-1)
    base = np.clip(base + rng.normal(0, 8, base.shape), 0, 255)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    side = max(1, min(width, height) // 4)
    for t in range(num_frames):
        frame = base.copy()
        x0 = int((width - side) * t / max(1, num_frames - 1))
        y0 = (height - side) // 2
        frame[y0:y0 + side, x0:x0 + side] = (255, 255 - (t * 7) % 256, (t * 13) % 256)
        frames[t] = frame.astype(np.uint8)
    return frames


def write_video(
    path: str | Path,
    frames: np.ndarray,
    codec: str = "libx264",
    fps: int = 25,
    pix_fmt: str = "yuv420p",
    options: dict | None = None,
) -> Path:
    """Encode uint8 RGB (T, H, W, 3) frames (or (T, H, W) grey) to ``path`` with PyAV.

    Args:
        path: output file; the container is chosen from its suffix.
        frames: the frames, RGB or grey.
        codec: an FFmpeg encoder name (libx264, libx265, libvpx-vp9, libaom-av1, mjpeg, mpeg4...).
        fps: frame rate.
        pix_fmt: the stream's pixel format (yuv420p, yuv420p10le, gray, yuvj420p...).
        options: encoder options.

    Returns:
        The path written.
    """
    path = Path(path)
    grey = frames.ndim == 3
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        if options:
            stream.options = dict(options)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array),
                                               format="gray" if grey else "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_clip(path: str | Path, num_frames: int = 24, width: int = 64, height: int = 48,
              codec: str = "libx264", fps: int = 25, seed: int = 0, **kwargs) -> Path:
    """Write a small pattern clip (see `pattern_frames`) and return its path."""
    return write_video(path, pattern_frames(num_frames, width, height, seed), codec, fps, **kwargs)
