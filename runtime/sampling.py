"""Which frames of a video make a clip: `sample_indices`.

Strategies:
- ``centre`` (default): the seed recipe's window of ``clip_len * frame_sample_rate`` frames, fixed
  in the middle of the video instead of drawn at random; shorter videos stretch over all frames.
- ``start``: the transformers video-classification pipeline (window from frame 0).
- ``random``: the seed recipe's ``sample_frame_indices`` with a seeded generator.
- ``uniform``: ``clip_len`` frames spread over the whole video.
"""

from __future__ import annotations

import numpy as np
from vidsort.options import STRATEGIES


def _window(start: int, conv: int, clip_len: int) -> np.ndarray:
    end = start + conv
    idx = np.linspace(start, end, num=clip_len)
    return np.clip(idx, start, end - 1).astype(np.int64)


def sample_indices(
    num_video_frames: int,
    clip_len: int,
    frame_sample_rate: int = 4,
    strategy: str = "centre",
    seed: int | None = None,
    num_clips: int = 1,
) -> np.ndarray:
    """Frame indices to decode for one video.

    Args:
        num_video_frames: frames the video really has (>= 1).
        clip_len: frames per clip (the model's ``num_frames``).
        frame_sample_rate: stride between sampled frames.
        strategy: one of ``centre``, ``start``, ``random``, ``uniform``.
        seed: seed for ``random``.
        num_clips: evenly spaced windows (multi-view inference).

    Returns:
        int64 array of shape ``(clip_len,)`` when ``num_clips == 1``, else
        ``(num_clips, clip_len)``; every index lies in ``[0, num_video_frames)``.
    """
    clips = _sample_clips(num_video_frames, clip_len, frame_sample_rate, strategy, seed, num_clips)
    return clips[0] if num_clips == 1 else clips


def _sample_clips(
    num_video_frames: int,
    clip_len: int,
    frame_sample_rate: int,
    strategy: str,
    seed: int | None,
    num_clips: int,
) -> np.ndarray:
    n = int(num_video_frames)
    if n < 1:
        raise ValueError(f"a video needs at least one frame, got {n}")
    if clip_len < 1 or frame_sample_rate < 1 or num_clips < 1:
        raise ValueError("clip_len, frame_sample_rate and num_clips must be >= 1")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")

    conv = clip_len * frame_sample_rate
    if strategy == "uniform":
        # Each clip spreads over an equal share of the video.
        bounds = np.linspace(0, n, num_clips + 1)
        clips = [
            _window(int(bounds[i]), max(1, int(bounds[i + 1]) - int(bounds[i])), clip_len)
            for i in range(num_clips)
        ]
        return np.stack(clips)

    if strategy == "start":
        # transformers' VideoClassificationPipeline: linspace(0, conv - 1, clip_len) as int64.
        # Long videos (> conv frames) get extra windows spaced evenly; short ones clip to the end.
        starts = np.linspace(0, max(0, n - conv), num_clips).astype(np.int64) if num_clips > 1 \
            else np.zeros(1, dtype=np.int64)
        clips = [
            np.minimum(np.linspace(s, s + conv - 1, num=clip_len, dtype=np.int64), n - 1)
            for s in starts
        ]
        return np.stack(clips)

    if n < conv:
        # Too short for the window: stretch one window over all frames, repeated per clip.
        return np.stack([_window(0, n, clip_len)] * num_clips)

    if strategy == "random":
        # The seed's sample_frame_indices: end drawn in [conv, n), window ending there.
        rng = np.random.default_rng(seed)
        clips = []
        for _ in range(num_clips):
            end = int(rng.integers(conv, n)) if n > conv else conv
            clips.append(_window(end - conv, conv, clip_len))
        return np.stack(clips)

    # centre
    if num_clips == 1:
        starts = [(n - conv) // 2]
    else:
        starts = np.linspace(0, n - conv, num_clips).round().astype(np.int64).tolist()
    return np.stack([_window(int(s), conv, clip_len) for s in starts])
