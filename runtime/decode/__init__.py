"""Decode: the frames a sampler asks for, from a local video file.

- `read` — the entry points `read_frames` and `probe`, limits, path checks, backend choice.
- `pyav_backend` — PyAV: one packet scan, keyframe seeks, skipping unwanted non-reference
  pictures; `packet_scan` indexes the packets, `h264_order` gives H.264-in-AVI its
  presentation order.
- `decord_backend` — decord's ``get_batch`` where it is known to give the right frames.

Default backend: see `vidsort.options.DEFAULT_BACKEND` and `read`'s docstring for why.
"""

from vidsort.decode.read import (
    BACKENDS,
    DecodedClip,
    DecodeLimits,
    VideoInfo,
    probe,
    read_frames,
)

__all__ = ["BACKENDS", "DecodeLimits", "DecodedClip", "VideoInfo", "probe", "read_frames"]
