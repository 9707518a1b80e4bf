"""Indexing a video stream's frames from one demux pass, before anything is decoded.

Container headers are not trusted: they over-report frames of truncated files, and MKV/WebM
have no count at all. One pass over the video stream's *packets* (demux only, the same pass
decord makes when it opens a file) gives the real frame count, every frame's presentation
timestamp and where the keyframes are; `vidsort.decode.pyav_backend` then seeks and decodes by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
from vidsort.decode.h264_order import PocReader
from vidsort.errors import VideoDecodeError

# The last packets (in decode order) are always decoded, never skipped: in a truncated file they
# may be damaged, and their decode errors are what reveals where the decodable frames end (a
# skipped damaged B-frame would let a later frame take its place).
_TAIL_PACKETS = 8
# Demuxers whose keyframe seeks were checked to land right (with the pts checks below). Elsewhere
# frames are decoded from the start: MPEG-PS seeks by timestamp bisection and, with MPEG-2's open
# GOPs, gave frames off by one; raw streams (.h264, .y4m...) have no index at all.
SEEKABLE_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "flv", "mpegts")


@dataclass
class PacketScan:
    """What one demux pass over the video stream found."""

    count: int                  # frames (non-empty, non-discarded packets)
    mode: str                   # "pts" or "order", see the module docstring
    seekable: bool              # keyframe seeks are trusted (else decode from the start)
    key_index: list[int]        # presentation index of each keyframe, ascending
    key_ts: list[int | None]    # the timestamp to seek to for that keyframe
    index_of_pts: dict[int, int]  # pts -> presentation index ("pts" mode)
    # "pts" mode built from H.264 picture order counts (AVI): the scan to use instead if the
    # decoder's output order ever disagrees with it
    order_scan: PacketScan | None = None
    # pts of the last packets in decode order: never skipped (see `PyAVReader._skip`)
    tail_pts: frozenset = frozenset()


def scan_packets(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 path: str) -> PacketScan:
    """Demux every packet of ``stream`` once (no decoding) and index the frames.

    Args:
        container: an open input container, positioned at the start.
        stream: its video stream.
        path: the file, for error messages.

    Returns:
        The `PacketScan`; raises `VideoDecodeError` if the stream holds no packets.
    """
    pts_list: list[int | None] = []
    dts_list: list[int | None] = []
    keys: list[int] = []
    discarded = 0
    fmt = container.format.name
    poc = None
    if "avi" in fmt and stream.codec_context.name == "h264":
        poc = PocReader(stream.codec_context.extradata)
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                discarded += packet.size > 0
                continue  # the end-of-stream marker, or frames an edit list hides
            if packet.is_keyframe:
                keys.append(len(pts_list))
            pts_list.append(packet.pts)
            dts_list.append(packet.dts)
            if poc is not None and poc.failed is None:  # no copying once the order is unknown
                poc.add(bytes(packet))
    except av.FFmpegError:
        pass  # a damaged tail: keep the packets read so far, decoding decides what is real
    if not pts_list:
        raise VideoDecodeError(path, "the video stream holds no frames (no packets)")
    seekable = fmt in SEEKABLE_FORMATS
    unique_pts = None not in pts_list and len(set(pts_list)) == len(pts_list)
    tail_pts = frozenset(pts_list[-_TAIL_PACKETS:])
    if not keys:
        keys = [0]  # no flags (some raw streams): only the start is a safe place to begin
    if unique_pts and "avi" not in fmt:
        order = sorted(pts_list)  # type: ignore[type-var]
        index_of_pts = {p: i for i, p in enumerate(order)}
        key_index = sorted(index_of_pts[pts_list[k]] for k in keys)  # type: ignore[index]
        key_ts: list[int | None] = [order[i] for i in key_index]
        count = len(order)
        if fmt.startswith("mov,mp4") and stream.frames > count + discarded:
            # MP4's sample table promises frames whose data is missing: the file was cut.
            # Frames shown before the cut may be stored after it (B-frames), so the last few
            # indices could belong to frames past a hole: keep only the ones that cannot.
            count = max(1, count - _TAIL_PACKETS)
        return PacketScan(count, "pts", seekable, key_index, key_ts, index_of_pts,
                          tail_pts=tail_pts)

    def seek_ts(k: int) -> int | None:  # AVI indexes dts
        return dts_list[k] if dts_list[k] is not None else pts_list[k]

    if unique_pts:
        # AVI: packet pts are presentation numbers (MPEG-4 Part 2) or decode numbers (H.264,
        # where a keyframe's decode and presentation positions agree): either way a keyframe's
        # rank among them is its presentation index. Seek by dts, which AVI indexes.
        rank = {p: i for i, p in enumerate(sorted(pts_list))}  # type: ignore[type-var]
        pairs = sorted((rank[pts_list[k]], k) for k in keys)
    else:
        pairs = [(k, k) for k in keys]  # no usable pts: decode position
    scan = PacketScan(len(pts_list), "order", seekable, [i for i, _ in pairs],
                      [seek_ts(k) for _, k in pairs], {})
    ranks = poc.ranks() if poc is not None and unique_pts else None
    if ranks is None:
        return scan
    # H.264 in AVI: packet pts are decode numbers, and decoded frames keep their packet's pts;
    # the picture order counts give each its presentation index, so frames are found as in MP4
    keyed = sorted((ranks[k], seek_ts(k)) for k in keys)
    return PacketScan(len(pts_list), "pts", seekable, [i for i, _ in keyed],
                      [ts for _, ts in keyed], dict(zip(pts_list, ranks, strict=True)),
                      order_scan=scan, tail_pts=tail_pts)
