"""Which frames each window of a long video feeds the model: `plan_windows`.

A window is one model input: ``clip_len`` frames spread over ``clip_len * frame_sample_rate``
source frames exactly as the ``centre`` strategy spreads them over a video that long (the seed
recipe's sampling the model was trained with), so a window's prediction is what whole-video
classification would say of that stretch. Windows start every ``stride`` source frames and the
last one ends at the last frame; a video shorter than one window is one window stretched over
all its frames, as `sample_indices` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vidsort.sampling import sample_indices


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one video, in time order."""

    starts: np.ndarray   # int64 (W,): first source frame of each window
    span: int            # source frames a window covers (the last may not fit: see `end`)
    indices: np.ndarray  # int64 (W, clip_len): the frames each window feeds the model
    num_frames: int      # frames in the video

    @property
    def num_windows(self) -> int:
        """How many windows (model inputs) the video gets."""
        return int(self.starts.shape[0])

    @property
    def needed(self) -> np.ndarray:
        """Every frame some window needs, ascending, each once."""
        return np.unique(self.indices)

    def end(self, window: int) -> int:
        """One past the last source frame ``window`` covers."""
        return min(int(self.starts[window]) + self.span, self.num_frames)


def default_stride(clip_len: int, frame_sample_rate: int) -> int:
    """Half a window, in source frames (windows overlap by half)."""
    return max(1, clip_len * frame_sample_rate // 2)


def plan_windows(num_frames: int, clip_len: int, frame_sample_rate: int,
                 stride: int | None = None) -> WindowPlan:
    """Tile a video of ``num_frames`` frames with windows.

    Args:
        num_frames: frames in the video (>= 1).
        clip_len: frames per model input.
        frame_sample_rate: source frames between sampled frames.
        stride: source frames between window starts (default: `default_stride`).

    Returns:
        The `WindowPlan`: windows from frame 0, every ``stride`` frames, the last one ending at
        the last frame.
    """
    if num_frames < 1 or clip_len < 1 or frame_sample_rate < 1:
        raise ValueError("num_frames, clip_len and frame_sample_rate must be >= 1")
    if stride is None:
        stride = default_stride(clip_len, frame_sample_rate)
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a whole number of frames >= 1, got {stride!r}")
    span = clip_len * frame_sample_rate
    if num_frames <= span:
        indices = sample_indices(num_frames, clip_len, frame_sample_rate, "centre")
        return WindowPlan(np.zeros(1, np.int64), num_frames, indices[None, :], num_frames)
    starts = np.arange(0, num_frames - span + 1, int(stride), dtype=np.int64)
    if starts[-1] != num_frames - span:
        starts = np.append(starts, num_frames - span)
    # the centre clip of a video exactly one window long, moved to each start
    offsets = sample_indices(span, clip_len, frame_sample_rate, "centre")
    return WindowPlan(starts, span, starts[:, None] + offsets[None, :], num_frames)
