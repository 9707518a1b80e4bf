"""A hostile-input corpus, generated on the fly (PyAV + byte-level mutation), and the mutator the
fuzz script uses. Nothing here is copied from elsewhere; everything is small and fast to make.

Every `Entry` says what a correct runtime must do with the file: ``classify`` (it decodes),
``fail`` (a typed `VideoError` naming the file; ``errors`` narrows the acceptable types), or
``any`` (either is fine, as long as nothing hangs, crashes or prints a traceback).
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from vidsort.testing.videogen import (
    audio_frame,
    encode_all,
    make_clip,
    pattern_frames,
    video_frame,
    write_video,
)

CLASSIFY, FAIL, ANY = "classify", "fail", "any"

#: error types for files that are not video at all (what a decoder may call them)
NOT_VIDEO = ("VideoDecodeError", "NoVideoStreamError", "UnsupportedInputError")


@dataclass(frozen=True)
class Entry:
    """One corpus file and what the runtime must do with it."""

    name: str
    path: Path
    expect: str
    errors: tuple[str, ...] = ()
    note: str = ""


def _quiet_encoders() -> None:
    # SVT-AV1 prints a banner on stderr for every stream it opens. FFmpeg's own messages stay
    # with PyAV's default (dropped in C): `av.logging.set_level(ERROR)` would install PyAV's
    # Python log callback, and FFmpeg's frame threads calling it later deadlocked an in-process
    # decode (every thread in a futex wait, seen in a CI run after the corpus was built).
    os.environ.setdefault("SVT_LOG", "1")


def write_frames(path: Path, frames: np.ndarray, codec: str = "libx264", pts: Sequence[int] = (),
                 time_base: Fraction = Fraction(1, 25), pix_fmt: str = "yuv420p",
                 container_options: dict | None = None, options: dict | None = None) -> Path:
    """Encode frames with explicit timestamps and container options (videogen's writer has
    neither): variable frame rate, faststart.

    Args:
        path: output file; the container follows the suffix.
        frames: uint8 RGB (T, H, W, 3).
        codec, pix_fmt, options: encoder settings.
        pts: per-frame timestamps in ``time_base`` units (default 0, 1, 2...).
        time_base: the stream's time base.
        container_options: muxer options, e.g. ``{"movflags": "+faststart"}``.

    Returns:
        The path written.
    """
    pts = list(pts) or list(range(len(frames)))
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=int(round(1 / time_base)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if options:
            stream.options = dict(options)
        encode_all(container, stream, (video_frame(array, t, time_base=time_base)
                                       for array, t in zip(frames, pts, strict=True)))
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 8.0) * 0.3).astype(np.float32)[None, :]
        encode_all(container, stream,
                   (audio_frame(np.ascontiguousarray(samples[:, start:start + 1024]), "fltp", start)
                    for start in range(0, samples.shape[1], 1024)))
    return path


def _image_bytes(fmt: str) -> bytes:
    # One frame through FFmpeg's image encoders, so no imaging library is needed.
    frame = av.VideoFrame.from_ndarray(pattern_frames(1, 32, 24)[0], format="rgb24")
    codec = av.CodecContext.create("png" if fmt == "png" else "mjpeg", "w")
    codec.width, codec.height = 32, 24
    codec.pix_fmt = "rgb24" if fmt == "png" else "yuvj420p"
    codec.time_base = Fraction(1, 25)
    frame = frame.reformat(format=codec.pix_fmt)
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode()])


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("video.mp4", b"not really" * 100)
    return buf.getvalue()


def flip_bits(data: bytes, rng: random.Random, count: int, start: int = 0) -> bytes:
    """Flip ``count`` random bits at offsets >= ``start``."""
    out = bytearray(data)
    for _ in range(count):
        pos = rng.randrange(min(start, len(out) - 1), len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def build_corpus(out_dir: str | os.PathLike, big: bool = True) -> list[Entry]:
    """Write the corpus into ``out_dir`` (about 3 MB, a few seconds).

    Args:
        out_dir: an existing, preferably empty, directory.
        big: include the 4K clip (the slowest to write and to decode).

    Returns:
        The entries, in a fixed order.
    """
    _quiet_encoders()
    d = Path(out_dir)
    rng = random.Random(7)
    entries: list[Entry] = []

    def add(name: str, path: Path, expect: str, errors: tuple[str, ...] = (), note: str = ""):
        entries.append(Entry(name, path, expect, errors, note))

    # Not media at all.
    for name, payload in [("empty", b""), ("random", rng.randbytes(64 * 1024)),
                          ("text", b"just some text, not a video\n" * 20),
                          ("html", b"<!doctype html><html><body><video src=x.mp4></video></body>"
                                   b"</html>\n"),
                          ("zip", _zip_bytes())]:
        (d / f"{name}.mp4").write_bytes(payload)
        add(name, d / f"{name}.mp4", FAIL, NOT_VIDEO)

    # Damaged copies of a normal clip (index at the end) and of a faststart one (index first).
    normal = make_clip(d / "base_normal.mp4", num_frames=48, width=64, height=48)
    faststart = write_frames(d / "base_faststart.mp4", pattern_frames(48, 64, 48),
                             container_options={"movflags": "+faststart"})
    data, fast = normal.read_bytes(), faststart.read_bytes()
    add("normal", normal, CLASSIFY)
    add("faststart", faststart, CLASSIFY)
    (d / "trunc_head.mp4").write_bytes(data[:100])
    add("trunc_head", d / "trunc_head.mp4", FAIL, NOT_VIDEO, "first 100 bytes")
    (d / "trunc_no_index.mp4").write_bytes(data[: len(data) // 2])
    add("trunc_no_index", d / "trunc_no_index.mp4", FAIL, NOT_VIDEO, "index (moov) cut off")
    (d / "trunc_overpromise.mp4").write_bytes(fast[: int(len(fast) * 0.6)])
    add("trunc_overpromise", d / "trunc_overpromise.mp4", CLASSIFY,
        note="faststart index promises 48 frames, data holds ~60% of them")
    (d / "trunc_last_bytes.mp4").write_bytes(fast[:-7])
    add("trunc_last_bytes", d / "trunc_last_bytes.mp4", CLASSIFY, note="last packet cut")
    for i in range(3):
        (d / f"bitflip_{i}.mp4").write_bytes(flip_bits(fast, random.Random(i), 8 * (i + 1)))
        add(f"bitflip_{i}", d / f"bitflip_{i}.mp4", ANY, note="bits flipped anywhere")
    (d / "bitflip_data.mp4").write_bytes(flip_bits(fast, random.Random(9), 40, len(fast) // 3))
    add("bitflip_data", d / "bitflip_data.mp4", ANY, note="bits flipped in the frame data")

    # Streams that are not (only) video.
    add("audio_only", _audio_only(d / "audio_only.mp4"), FAIL, ("NoVideoStreamError",))
    (d / "png_as.mp4").write_bytes(_image_bytes("png"))
    add("png_as_mp4", d / "png_as.mp4", FAIL, NOT_VIDEO, "a PNG named .mp4: a still image")
    (d / "jpeg_as.mp4").write_bytes(_image_bytes("jpeg"))
    add("jpeg_as_mp4", d / "jpeg_as.mp4", FAIL, NOT_VIDEO, "a JPEG named .mp4: a still image")

    # Unusual but valid video.
    add("one_frame", make_clip(d / "one_frame.mp4", num_frames=1), CLASSIFY)
    add("mjpeg_one_frame", make_clip(d / "mjpeg_one_frame.avi", num_frames=1, codec="mjpeg",
                                     pix_fmt="yuvj420p"), CLASSIFY)
    add("tiny_2x2", make_clip(d / "tiny_2x2.mp4", width=2, height=2), CLASSIFY)
    add("odd_33x17", make_clip(d / "odd_33x17.mp4", width=33, height=17, pix_fmt="yuv444p"),
        CLASSIFY)
    add("portrait", make_clip(d / "portrait.mp4", width=48, height=96), CLASSIFY)
    vfr_pts = np.cumsum([0] + [rng.choice([10, 40, 120]) for _ in range(29)]).tolist()
    add("vfr", write_frames(d / "vfr.mp4", pattern_frames(30, 64, 48), pts=vfr_pts,
                            time_base=Fraction(1, 1000)), CLASSIFY, note="10-120 ms frame gaps")
    add("hevc_10bit", make_clip(d / "hevc_10bit.mp4", codec="libx265", pix_fmt="yuv420p10le",
                                options={"x265-params": "log-level=error"}), CLASSIFY)
    add("vp9", make_clip(d / "vp9.webm", codec="libvpx-vp9"), CLASSIFY)
    add("av1", make_clip(d / "av1.mp4", codec="libsvtav1", width=64, height=64), CLASSIFY)
    add("mjpeg", make_clip(d / "mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p"), CLASSIFY)
    grey = pattern_frames(24, 64, 48)[..., 1]
    add("grayscale", write_video(d / "grayscale.mkv", grey, codec="ffv1", pix_fmt="gray"),
        CLASSIFY)
    add("non_ascii", make_clip(d / "vidéo ünïcödé 日本語 ✓.mp4"), CLASSIFY)
    (d / "données cassées ✗.mp4").write_bytes(b"\x00" * 1000)
    add("non_ascii_bad", d / "données cassées ✗.mp4", FAIL, NOT_VIDEO)
    if big:
        add("uhd_4k", make_clip(d / "uhd_4k.mp4", num_frames=3, width=3840, height=2160,
                                options={"preset": "ultrafast"}), CLASSIFY)
    return entries


def seed_clips(out_dir: str | os.PathLike) -> list[Path]:
    """Small valid clips in several containers and codecs: the fuzzer's starting points."""
    _quiet_encoders()
    d = Path(out_dir)
    frames = pattern_frames(24, 64, 48)
    return [
        make_clip(d / "seed_h264.mp4"),
        write_frames(d / "seed_faststart.mp4", frames,
                     container_options={"movflags": "+faststart"}),
        make_clip(d / "seed_mpeg4.avi", codec="mpeg4"),
        make_clip(d / "seed_vp9.webm", codec="libvpx-vp9"),
        make_clip(d / "seed_mjpeg.avi", codec="mjpeg", pix_fmt="yuvj420p"),
        make_clip(d / "seed_h264.mkv"),
    ]


