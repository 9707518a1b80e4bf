"""Turning one input (a path or a frames array) into model input, and doing it ahead of time.

`prepare_clip` is the per-video half of the work: decode → sample → preprocess. It is a plain
top-level function of picklable arguments so that it can run in a thread (pipelining: the next
video decodes while the model runs) or in a worker process (isolation from decoder hangs and
crashes, see `vidsort.isolation`).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from vidsort.decode import DecodeLimits, read_frames
from vidsort.errors import UnsupportedInputError, VideoError, VidsortError
from vidsort.options import DEFAULT_BACKEND
from vidsort.preprocess import PreprocessConfig, VideoPreprocessor
from vidsort.sampling import sample_indices


@dataclass(frozen=True)
class PrepareSpec:
    """Everything `prepare_clip` needs, picklable (it travels to worker processes)."""

    #: parsed (`PreprocessConfig`, as `ModelDir.preprocess` holds it) or the raw JSON dict
    preprocessor_config: PreprocessConfig | dict[str, Any]
    clip_len: int
    frame_sample_rate: int = 4
    strategy: str = "centre"
    num_clips: int = 1
    seed: int | None = None
    backend: str = DEFAULT_BACKEND
    decode_threads: int = 0
    limits: DecodeLimits | None = None
    resize_to: tuple[int, int] | None = None

    def sampler(self, num_video_frames: int) -> np.ndarray:
        """Flat frame indices for all clips of a video with ``num_video_frames`` frames."""
        return sample_indices(num_video_frames, self.clip_len, self.frame_sample_rate,
                              self.strategy, self.seed, self.num_clips).reshape(-1)


@dataclass
class PreparedClip:
    """Model input for one video plus what is worth reporting about how it was made."""

    pixel_values: np.ndarray  # float32 (num_clips, T, 3, H, W)
    info: dict[str, Any] = field(default_factory=dict)


_PREPROCESSORS: dict[PreprocessConfig | str, VideoPreprocessor] = {}


def _preprocessor(spec: PrepareSpec) -> VideoPreprocessor:
    # One per config per process: its resize weights are cached inside it.
    config = spec.preprocessor_config
    key = config if isinstance(config, PreprocessConfig) else json.dumps(
        config, sort_keys=True, default=str)
    pre = _PREPROCESSORS.get(key)
    if pre is None:
        pre = _PREPROCESSORS[key] = (VideoPreprocessor(config) if isinstance(
            config, PreprocessConfig) else VideoPreprocessor.from_dict(config))
    return pre


def prepare_clip(video: str | os.PathLike | np.ndarray, spec: PrepareSpec) -> PreparedClip:
    """Decode, sample and preprocess one video.

    Args:
        video: a file path, or uint8 frames (T, H, W, 3) RGB taken as the whole video.
        spec: sampling, decoding and preprocessing settings.

    Returns:
        A `PreparedClip`; raises a `VidsortError` subclass naming the file on bad input.
    """
    started = time.perf_counter()
    if isinstance(video, np.ndarray):
        frames_in = _check_frames(video)
        indices = spec.sampler(frames_in.shape[0])
        frames = frames_in[indices]
        info: dict[str, Any] = {"backend": "array", "num_video_frames": int(frames_in.shape[0])}
    else:
        clip = read_frames(video, spec.sampler, backend=spec.backend,
                           num_threads=spec.decode_threads, limits=spec.limits,
                           resize_to=spec.resize_to, copy=False)  # only read, then dropped
        frames, indices = clip.frames, clip.indices
        info = {"backend": clip.backend, "num_video_frames": int(clip.num_video_frames),
                "width": int(clip.width), "height": int(clip.height)}
        if clip.fallback:
            info["fallback"] = clip.fallback
    decoded = time.perf_counter()
    pre = _preprocessor(spec)
    clips = frames.reshape(spec.num_clips, spec.clip_len, *frames.shape[1:])
    pixel_values = np.concatenate([pre(c) for c in clips], axis=0)
    info["frames"] = [int(i) for i in np.asarray(indices).reshape(-1)]
    info["timings"] = {"decode_s": round(decoded - started, 4),
                       "preprocess_s": round(time.perf_counter() - decoded, 4)}
    return PreparedClip(pixel_values, info)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise UnsupportedInputError(
            None, f"a frames array must be uint8 (T, H, W, 3) RGB with T >= 1, got "
                  f"{frames.dtype} {frames.shape}")
    return frames


def iter_prepared(
    videos: Iterable[str | os.PathLike | np.ndarray],
    spec: PrepareSpec,
    prefetch: int = 2,
) -> Iterator[tuple[Any, PreparedClip | VidsortError]]:
    """Prepare videos in a background thread, ``prefetch`` ahead, yielding in input order.

    A bad video yields its `VidsortError` in place of a clip; the rest go on.

    Args:
        videos: paths or frames arrays.
        spec: how to prepare them.
        prefetch: how many videos may be decoded ahead of the consumer (bounds memory).

    Returns:
        An iterator of ``(video, PreparedClip or error)``.
    """
    pending: deque[tuple[Any, Future]] = deque()
    iterator = iter(videos)
    # Decoders and NumPy release the GIL for their heavy loops, so one thread overlaps decoding
    # of the next video with inference of the current one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidsort-decode") as pool:
        for video in iterator:
            pending.append((video, pool.submit(prepare_clip, video, spec)))
            if len(pending) > max(0, prefetch):
                yield _resolve(*pending.popleft())
        while pending:
            yield _resolve(*pending.popleft())


def _resolve(video: Any, future: Future) -> tuple[Any, PreparedClip | VidsortError]:
    try:
        return video, future.result()
    except VidsortError as exc:
        return video, exc
    except Exception as exc:  # a bug or MemoryError on one file must not end the batch
        name = None if isinstance(video, np.ndarray) else video
        return video, VideoError(name, f"unexpected {type(exc).__name__}: {exc}")
