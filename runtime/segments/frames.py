"""The producer side of segment classification: decode once, preprocess each needed frame once.

`produce_frames` runs where the decoding runs (a worker process by default, see
`vidsort.isolation.stream`, or a thread): it reads the video with `SequentialReader`, plans the
windows, and yields a `StreamHeader`, then `FrameChunk`\\ s of preprocessed frames in index order,
then a `StreamEnd`. Preprocessing is per frame (resize, crop, normalise), so a frame that two
windows share is converted and preprocessed once and both windows use the same pixels.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from vidsort.decode.sequential import FrameTimeline, SequentialReader
from vidsort.pipeline import PrepareSpec, _preprocessor
from vidsort.segments.plan import WindowPlan, plan_windows

# Frames per preprocessing call: the preprocessor splits a call's frames between its threads,
# and 8 keep them busy while the RGB frames held for one call stay small (8 full-HD frames:
# 50 MB).
CHUNK_FRAMES = 8


@dataclass(frozen=True)
class StreamHeader:
    """What the consumer needs before any frame: the windows and the frame times."""

    plan: WindowPlan
    timeline: FrameTimeline


@dataclass(frozen=True)
class FrameChunk:
    """Preprocessed frames, ascending indices."""

    indices: np.ndarray  # int64 (k,)
    pixels: np.ndarray   # float32 (k, 3, H, W)


@dataclass(frozen=True)
class StreamEnd:
    """How the pass went (for reports and benchmarks)."""

    backend: str
    fallback: str | None
    frames: int          # frames converted and preprocessed
    decode_s: float      # in the decoder and RGB conversion
    preprocess_s: float


def produce_frames(video: str, spec: PrepareSpec, stride: int | None = None,
                   stride_s: float | None = None, chunk: int = CHUNK_FRAMES,
                   blas_threads: int | None = None,
                   ) -> Iterator[StreamHeader | FrameChunk | StreamEnd]:
    """Decode ``video`` once and yield its windows' frames, preprocessed.

    Args:
        video: a video file.
        spec: decoding (backend, threads, limits, resize_to), sampling (clip_len,
            frame_sample_rate) and preprocessing settings; strategy and num_clips are unused.
        stride: source frames between windows (default: half a window).
        stride_s: the same in seconds (used when ``stride`` is None), at the video's rate.
        chunk: frames per preprocessing call.
        blas_threads: cap this process's BLAS threads (a decode worker sets 1, see below);
            None leaves them alone (a caller's own process).

    Returns:
        An iterator: one `StreamHeader`, `FrameChunk`\\ s, one `StreamEnd`. Raises a
        `VideoError` subclass naming the file.
    """
    if blas_threads is not None:
        # The preprocessor already splits a call's frames between its threads; each of them
        # running OpenBLAS's own threads oversubscribes the cores, and OpenBLAS's busy-waiting
        # then collapses on a loaded machine: preprocessing 144 720p frames took 9-36 s
        # instead of 0.5-0.9 s with one BLAS thread (load average 13 on 2 cores).
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads, user_api="blas")
    with SequentialReader(video, backend=spec.backend, num_threads=spec.decode_threads,
                          limits=spec.limits, resize_to=spec.resize_to) as reader:
        timeline = reader.timeline
        if stride is None and stride_s is not None:
            stride = max(1, round(stride_s * timeline.fps))
        plan = plan_windows(reader.num_frames, spec.clip_len, spec.frame_sample_rate, stride)
        yield StreamHeader(plan, timeline)
        pre = _preprocessor(spec)
        indices: list[int] = []
        frames: list[np.ndarray] = []
        times = {"decode": 0.0, "preprocess": 0.0}
        count = 0

        def chunk_of(started: float) -> FrameChunk:
            ready = time.perf_counter()
            pixels = pre(np.stack(frames))[0]
            times["decode"] += ready - started
            times["preprocess"] += time.perf_counter() - ready
            return FrameChunk(np.asarray(indices, np.int64), pixels)

        started = time.perf_counter()
        for index, frame in reader.frames(plan.needed):
            indices.append(index)
            frames.append(frame)
            if len(frames) == chunk:
                yield chunk_of(started)
                count += len(frames)
                indices, frames = [], []
                started = time.perf_counter()  # the time the consumer kept us waiting is not ours
        if frames:
            yield chunk_of(started)
            count += len(frames)
        yield StreamEnd(reader.backend, reader.fallback, count, round(times["decode"], 4),
                        round(times["preprocess"], 4))
