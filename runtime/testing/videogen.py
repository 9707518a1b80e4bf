"""Small test videos made with PyAV (never copied from elsewhere): moving patterns in any codec."""

from __future__ import annotations

import os
from collections.abc import Iterable
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



def video_frame(array: np.ndarray, pts: int, fmt: str = "rgb24",
                time_base: Fraction | None = None) -> av.VideoFrame:
    """One uint8 array as a PyAV frame with its pts (and time base, when given)."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=fmt)
    frame.pts = int(pts)
    if time_base is not None:
        frame.time_base = time_base
    return frame


def encode_all(container: av.container.OutputContainer, stream: av.stream.Stream,
               frames: Iterable[av.VideoFrame | av.AudioFrame]) -> None:
    """Encode ``frames`` into ``stream``, mux the packets, then flush the encoder."""
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    _normal_scheduling()


def _normal_scheduling() -> None:
    # libsvtav1, run as root, switches the encoding thread to SCHED_FIFO priority 99, and every
    # process forked after that inherits it: a decode worker's busy thread then starves the
    # whole machine. Back to the normal policy once the encoder is done.
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed: nothing to undo
        pass

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
        encode_all(container, stream, (video_frame(array, i, "gray" if grey else "rgb24")
                                       for i, array in enumerate(frames)))
    return path


def make_clip(path: str | Path, num_frames: int = 24, width: int = 64, height: int = 48,
              codec: str = "libx264", fps: int = 25, seed: int = 0, **kwargs) -> Path:
    """Write a small pattern clip (see `pattern_frames`) and return its path."""
    return write_video(path, pattern_frames(num_frames, width, height, seed), codec, fps, **kwargs)


def index_frames(num_frames: int, width: int, height: int) -> np.ndarray:
    """uint8 (T, H, W, 3) frames that carry their own index, readable back after lossy coding.

    The frame is a 4 x 2 grid of cells, each black or white by one bit of the index (frames up
    to 256 apart stay distinguishable). Frames under 8 x 4 px are one flat grey level instead.
    Read the index back with `frame_index`.
    """
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        if width < 8 or height < 4:
            frames[t] = _grey_level(t)
            continue
        for bit in range(8):
            row, col = divmod(bit, 4)
            y0, y1 = row * height // 2, (row + 1) * height // 2
            x0, x1 = col * width // 4, (col + 1) * width // 4
            frames[t, y0:y1, x0:x1] = 230 if (t >> bit) & 1 else 25
    return frames


def _grey_level(t: int) -> int:
    # 16 levels apart: well beyond codec error on a flat frame, 14 distinct frames.
    return 20 + 16 * (t % 14)


def frame_index(frame: np.ndarray) -> int:
    """The index `index_frames` wrote into ``frame`` (uint8 (H, W, 3) or (H, W))."""
    grey = frame.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    height, width = grey.shape
    if width < 8 or height < 4:
        return int(np.clip(np.round((grey.mean() - 20) / 16), 0, 13))
    index = 0
    for bit in range(8):
        row, col = divmod(bit, 4)
        # The cell's centre half: away from block edges where codecs smear across cells.
        y0, y1 = row * height // 2, (row + 1) * height // 2
        x0, x1 = col * width // 4, (col + 1) * width // 4
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        cell = grey[y0 + dy:y1 - dy or None, x0 + dx:x1 - dx or None]
        if cell.mean() > 128:
            index |= 1 << bit
    return index


def remux(src: str | Path, dst: str | Path, options: dict | None = None) -> Path:
    """Copy the streams of ``src`` into ``dst`` without re-encoding (container options apply).

    E.g. ``remux(a, b, {"movflags": "+faststart"})`` writes an MP4 whose index precedes the data,
    which is what byte-surgery tests need to make a file that promises more than it holds.
    """
    dst = Path(dst)
    with av.open(str(src)) as source, av.open(str(dst), mode="w", options=options or {}) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)
    return dst


def write_video_pts(path: str | Path, frames: np.ndarray, pts: list[int], codec: str = "libx264",
                    time_base: Fraction = Fraction(1, 100), rotation: int = 0) -> Path:
    """Like `write_video`, but each frame gets the given pts (in ``time_base``): irregular gaps
    make a variable-frame-rate file. ``rotation`` (degrees, counter-clockwise) sets the
    container's display matrix, as phones do for portrait recordings.
    """
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=int(round(1 / time_base)))
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        encode_all(container, stream, (video_frame(array, t, time_base=time_base)
                                       for t, array in zip(pts, frames, strict=True)))
    return path


def write_solid_yuv(path: Path, tagged_709: bool) -> np.ndarray:
    """Write 3 frames of four saturated patches as limited-range YUV, by the BT.709 formulas
    (and tagged so) or the BT.601 ones (untagged), losslessly. Returns the RGB they encode.

    A decoder that ignores the tags, or uses the wrong matrix, is off by ~9 levels on average.
    """
    rgb = np.zeros((64, 64, 3), np.uint8)
    for i, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200), (180, 180, 60)]):
        rgb[(i // 2) * 32:(i // 2) * 32 + 32, (i % 2) * 32:(i % 2) * 32 + 32] = colour
    kr, kb = (0.2126, 0.0722) if tagged_709 else (0.299, 0.114)
    r, g, b = (rgb[..., c] / 255.0 for c in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    planes = [16 + 219 * y, 128 + 224 * (b - y) / (2 - 2 * kb), 128 + 224 * (r - y) / (2 - 2 * kr)]
    yuv = np.concatenate([np.round(planes[0])] + [np.round(p[::2, ::2]).reshape(16, 64)
                                                   for p in planes[1:]]).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width = stream.height = 64
        if tagged_709:
            stream.codec_context.colorspace = stream.codec_context.color_range = 1
        encode_all(container, stream, (video_frame(yuv, t, "yuv420p") for t in range(3)))
    return rgb


def write_audio(path: str | Path, codec: str) -> Path:
    """An audio-only file: 10 silent frames of ``codec`` (aac, flac, mp2) at 16 kHz."""
    path = Path(path)
    fmt, size = {"aac": "fltp", "flac": "s16", "mp2": "s16"}[codec], 1152
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000)
        dtype = np.float32 if fmt == "fltp" else np.int16
        encode_all(container, stream, (audio_frame(np.zeros((1, size), dtype), fmt, i * size)
                                       for i in range(10)))
    return path


def audio_frame(samples: np.ndarray, fmt: str, pts: int) -> av.AudioFrame:
    """Mono samples (1, N) at 16 kHz as a PyAV frame with its pts."""
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
    frame.sample_rate, frame.pts = 16000, pts
    return frame


def write_cover_art_mp3(path: str | Path) -> Path:
    """An MP3 with an embedded cover picture: a "video" stream that is not a video."""
    path = Path(path)
    cover = write_video(path.with_suffix(".jpg.avi"), np.full((1, 32, 32, 3), 90, np.uint8),
                        codec="mjpeg", pix_fmt="yuvj420p")
    with av.open(str(cover)) as source, av.open(str(path), "w") as out:
        audio = out.add_stream("libmp3lame", rate=16000)
        picture = out.add_stream_from_template(source.streams.video[0])
        picture.disposition = av.stream.Disposition.attached_pic
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = picture
                out.mux(packet)
        encode_all(out, audio, (audio_frame(np.zeros((1, 1152), np.float32), "fltp", i * 1152)
                                for i in range(10)))
    return path
