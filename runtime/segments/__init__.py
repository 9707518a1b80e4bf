"""Long videos: labels with timestamps (windows, segments, video-level labels), decoded once.

``VideoClassifier.classify_segments(video)`` and ``vidsort classify --segments`` come here.

- `plan` — which frames each window feeds the model (`plan_windows`).
- `frames` — the producer: one sequential decode pass (`vidsort.decode.sequential`), each
  needed frame converted and preprocessed once, streamed in chunks.
- `run` — the consumer: windows assembled and batched through the model while decoding runs
  ahead, in a worker process (`vidsort.isolation.stream`) or a thread (`segment_video`).
- `merge` — windows → segments and video labels (the result dict).
- `vtt`, `plot` — WebVTT subtitles, a PNG of scores over time (matplotlib: the ``plot`` extra).
- `cli` — ``vidsort classify --segments``.
"""

from vidsort.segments.merge import build_result, segments
from vidsort.segments.plan import WindowPlan, default_stride, plan_windows
from vidsort.segments.run import SegmentRun, segment_video
from vidsort.segments.vtt import vtt_text, write_vtt

__all__ = ["SegmentRun", "WindowPlan", "build_result", "default_stride", "plan_windows",
           "segment_video", "segments", "vtt_text", "write_vtt"]