#: values that often break length and count fields
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


def mutate(data: bytes, ops: Sequence[tuple[str, float, int]]) -> bytes:
    """Apply byte-level mutations.

    Args:
        data: the original file.
        ops: ``(kind, where, value)``: ``where`` in [0, 1) is a position relative to the
            current length; kinds: ``flip`` (bit ``value % 8``), ``byte`` (set to ``value``),
            ``int32`` (a big-endian field set to an interesting value, e.g. a box size),
            ``cut`` (delete ``value`` bytes), ``dup`` (repeat ``value`` bytes), ``insert``
            (``value`` bytes of 0xFF), ``truncate`` (keep only up to ``where``).

    Returns:
        The mutated bytes.
    """
    out = bytearray(data)
    for kind, where, value in ops:
        if not out:
            break
        pos = min(int(where * len(out)), len(out) - 1)
        if kind == "flip":
            out[pos] ^= 1 << (value % 8)
        elif kind == "byte":
            out[pos] = value & 0xFF
        elif kind == "int32":
            out[pos:pos + 4] = (_INTERESTING[value % len(_INTERESTING)]).to_bytes(4, "big")
        elif kind == "cut":
            del out[pos:pos + value]
        elif kind == "dup":
            out[pos:pos] = out[pos:pos + value]
        elif kind == "insert":
            out[pos:pos] = b"\xff" * value
        elif kind == "truncate":
            del out[pos:]
        else:
            raise ValueError(f"unknown mutation {kind!r}")
    return bytes(out)


MUTATIONS = ("flip", "byte", "int32", "cut", "dup", "insert", "truncate")
