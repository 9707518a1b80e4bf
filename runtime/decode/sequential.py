"""One pass over a video in presentation order: the frames a set of windows needs, each once.

`read_frames` seeks to each clip it is asked for; a long video classified window by window
(`vidsort.segments`) wants hundreds of overlapping windows, and seeking per window would decode
the pictures between each keyframe and its window again and again. `SequentialReader` instead
demuxes the file once to index its frames (`packet_scan`: the real count and every frame's
timestamp), then decodes it once from the start, in order, and converts to RGB only the frames
it is asked for. With PyAV the non-reference pictures nobody wants are not even decoded
(``skip_frame``, as in `pyav_backend`); with decord, ``skip_frames`` decodes without converting.

The checks before decoding (path, container, limits, the downscale over ``max_pixels``) and the
choice of backend are `read`'s, so a file is refused or handed to PyAV here exactly as there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from vidsort.decode.decord_backend import (
    _import_decord,
    _reason,
    decord_unsuitable,
    pyav_reads_faster,
)
from vidsort.decode.pyav_backend import PyAVReader, _OrderMismatch
from vidsort.decode.read import (
    DecodeLimits,
    _check_path,
    _info,
    _open,
    _output_size,
    pyav_errors,
)
from vidsort.errors import ResourceLimitError, VideoDecodeError
from vidsort.options import BACKENDS, DEFAULT_BACKEND


@dataclass(frozen=True)
class FrameTimeline:
    """When each frame of a video is shown, from its timestamps (right for variable rates)."""

    times: np.ndarray   # float64 (num_frames,), seconds from the first frame (times[0] == 0)
    duration_s: float   # end of the last frame
    fps: float          # the stream's average rate (frames / duration when it has none)

    @property
    def num_frames(self) -> int:
        """Frames in the video."""
        return int(self.times.shape[0])

    def end_of(self, index: int) -> float:
        """Time at which frame ``index`` stops being shown (the next frame's time)."""
        return self.duration_s if index + 1 >= self.num_frames else float(self.times[index + 1])


class _SequentialPyAV(PyAVReader):
    """`PyAVReader`'s decoding loop, run once from the start instead of from keyframe seeks."""

    def iter_wanted(self, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode from the first packet; yield ``(index, RGB frame)`` for indices in ``wanted``
        (ascending, each once; frames that never decode are missing)."""
        last = -1
        while True:
            self._wanted, self._skipped = wanted, 0
            cursor = self._cursor_at(-1)  # reopen: the packet scan read to the end
            try:
                for index, frame in cursor.frames:
                    if index > last and index in wanted:
                        last = index
                        yield index, self._to_rgb(frame)
                return
            except _OrderMismatch:
                # H.264 in AVI whose picture order counts were misread: count decoded frames
                # instead (as `PyAVReader.read` does) and go on after the frames already given
                self.scan = self.scan.order_scan  # type: ignore[assignment]


class SequentialReader:
    """Reads a video once, in order, for the frames a caller names (see the module docstring).

    Args:
        path: a video file.
        backend: ``"pyav"`` or ``"decord"`` (decord only where `read_frames` would use it).
        num_threads: decoder threads (0 = the decoder's choice).
        limits: resource limits (defaults: `DecodeLimits()`); ``max_frames`` bounds the frames
            the whole pass decodes.
        resize_to: optional ``(width, height)`` to scale frames to while decoding.

    Raises a `VideoError` subclass naming the file for anything unusable; `timeline` and
    `num_frames` are known once constructed (nothing is decoded before `frames`).
    """

    def __init__(self, path, *, backend: str = DEFAULT_BACKEND, num_threads: int = 0,
                 limits: DecodeLimits | None = None,
                 resize_to: tuple[int, int] | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        limits = limits or DecodeLimits()
        self.path = _check_path(path, limits)
        self.limits = limits
        container = _open(self.path)
        self._reader: _SequentialPyAV | None = None
        try:
            info = _info(self.path, container, limits)
            self._size, self.downscaled = _output_size(info, resize_to, limits)
            with pyav_errors(self.path):
                self._reader = _SequentialPyAV(self.path, lambda: _open(self.path), num_threads,
                                               self._size, limits.max_frames,
                                               container=container)
        except BaseException:
            if self._reader is None:
                container.close()
            raise
        self.num_threads = num_threads
        self.codec = info.codec
        self.fallback: str | None = None
        self.backend = "pyav"
        if backend == "decord":
            self.fallback = decord_unsuitable(info, self.downscaled) or pyav_reads_faster(info)
            self.backend = "pyav" if self.fallback else "decord"
        self.timeline = _timeline(self._reader, info.fps, self.path)

    @property
    def num_frames(self) -> int:
        """Frames in the video (from the packet scan)."""
        return self.timeline.num_frames

    def close(self) -> None:
        """Close the file."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> SequentialReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def frames(self, wanted: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode the video once and yield ``(index, frame)`` for every index in ``wanted``.

        Args:
            wanted: frame indices in ``[0, num_frames)`` (any order; repeats ignored).

        Returns:
            An iterator of ``(index, uint8 (H, W, 3) RGB)`` in ascending index order, one per
            wanted index. A wanted frame that does not decode (damaged, or past a truncated
            end) takes the nearest earlier one that did (the first one when none did), as
            `read_frames` does; raises `VideoDecodeError` if none decodes at all.
        """
        order = sorted({int(i) for i in wanted})
        if not order:
            return
        if order[0] < 0 or order[-1] >= self.num_frames:
            raise ValueError(f"frame indices must lie in [0, {self.num_frames})")
        given = -1
        decoded = self._decord(order) if self.backend == "decord" else None
        if decoded is not None:
            try:
                for index, frame in decoded:
                    given = index
                    yield index, frame
                return
            except _DecordFailed as exc:  # go on with PyAV after the frames already given
                self.fallback, self.backend = f"decord failed: {exc}", "pyav"
        rest = [i for i in order if i > given]
        yield from self._fill(rest, self._pyav(set(rest)))

    def _pyav(self, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
        with pyav_errors(self.path):
            yield from self._reader.iter_wanted(wanted)  # type: ignore[union-attr]

    def _fill(self, order: list[int],
              got: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield a frame for every index of ``order`` from the decoded ``got``, filling gaps."""
        k, last, held = 0, None, []
        for index, frame in got:
            while k < len(order) and order[k] < index:  # wanted, but never came out
                if last is None:
                    held.append(order[k])  # before the first decoded frame: take that one
                else:
                    yield order[k], last
                k += 1
            for early in held:
                yield early, frame
            held = []
            if k < len(order) and order[k] == index:
                yield index, frame
                last, k = frame, k + 1
            if k == len(order):
                return
        if last is None:
            raise VideoDecodeError(self.path, "no frame could be decoded")
        for index in order[k:]:  # the stream ended early
            yield index, last

    def _decord(self, order: list[int]) -> Iterator[tuple[int, np.ndarray]] | None:
        """decord's reader stepping forward (``skip_frames`` + ``next``: no seek), or None
        with `fallback` set when decord cannot read the file as the scan indexed it."""
        max_frames = self.limits.max_frames
        if max_frames is not None and order[-1] + 1 > max_frames:
            raise ResourceLimitError(self.path, f"reading these frames needs {order[-1] + 1} "
                                                f"decoded frames, over max_frames={max_frames}")
        try:
            decord = _import_decord()
            width, height = self._size if self._size is not None else (-1, -1)
            reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=width,
                                        height=height, num_threads=self.num_threads)
            count = len(reader)
        except Exception as exc:  # DECORDError, RuntimeError...
            self.fallback, self.backend = f"decord failed: {_reason(exc)}", "pyav"
            return None
        if count != self.num_frames:
            self.fallback, self.backend = (f"decord skipped: it counts {count} frames, the "
                                           f"packets {self.num_frames}"), "pyav"
            return None
        return _step_decord(reader, order)


class _DecordFailed(Exception):
    """decord raised mid-pass; the message says why (for the fallback note)."""


def _step_decord(reader, order: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    pos = 0
    for index in order:
        try:
            if index > pos:
                reader.skip_frames(index - pos)
            frame = reader.next().asnumpy()
        except Exception as exc:
            raise _DecordFailed(_reason(exc)) from None
        pos = index + 1
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise _DecordFailed(f"unexpected frame {frame.dtype} {frame.shape}")
        yield index, frame


def _timeline(reader: PyAVReader, fps: float | None, path: str) -> FrameTimeline:
    """Frame times from the packet scan's timestamps.

    In "pts" mode the sorted pts are the presentation times (for H.264 in AVI they are decode
    numbers, which sorted give the same constant-rate grid). In "order" mode there are no
    usable pts: frames are spaced at the stream's rate.
    """
    scan, count = reader.scan, reader.num_frames
    rate = fps if fps and fps > 0 else None
    if scan.mode == "pts" and scan.index_of_pts:
        tb = float(reader.stream.time_base or 0) or (1.0 / rate if rate else 0.0)
        pts = np.sort(np.fromiter(scan.index_of_pts, dtype=np.int64))[:count]
        times = (pts - pts[0]).astype(np.float64) * tb
    elif rate:
        times = np.arange(count, dtype=np.float64) / rate
    else:
        raise VideoDecodeError(path, "neither frame timestamps nor a frame rate: frame times "
                                     "are unknown")
    if count >= 2:
        last = float(times[-1] - times[-2])
    else:
        last = 1.0 / rate if rate else 0.0
    duration = float(times[-1]) + max(last, 0.0)
    if rate is None:
        rate = count / duration if duration > 0 else 0.0
    return FrameTimeline(times, duration, float(rate))
