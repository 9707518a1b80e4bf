"""The decord side of `vidsort.decode.read_frames`: when decord may be used, and using it.

decord 3.4 (decord2) silently returns wrong frames (off by 1 to 60) after seeking in open-GOP
and B-frame streams it mis-indexes: HEVC, MPEG-1/2, MPEG-4 Part 2 with B-frames, B-frame
streams in AVI, anything in MPEG-PS/TS or FLV. This was found by decoding frames that carry
their own index (tests/test_decode.py); only the combinations that passed are left to decord,
the rest go to PyAV up front. Where decord raises instead, the caller falls back to PyAV.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from vidsort.decode.pyav_backend import SamplerFailed, guard_sampler
from vidsort.errors import ResourceLimitError, VideoError, first_line

if TYPE_CHECKING:  # pragma: no cover
    from vidsort.decode.read import VideoInfo

# Containers where decord's frame indexing was checked right (MP4/MOV, Matroska/WebM, AVI).
DECORD_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi")
# Codecs whose frames decord returns right after seeks (plus any intra-only codec).
DECORD_CODECS = ("h264", "vp8", "vp9", "av1", "mjpeg", "mpeg4")
# "[03:10:57] " timestamps and "/project/src/x.cc:98: " source locations, possibly repeated.
_DECORD_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\]\s*|\S+\.(?:cc|cpp|h):\d+:\s*")


def decord_unsuitable(info: VideoInfo, downscaled: str | None) -> str | None:
    """Why decord must not read this file.

    Args:
        info: what the container says (`vidsort.decode.probe`).
        downscaled: set when frames over ``max_pixels`` will be downscaled.

    Returns:
        A one-line reason, or None when decord may be used.
    """
    if info.format not in DECORD_FORMATS:
        return f"decord skipped: it mis-indexes frames in {info.format.split(',')[0]} files"
    if info.codec in ("hevc", "mpeg1video", "mpeg2video"):
        return f"decord skipped: it returns wrong frames after seeking in {info.codec} streams"
    if info.codec not in DECORD_CODECS and not info.intra_only:
        return f"decord skipped: its frame indexing is unverified for {info.codec} streams"
    if "avi" in info.format and info.has_b_frames:
        return "decord skipped: it returns wrong frames for B-frame streams in AVI"
    if info.codec == "mpeg4" and info.has_b_frames:
        return "decord skipped: it returns wrong frames for MPEG-4 Part 2 with B-frames"
    if downscaled is not None:
        # The automatic downscale keeps the stored aspect; decord would scale after rotating.
        return "decord skipped: frames over max_pixels are downscaled by PyAV"
    return None


# From this many pixels per frame up, skipping pictures pays (full HD: ~0.13 s of a 16-frame read)
_SKIP_PAYS_PIXELS = 1280 * 720


def pyav_reads_faster(info: VideoInfo) -> str | None:
    """Why PyAV should read a file that decord could read right: the same frames, less work.

    decord decodes and converts every frame from the keyframe to the last one wanted; PyAV
    skips the non-reference B-frames between sampled frames (``skip_frame``, see
    `vidsort.decode.pyav_backend`), which are about a third of a typical H.264 stream. Frames are
    bit-identical either way (tests/test_decode.py); only large frames are worth the switch.

    Returns:
        A one-line reason, or None to let decord read it.
    """
    if info.has_b_frames and info.width * info.height >= _SKIP_PAYS_PIXELS:
        return ("decord skipped: PyAV reads the same frames faster here (it skips the "
                "B-frames between sampled frames; decord decodes them all)")
    return None


def read_decord(path: str, sampler: Callable[[int], np.ndarray], num_threads: int,
                size: tuple[int, int] | None, max_frames: int | None,
                copy: bool = True) -> tuple[np.ndarray, np.ndarray, int] | str:
    """Decode the sampled frames with decord's ``get_batch``.

    Args:
        path: the file (already checked and probed).
        sampler: ``sampler(num_frames) -> indices``.
        num_threads: decoder threads (0 = decord's choice).
        size: ``(width, height)`` to scale to, or None.
        max_frames: most frames the read may decode (estimated from decord's keyframe index).
        copy: False returns a read-only view of decord's buffer (no copy: ~30 ms for 16
            full-HD frames).

    Returns:
        ``(frames, indices, num_frames)``, or a one-line reason to fall back to PyAV. The
        sampler's own exceptions and `ResourceLimitError` propagate.
    """
    try:
        decord = _import_decord()
        width, height = size if size is not None else (-1, -1)
        reader = decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height,
                                    num_threads=num_threads)
        count = len(reader)
        indices = guard_sampler(sampler)(count)
        if max_frames is not None:
            _check_work(path, reader.get_key_indices(), indices, max_frames)
        # Decode each distinct frame once: short videos repeat indices, and decord's peak memory
        # grows with the batch (a 3-frame 4K clip sampled to 16 would decode 16 frames).
        unique, inverse = np.unique(indices, return_inverse=True)
        batch = reader.get_batch(unique)
        frames = batch.asnumpy() if copy else _view(batch)
        if len(unique) != len(indices):
            frames = frames[inverse.reshape(-1)]
    except (VideoError, SamplerFailed):
        raise
    except Exception as exc:  # DECORDError, RuntimeError, AssertionError, IndexError...
        return f"decord failed: {_reason(exc)}"
    if (frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != len(indices)
            or frames.shape[3] != 3 or 0 in frames.shape):
        return f"decord returned an unexpected array {frames.dtype} {frames.shape}"
    return frames, indices, count


def _check_work(path: str, keys: list[int], indices: np.ndarray, max_frames: int) -> None:
    """Raise `ResourceLimitError` if decoding ``indices`` from their keyframes would decode more
    than ``max_frames`` frames (decord decodes forward from the keyframe before each jump)."""
    total, pos = 0, -1
    for target in sorted(set(indices.tolist())):
        key = keys[max(0, int(np.searchsorted(keys, target, side="right")) - 1)] if keys else 0
        start = key if key > pos else pos + 1
        total += target - start + 1
        pos = target
    if total > max_frames:
        raise ResourceLimitError(path, f"reading these frames needs {total} decoded frames, "
                                       f"over max_frames={max_frames}")


class _DLPackExporter:
    """Hands decord's DLPack capsule to `numpy.from_dlpack` (decord's NDArray predates the
    ``__dlpack__`` protocol)."""

    def __init__(self, capsule: object):
        self._capsule = capsule

    def __dlpack__(self, stream: object = None, **_: object) -> object:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU


def _view(batch) -> np.ndarray:
    """A read-only NumPy view of a decord NDArray (it keeps the buffer alive)."""
    try:
        return np.from_dlpack(_DLPackExporter(batch.to_dlpack()))
    except (TypeError, ValueError, BufferError, RuntimeError):
        return batch.asnumpy()


def _import_decord():
    import decord
    import decord.logging

    # decord's own FFmpeg copy prints decoder complaints to stderr; our errors say enough.
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _reason(exc: BaseException) -> str:
    """decord's messages carry "[hh:mm:ss] /src/file.cc:123: " prefixes (nested): drop them."""
    text = first_line(exc)
    text = _DECORD_PREFIX.sub("", text).strip()
    return f"{type(exc).__name__}: {text}"[:200]
