"""Decode the frames a sampler asks for: `read_frames` (and `probe`).

Two backends give the same frame for the same index:

- ``pyav`` (default): one packet scan, then keyframe seeks and forward decoding that skips the
  non-reference pictures no sampled frame needs (`pyav_backend`).
- ``decord``: ``VideoReader.get_batch``, which seeks by itself. decord 3.4 silently
  returns wrong frames (off by 1 to 60) after seeks in many streams, so it is only used for
  H.264 / VP8 / VP9 / AV1 / MJPEG / MPEG-4 Part 2 without B-frames (and intra-only codecs) in
  MP4/MOV, Matroska/WebM or AVI, minus B-frame streams in AVI; other files go to PyAV up front.
  When decord raises (2x2 px, widths whose RGB rows it mis-copies such as 48 or 96 px, truncated
  files...) PyAV takes over. ``DecodedClip.fallback`` says why in one line.

Why PyAV is the default (``python benchmarks/bench_decode_choices.py``, 15 interleaved rounds,
2-core AMD EPYC with AVX-512 VNNI, results in ``benchmarks/results/decode_choices.json``): on the
files decord reads itself PyAV took 0.75–0.92x decord's wall time and 20–35 % less CPU (e.g. the
340x256 Kinetics clip 42.9 vs 49.9 ms, a 360p B-frame MP4 31.3 vs 41.6 ms) with bit-identical
frames and indices on all nine files measured; on the others decord hands over to PyAV anyway
(B-frame AVI, B-frame streams from 720p up: 0.97–0.99x). decord stays an opt-in
(``backend="decord"``), still checked for pixel parity by the tests.

Colour: both convert with FFmpeg's swscale using the colour matrix and range the stream declares
(BT.601 when it declares none, BT.709 when it says so; full range for ``yuvj``) and swscale's
bicubic filter wherever scaling is involved, so 8-bit streams give identical pixels from both
backends (``resize_to`` output differs by about half a level on average). High-bit-depth
streams differ by about one level on average (decord converts through libavfilter). The display
matrix (rotation metadata) is applied by both: frames come out in display orientation, and
``resize_to`` is in display orientation. Sample aspect ratio is ignored.

Every failure is a typed `vidsort.errors.VideoError` naming the file; raw av/decord exceptions
never escape. Only regular local files are opened (FFmpeg's ``file`` protocol), and demuxers
that would open other files or the network (HLS, DASH, concat, SDP...) are refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from vidsort.decode.decord_backend import decord_unsuitable, pyav_reads_faster, read_decord
from vidsort.decode.pyav_backend import PyAVReader, SamplerFailed, guard_sampler, video_stream
from vidsort.errors import (
    NoVideoStreamError,
    ResourceLimitError,
    UnsupportedInputError,
    VideoDecodeError,
    VideoError,
    VideoNotFoundError,
    first_line,
)
from vidsort.options import BACKENDS, DEFAULT_BACKEND, MAX_DURATION_S, MAX_FILE_BYTES, MAX_PIXELS

# Demuxers never used: ones that open other files or the network (playlists, concat, SDP),
# capture devices, and ones that render text files as "video".
_DENIED_FORMATS = {
    "hls", "dash", "concat", "tee", "image2", "sdp", "rtp", "rtp_mpegts", "rtsp", "sap",
    "lavfi", "fifo", "segment", "stream_segment,ssegment", "smoothstreaming", "hds",
    "webm_dash_manifest", "ffmetadata", "data", "tty", "bin", "idf", "adf", "xbin", "alsa",
    "oss", "fbdev", "kmsgrab", "x11grab", "video4linux2,v4l2", "whip", "imf",
}
# The whitelist is passed to FFmpeg so a denied demuxer is refused before it opens anything.
_format_whitelist: str | None = None


@dataclass
class DecodeLimits:
    """Resource limits checked before and while decoding (None = no limit)."""

    max_file_bytes: int | None = MAX_FILE_BYTES
    max_pixels: int | None = MAX_PIXELS  # per frame; larger frames are downscaled at decode,
    #                                      up to 4x this (beyond: refused)
    max_duration_s: float | None = MAX_DURATION_S
    max_frames: int | None = None               # frames decoded per clip, None = no limit


@dataclass
class VideoInfo:
    """What the container says about a video (`probe`)."""

    path: str
    format: str                 # demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str | None           # codec name, e.g. "h264", "av1"
    width: int
    height: int
    fps: float | None
    frames: int                 # as reported by the container; 0 = unknown (may be wrong)
    duration_s: float | None
    pix_fmt: str | None
    has_b_frames: bool
    intra_only: bool = False    # every frame a keyframe (MJPEG, ProRes...): no reordering


@dataclass
class DecodedClip:
    """Frames returned by `read_frames`, with how they were obtained."""

    frames: np.ndarray          # uint8 (N, H, W, 3) RGB, one per requested index, in order
    indices: np.ndarray         # int64 (N,) the frame indices returned (after any re-sampling)
    num_video_frames: int       # frames the video really has (corrected if over-reported)
    backend: str                # "decord" or "pyav": what produced the frames
    fallback: str | None        # why decord was abandoned for PyAV (None if no fallback)
    width: int                  # of the returned frames (after rotation and any downscale)
    height: int
    fps: float | None
    codec: str | None
    decode_s: float             # wall time spent
    source_size: tuple[int, int] = (0, 0)  # (width, height) as stored in the file
    downscaled: str | None = None  # why frames were downscaled (over max_pixels)
    frames_decoded: int | None = None  # frames the decoder produced (PyAV only; decord hides it)


def probe(path: str | os.PathLike, limits: DecodeLimits | None = None) -> VideoInfo:
    """Check a file and read its container header (no frames decoded).

    Args:
        path: a video file.
        limits: size and duration limits to enforce (defaults: `DecodeLimits()`).

    Returns:
        The `VideoInfo`. Raises a `VideoError` subclass for anything unusable.
    """
    path = _check_path(path, limits or DecodeLimits())
    container = _open(path)
    try:
        return _info(path, container, limits or DecodeLimits())
    finally:
        container.close()


def read_frames(
    path: str | os.PathLike,
    sampler: Callable[[int], np.ndarray],
    *,
    backend: str = DEFAULT_BACKEND,
    num_threads: int = 0,
    limits: DecodeLimits | None = None,
    resize_to: tuple[int, int] | None = None,
    copy: bool = True,
) -> DecodedClip:
    """Decode the frames ``sampler`` picks from a video file.

    Args:
        path: a video file.
        sampler: ``sampler(num_video_frames) -> indices`` (any order, repeats allowed; a 2-D
            array is flattened row-major). Called again with a corrected count if the file
            holds fewer frames than its container says.
        backend: ``"decord"`` (falls back to PyAV when it cannot read the file) or ``"pyav"``.
        num_threads: decoder threads, 0 = the decoder's choice.
        limits: resource limits (defaults: `DecodeLimits()`).
        resize_to: optional ``(width, height)`` to scale frames to while decoding (display
            orientation). Aspect ratio is the caller's business.
        copy: False allows ``frames`` to be a read-only view of the decoder's buffer, which
            saves copying every frame (decord); True always gives an array of one's own.

    Returns:
        A `DecodedClip`. Raises `VideoNotFoundError`, `UnsupportedInputError`,
        `VideoDecodeError`, `NoVideoStreamError` or `ResourceLimitError`, each naming the file.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    start = time.perf_counter()
    limits = limits or DecodeLimits()
    path = _check_path(path, limits)
    container: av.container.InputContainer | None = _open(path)
    try:
        info = _info(path, container, limits)
        size, downscaled = _output_size(info, resize_to, limits)
    except BaseException:
        container.close()
        raise

    fallback = None
    if backend == "decord":
        fallback = decord_unsuitable(info, downscaled) or pyav_reads_faster(info)
        if fallback is None:
            container.close()
            container = None
            try:
                result = read_decord(path, sampler, num_threads, size, limits.max_frames, copy)
            except SamplerFailed as exc:
                raise exc.__cause__ from None  # the caller's own mistake, unchanged
            if isinstance(result, str):
                fallback = result
            else:
                frames, indices, count = result
                return _clip(frames, indices, count, "decord", None, info, start, downscaled)

    frames, indices, count, decoded = _read_pyav(path, sampler, num_threads, size, limits,
                                                 container)
    clip = _clip(frames, indices, count, "pyav", fallback, info, start, downscaled)
    clip.frames_decoded = decoded
    return clip


