"""The PyAV frame reader behind `vidsort.decode.read_frames` (the fallback and ``pyav`` backend).

How frames are found without decoding from the start:

1. One pass over the video stream's packets (`packet_scan`, nothing decoded) gives the
   real frame count, every frame's presentation timestamp and where the keyframes are.
2. For each wanted index, seek to the last keyframe at or before it (unless decoding forward
   from where the decoder already is is shorter) and decode forward only up to it.
3. A decoded frame's index is the rank of its pts among all packets' pts ("pts" mode). AVI
   packets carry decode-order numbers, not presentation times: for H.264 the picture order
   counts in the slice headers (`h264_order`) give each packet its presentation index,
   so it is "pts" mode too; otherwise ("order" mode) frames are counted from the keyframe, whose
   decode position equals its presentation index in a closed GOP.
4. In "pts" mode, packets of unwanted frames are decoded with ``skip_frame=NONREF``: pictures
   nothing else references are then not decoded at all (see `PyAVReader._skip`).

If decoding ends before a wanted index (a truncated last packet), the real count is what decoded
and the caller's sampler is asked again with it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from vidsort.decode.packet_scan import scan_packets
from vidsort.errors import ResourceLimitError, VideoDecodeError

# swscale's bicubic is what decord's filter graph uses, so both backends resize alike.
_INTERPOLATION = "BICUBIC"
# Give up on a file after this many packets that fail to decode in one read.
_MAX_BAD_PACKETS = 64
# Sampler calls with a corrected frame count before giving up (each can only shrink it).
_MAX_RECOUNTS = 4
# Frames without a pts tolerated after a seek before giving the seek up.
_MAX_UNANCHORED = 256


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first real video stream: cover art (an "attached picture") is not one."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


class _OrderMismatch(Exception):
    """Decoded frames came out of the order the picture order counts predicted."""


@dataclass
class _Cursor:
    """A decoder position: frames come out of ``frames`` with their presentation index."""

    frames: Iterator[tuple[int, av.VideoFrame]]
    last: int  # index of the frame yielded last (start - 1 before the first)


class PyAVReader:
    """Reads frames by index from one open file (see the module docstring).

    Args:
        path: the file.
        open_container: callable returning a fresh input container (used again to restart).
        num_threads: decoder threads (0 = FFmpeg's choice).
        out_size: ``(width, height)`` of returned frames in display orientation, or None for the
            decoded size.
        max_frames: most frames one read may decode, None for no limit.
    """

    def __init__(self, path: str, open_container: Callable[[], av.container.InputContainer],
                 num_threads: int = 0, out_size: tuple[int, int] | None = None,
                 max_frames: int | None = None,
                 container: av.container.InputContainer | None = None):
        self.path = path
        self._open = open_container
        self.num_threads = num_threads
        self.out_size = out_size
        self.max_frames = max_frames
        self.decoded = 0  # frames decoded so far (all reads), for the max_frames limit
        self._reformatter = VideoReformatter()
        self._bad_packets = 0
        # indices the current read wants; packets of other frames may be skipped (see _skip)
        self._wanted: set[int] = set()
        self._may_skip = True
        self._skipped = 0
        self._use(container if container is not None else open_container())
        self.scan = scan_packets(self.container, self.stream, path)
        self.num_frames = self.scan.count

    def _use(self, container: av.container.InputContainer) -> None:
        self.container = container
        stream = video_stream(container)
        if stream is None:
            raise VideoDecodeError(self.path, "the video stream disappeared on reopening")
        self.stream = stream
        # Threads must be set before the decoder opens (on the first packet decoded).
        self.stream.thread_type = "AUTO"  # frame + slice threads
        self.stream.thread_count = self.num_threads

    def close(self) -> None:
        """Close the container."""
        self.container.close()

    def read(self, sampler: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Decode the frames ``sampler(num_frames)`` asks for.

        Args:
            sampler: maps the frame count to frame indices (any order, repeats allowed).

        Returns:
            ``(frames uint8 (N, H, W, 3), indices int64 (N,))``; `num_frames` is corrected if
            the stream decodes fewer frames than its packets promised.
        """
        for _ in range(_MAX_RECOUNTS):
            indices = check_indices(sampler(self.num_frames), self.num_frames)
            wanted = sorted(set(indices.tolist()))
            try:
                got, last_decoded, hit_end = self._collect(wanted)
            except _OrderMismatch:
                # the picture order counts were misread: count decoded frames instead
                self.scan = self.scan.order_scan  # type: ignore[assignment]
                continue
            missing = [t for t in wanted if t not in got]
            if missing and hit_end and self._skipped:
                # Skipped frames hide where the stream really ends: count again, all decoded.
                self._may_skip = False
                continue
            if missing and hit_end and last_decoded is not None and missing[-1] > last_decoded:
                # The stream ends early (truncated): the real count is what decodes.
                if last_decoded + 1 < self.num_frames:
                    self.num_frames = last_decoded + 1
                    continue
            if not got:
                raise VideoDecodeError(self.path, "no frame could be decoded")
            return _assemble(indices, got), indices
        raise VideoDecodeError(self.path, "the frame count kept changing while decoding")

    # -- decoding ------------------------------------------------------------------------------

    def _collect(self, wanted: list[int]) -> tuple[dict[int, np.ndarray], int | None, bool]:
        """Decode ``wanted`` (sorted, unique). Returns frames by index, the last index decoded
        and whether the stream ended."""
        got: dict[int, np.ndarray] = {}
        wanted_set = set(wanted)
        self._wanted, self._skipped = wanted_set, 0
        cursor: _Cursor | None = None
        last_decoded: int | None = None
        for target in wanted:
            if target in got or (cursor is not None and cursor.last >= target):
                continue  # decoded already, or a frame that never came out (damaged)
            k = bisect.bisect_right(self.scan.key_index, target) - 1
            if not self.scan.seekable:
                if cursor is None:
                    cursor = self._cursor_at(-1)  # type: ignore[assignment]
            elif cursor is None or (k >= 0 and self.scan.key_index[k] > cursor.last + 1):
                cursor = self._seek(max(k, 0), target)
            for index, frame in cursor.frames:
                cursor.last = index
                last_decoded = index if last_decoded is None else max(last_decoded, index)
                if index in wanted_set and index not in got:
                    got[index] = self._to_rgb(frame)
                if index >= target:
                    break
            else:
                return got, last_decoded, True
        return got, last_decoded, False

    def _seek(self, k: int, target: int) -> _Cursor:
        """A cursor at keyframe ``k`` (or an earlier one) whose frames reach ``target``."""
        while k >= 0:
            cursor = self._cursor_at(k)
            if cursor is not None:
                first = next(cursor.frames, None)
                if first is not None and first[0] <= target:
                    return _Cursor(_chain(first, cursor.frames), first[0] - 1)
            k -= 1  # landed past the target (or on nothing): try the keyframe before
        return self._cursor_at(-1)  # type: ignore[return-value]

    def _cursor_at(self, k: int) -> _Cursor | None:
        """Seek to keyframe ``k`` (-1: reopen and start from the first packet); None if the
        seek fails."""
        scan = self.scan
        if k < 0:
            self.container.close()
            self._use(self._open())
            return _Cursor(self._frames(0, None, 0), -1)
        if scan.key_ts[k] is None:
            return None
        try:
            self.container.seek(scan.key_ts[k], stream=self.stream, backward=True)
        except av.FFmpegError:
            return None  # not seekable: the caller falls back to an earlier keyframe
        expect = scan.key_ts[k] if scan.mode == "order" else None
        frames = self._frames(scan.key_index[k], expect, scan.key_index[k])
        return _Cursor(frames, scan.key_index[k] - 1)

    def _frames(self, start: int, expect_ts: int | None,
                first_trusted: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode forward, yielding ``(index, frame)``.

        Args:
            start: presentation index of the first frame that will come out.
            expect_ts: in "order" mode, the dts the first packet must have; counting from
                ``start`` is only right if the seek landed exactly there.
            first_trusted: frames before this index are dropped: after a seek to an open-GOP
                keyframe, the "leading" frames before it reference pictures never decoded.
        """
        scan = self.scan
        prev = start - 1
        # Counting on from ``start`` is trusted from the file's start and in "order" mode (the
        # landing packet is checked); in "pts" mode after a seek, only once a pts was seen.
        anchored = scan.mode == "order" or start == 0 and expect_ts is None and first_trusted == 0
        first_packet = True
        unanchored = 0
        context = self.stream.codec_context
        skipping = False
        context.skip_frame = "DEFAULT"
        for packet in self.container.demux(self.stream):
            if first_packet and packet.size:
                first_packet = False
                if expect_ts is not None and packet.dts != expect_ts:
                    return  # landed elsewhere: no frames, so the caller seeks earlier
            skip = self._skip(packet)
            if skip != skipping:
                context.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            self._skipped += skip
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self._bad_packets += 1
                if self._bad_packets > _MAX_BAD_PACKETS:
                    raise VideoDecodeError(self.path, "too many packets fail to decode") from None
                continue
            for frame in frames:
                self.decoded += 1
                if self.max_frames is not None and self.decoded > self.max_frames:
                    raise ResourceLimitError(
                        self.path, f"reading these frames needs more than max_frames="
                                   f"{self.max_frames} decoded frames")
                index = None
                if scan.mode == "pts" and frame.pts is not None:
                    index = scan.index_of_pts.get(frame.pts)
                if index is not None:
                    anchored = True
                elif not anchored:
                    unanchored += 1
                    if unanchored > _MAX_UNANCHORED:
                        return  # frames without pts: the caller restarts from the beginning
                    continue  # no pts yet after a seek: where we landed is unknown
                if index is not None and index <= prev and scan.order_scan is not None \
                        and index >= first_trusted:
                    raise _OrderMismatch  # frames come out in presentation order
                prev = prev + 1 if index is None else index
                if prev >= first_trusted:
                    yield prev, frame

    def _skip(self, packet: av.Packet) -> bool:
        """Whether the decoder may drop this packet's picture if nothing references it.

        A window of 16 frames at stride 4 wants one frame in four, and in streams with B-frames
        most of the others are non-reference pictures: telling the decoder to skip those
        (``skip_frame=NONREF``, which never affects other pictures) saved ~25 % of the decode
        time of a full-HD H.264 clip. Only in "pts" mode, where a packet's pts names the frame
        it carries; wanted frames are always decoded.
        """
        if not self._may_skip or self.scan.mode != "pts" or packet.pts is None or not packet.size:
            return False
        index = self.scan.index_of_pts.get(packet.pts)
        return index is not None and index not in self._wanted \
            and packet.pts not in self.scan.tail_pts

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """uint8 (H, W, 3) RGB in display orientation, at ``out_size`` if set."""
        rotation = int(round((frame.rotation or 0) / 90)) % 4  # counter-clockwise quarter turns
        if self.out_size is None:
            # Later frames of a stream that changes resolution are scaled to the first size.
            width, height = frame.width, frame.height
            self.out_size = (height, width) if rotation % 2 else (width, height)
        width, height = self.out_size
        if rotation % 2:
            width, height = height, width  # scale in coded orientation, then turn
        # One reformatter per reader: it caches the swscale context, which frame.to_ndarray()
        # would rebuild for every frame (~15 ms for a 1080p bicubic context).
        rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                         interpolation=_INTERPOLATION, threads=self.num_threads)
        array = rgb.to_ndarray()
        if rotation:
            array = np.rot90(array, k=rotation)
        return np.ascontiguousarray(array)


def _chain(first: tuple[int, av.VideoFrame],
           rest: Iterator[tuple[int, av.VideoFrame]]) -> Iterator[tuple[int, av.VideoFrame]]:
    yield first
    yield from rest


def _assemble(indices: np.ndarray, got: dict[int, np.ndarray]) -> np.ndarray:
    """Stack frames in request order. An index that never decoded (a damaged frame mid-stream)
    takes the nearest decoded frame before it (after it if there is none), as decord does."""
    have = sorted(got)
    first = got[have[0]]
    out = np.empty((len(indices), *first.shape), dtype=np.uint8)
    for row, index in enumerate(indices.tolist()):
        frame = got.get(index)
        if frame is None:
            pos = bisect.bisect_right(have, index) - 1
            frame = got[have[max(pos, 0)]]
        out[row] = frame
    return out


class SamplerFailed(Exception):
    """Carries an exception from the caller's sampler (or its bad indices) past the handlers
    that turn decoder failures into `VideoDecodeError`; ``__cause__`` is the original."""


def guard_sampler(sampler: Callable[[int], object]) -> Callable[[int], np.ndarray]:
    """Wrap ``sampler`` so it returns checked indices (`check_indices`) and its failures come
    out as `SamplerFailed`."""
    def call(num_frames: int) -> np.ndarray:
        try:
            return check_indices(sampler(num_frames), num_frames)
        except Exception as exc:
            raise SamplerFailed() from exc
    return call


def check_indices(indices: object, num_frames: int) -> np.ndarray:
    """The sampler's answer as int64 (N,), checked to lie in ``[0, num_frames)``.

    Args:
        indices: what the sampler returned (any shape; flattened row-major).
        num_frames: the frame count it was given.

    Returns:
        The flat int64 index array.
    """
    array = np.asarray(indices)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"the sampler must return integer frame indices, got {array!r}")
    array = array.astype(np.int64).reshape(-1)
    if array.min() < 0 or array.max() >= num_frames:
        raise ValueError(f"the sampler returned indices outside [0, {num_frames}): "
                         f"{array.min()}..{array.max()}")
    return array