def _read_pyav(path: str, sampler: Callable[[int], np.ndarray], num_threads: int,
               size: tuple[int, int] | None, limits: DecodeLimits,
               container: av.container.InputContainer | None,
               ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Frames, indices, frame count and frames decoded, via `PyAVReader`; every failure typed.
    ``container`` (already open, or None) is used and closed."""
    reader = None
    try:
        with pyav_errors(path):
            reader = PyAVReader(path, lambda: _open(path), num_threads, size, limits.max_frames,
                                container=container)
            frames, indices = reader.read(guard_sampler(sampler))
        return frames, indices, reader.num_frames, reader.decoded
    except SamplerFailed as exc:
        raise exc.__cause__ from None  # the caller's own mistake, unchanged
    finally:
        if reader is not None:
            reader.close()
        elif container is not None:
            container.close()


@contextlib.contextmanager
def pyav_errors(path: str) -> Iterator[None]:
    """Turn what PyAV raises while reading ``path`` into typed errors naming it (`VideoError`
    and `SamplerFailed` pass through)."""
    try:
        yield
    except (VideoError, SamplerFailed):
        raise
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"decoding failed: {first_line(exc, 300)}") from None
    except MemoryError:
        raise ResourceLimitError(path, "out of memory while decoding") from None
    except Exception as exc:  # a PyAV bug or an odd stream: still a typed error
        raise VideoDecodeError(path, f"decoding failed: {type(exc).__name__}: "
                                     f"{first_line(exc, 300)}") from None


# -- checks before decoding --------------------------------------------------------------------

def _check_path(path: str | os.PathLike, limits: DecodeLimits) -> str:
    """The absolute path of a regular, non-empty file within the size limit."""
    try:
        name = os.path.abspath(os.fsdecode(os.fspath(path)))
    except TypeError:
        raise TypeError(f"a video path must be str or os.PathLike, got {type(path).__name__}")\
            from None
    try:
        st = os.stat(name)  # never open(): opening a FIFO would block
    except FileNotFoundError:
        raise VideoNotFoundError(name, "no such file") from None
    except PermissionError:
        raise VideoNotFoundError(name, "permission denied") from None
    except (OSError, ValueError) as exc:
        raise VideoNotFoundError(name, f"cannot stat the path ({first_line(exc, 300)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoNotFoundError(name, "is a directory, not a video file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file")
        raise UnsupportedInputError(name, f"is {kind}; only regular files are read")
    if st.st_size == 0:
        raise VideoDecodeError(name, "empty file (0 bytes)")
    if limits.max_file_bytes is not None and st.st_size > limits.max_file_bytes:
        raise ResourceLimitError(name, f"file is {st.st_size} bytes, over the "
                                       f"max_file_bytes limit of {limits.max_file_bytes}")
    return name


def _whitelist() -> str:
    global _format_whitelist
    if _format_whitelist is None:
        names = set()
        for name in av.formats_available:
            try:
                if av.format.ContainerFormat(name, "r") and name not in _DENIED_FORMATS:
                    names.update(name.split(","))
            except (ValueError, av.FFmpegError):
                continue  # a muxer only
        names -= {n for d in _DENIED_FORMATS for n in d.split(",")}
        _format_whitelist = ",".join(sorted(names))
    return _format_whitelist


def _open(path: str) -> av.container.InputContainer:
    """Open with PyAV, local files only and no demuxer that reaches elsewhere."""
    options = {"protocol_whitelist": "file", "format_whitelist": _whitelist()}
    try:
        return av.open(path, mode="r", options=options, metadata_errors="replace")
    except av.error.InvalidDataError:
        raise VideoDecodeError(path, "not a video file FFmpeg can read (invalid data: "
                                     "not a known container, or damaged)") from None
    except av.error.ArgumentError:
        # What FFmpeg says for a demuxer outside the whitelist (playlists, concat scripts...).
        raise VideoDecodeError(path, "not a video container vidsort reads (a playlist, concat "
                                     "script or other reference format?)") from None
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"cannot be opened as media: {first_line(exc, 300)}") from None
    except Exception as exc:  # PyAV raising something unexpected on a hostile header
        raise VideoDecodeError(path, f"cannot be opened as media: {type(exc).__name__}: "
                                     f"{first_line(exc, 300)}") from None


def _info(path: str, container: av.container.InputContainer, limits: DecodeLimits) -> VideoInfo:
    try:
        return _read_info(path, container, limits)
    except VideoError:
        raise
    except Exception as exc:  # PyAV choking on an odd header: still a typed error
        raise VideoDecodeError(path, f"unreadable stream header: {type(exc).__name__}: "
                                     f"{first_line(exc, 300)}") from None


def _read_info(path: str, container: av.container.InputContainer,
               limits: DecodeLimits) -> VideoInfo:
    fmt = container.format.name
    if not container.streams:
        raise NoVideoStreamError(path, f"holds no streams at all ({fmt}; truncated before the "
                                       f"end of its header?)")
    stream = video_stream(container)
    if stream is None:
        others = ", ".join(_describe(s) for s in container.streams)
        raise NoVideoStreamError(path, f"holds no video stream ({fmt}: {others})")
    cc = stream.codec_context
    if cc is None:
        raise VideoDecodeError(path, "its video codec is unknown to FFmpeg (no decoder)")
    codec = getattr(cc.codec, "canonical_name", None) or cc.name
    if fmt.endswith("_pipe") or fmt in ("image2pipe", "webp", "avif"):
        raise NoVideoStreamError(path, f"is a still image ({codec}), not a video")
    duration = None
    if container.duration is not None and container.duration > 0:
        duration = container.duration / av.time_base
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    if (limits.max_duration_s is not None and duration is not None
            and duration > limits.max_duration_s):
        raise ResourceLimitError(path, f"duration {duration:.0f} s is over the max_duration_s "
                                       f"limit of {limits.max_duration_s:.0f} s")
    rate = stream.average_rate or stream.guessed_rate
    return VideoInfo(
        path=path, format=fmt, codec=codec, width=cc.width or 0, height=cc.height or 0,
        fps=float(rate) if rate else None, frames=int(stream.frames or 0), duration_s=duration,
        pix_fmt=cc.pix_fmt, has_b_frames=bool(cc.has_b_frames),
        intra_only=bool(getattr(cc.codec, "intra_only", False)),
    )


def _describe(stream: av.stream.Stream) -> str:
    name = stream.codec_context.name if stream.codec_context is not None else "unknown codec"
    if stream.type == "video" and stream.disposition & av.stream.Disposition.attached_pic:
        return f"cover art ({name})"
    return f"{stream.type} ({name})"


def _output_size(info: VideoInfo, resize_to: tuple[int, int] | None,
                 limits: DecodeLimits) -> tuple[tuple[int, int] | None, str | None]:
    """The ``(width, height)`` to decode to (None: as stored), and why it was downscaled."""
    if resize_to is not None:
        width, height = (int(v) for v in resize_to)
        if width < 1 or height < 1:
            raise ValueError(f"resize_to must be two positive ints, got {resize_to!r}")
    else:
        width, height = info.width, info.height
    limit = limits.max_pixels
    if limit is not None and info.width * info.height > 4 * limit:
        # The decoder allocates full-size frames before any scaling: past 4x, refuse outright.
        raise ResourceLimitError(info.path, f"{info.width}x{info.height} frames are over 4x the "
                                            f"max_pixels limit of {limit}")
    if limit is None or width * height <= limit:
        return (None if resize_to is None else (width, height)), None
    scale = math.sqrt(limit / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return size, f"{width}x{height} is over max_pixels={limit}: decoded at {size[0]}x{size[1]}"


# -- helpers -----------------------------------------------------------------------------------

def _clip(frames: np.ndarray, indices: np.ndarray, count: int, backend: str,
          fallback: str | None, info: VideoInfo, start: float,
          downscaled: str | None) -> DecodedClip:
    return DecodedClip(
        frames=frames, indices=indices, num_video_frames=int(count), backend=backend,
        fallback=fallback, width=int(frames.shape[2]), height=int(frames.shape[1]),
        fps=info.fps, codec=info.codec, decode_s=time.perf_counter() - start,
        source_size=(info.width, info.height), downscaled=downscaled,
    )
