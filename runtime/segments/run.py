"""The consumer side: frames in, windows assembled and batched through the model, result out.

`segment_video` starts `frames.produce_frames` in a worker process (isolation as the classifier
has it; `vidsort.isolation.stream`) or in a thread (``isolation=None``), a bounded number of
chunks ahead, so decoding runs while the model works. A window is stacked from the frames it
needs as soon as its last one has arrived; frames no later window needs are dropped right away,
so memory stays bounded whatever the video's length.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from vidsort.errors import UnsupportedInputError, VideoError, VidsortError, first_line
from vidsort.isolation import IsolatedPreparer, IsolationSettings
from vidsort.isolation.stream import put_unless_stopped, stream_in_worker
from vidsort.options import FUNCTIONS, SEGMENT_BATCH_SIZE
from vidsort.segments.frames import (
    CHUNK_FRAMES,
    FrameChunk,
    StreamEnd,
    StreamHeader,
    produce_frames,
)
from vidsort.segments.merge import build_result, window_scores


@dataclass
class SegmentRun:
    """`segment_video`'s answer: the result dict, every window's scores, how it was made."""

    result: dict[str, Any]
    scores: np.ndarray  # float64 (windows, num_labels), all labels (the result keeps top k)
    stats: dict[str, Any] = field(default_factory=dict)


def segment_video(clf, video: str | os.PathLike, *, stride: int | None = None,
                  stride_s: float | None = None, top_k: int = 5, min_score: float | None = None,
                  batch_size: int = SEGMENT_BATCH_SIZE, function: str | None = None,
                  progress: bool = False,
                  isolate: bool | None = None) -> SegmentRun:
    """Labels with timestamps for one video, decoded once (see `vidsort.segments`).

    Args:
        clf: a `vidsort.VideoClassifier` (model, session, decoding and isolation settings).
        video: a video file.
        stride: source frames between window starts (default: half a window).
        stride_s: the stride in seconds instead (at the video's average rate).
        top_k: labels per window and for the whole video.
        min_score: windows whose top score is below this are left unlabelled.
        batch_size: windows per inference call.
        function: softmax | sigmoid | none (default: the model's).
        progress: show a tqdm bar on stderr (it appears only if the video takes over a second).
        isolate: decode in a worker process (default: when the classifier isolates decoding).

    Returns:
        A `SegmentRun`; ``result`` is ``{"video", "duration_s", "fps", "windows",
        "segments", "labels"}``. Raises a `VideoError` subclass naming the file for a bad
        video (`DecodeTimeout`, `DecoderCrashed` when isolated), ValueError for bad arguments.
    """
    function = function or clf.function
    _check_arguments(video, stride, stride_s, top_k, min_score, batch_size, function)
    _warn_unused_sampling(clf)
    name = os.fspath(video)
    started = time.perf_counter()
    spec = clf.spec
    chunk = CHUNK_FRAMES
    # enough chunks for the next batch of windows to be decoded while the model runs this one
    ahead = math.ceil(batch_size * spec.clip_len / chunk) + 1
    settings = _isolation(clf, isolate)
    if settings:  # a decode worker of our own: one BLAS thread (see produce_frames)
        args = (video, spec, stride, stride_s, chunk, 1)
        stream = stream_in_worker(produce_frames, args, settings, name, ahead)
    else:
        stream = _in_thread(produce_frames(video, spec, stride, stride_s, chunk), ahead, name)
    try:
        run = _consume(clf, stream, batch_size, progress, name)
    finally:
        stream.close()
    header, logits, stats = run
    scores = window_scores(logits, function)
    result = build_result(name, header.plan, header.timeline, scores, clf.labels, top_k,
                          min_score)
    stats["wall_s"] = round(time.perf_counter() - started, 4)
    return SegmentRun(result, scores, stats)


def _consume(clf, stream: Iterator[Any], batch_size: int, progress: bool,
             name: str) -> tuple[StreamHeader, np.ndarray, dict[str, Any]]:
    waited = time.perf_counter()
    header = next(stream)
    if not isinstance(header, StreamHeader):
        raise VideoError(name, f"unexpected message from the decoder: {type(header).__name__}")
    wait_s = time.perf_counter() - waited
    plan = header.plan
    count = plan.num_windows
    firsts, lasts = plan.indices.min(axis=1), plan.indices.max(axis=1)
    frames: dict[int, np.ndarray] = {}  # index -> (3, H, W); insertion order is index order
    batch: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    model_s, end, ready, held = 0.0, None, 0, 0
    bar = _progress_bar(count, name, progress)
    try:
        while True:
            waited = time.perf_counter()
            message = next(stream, None)
            wait_s += time.perf_counter() - waited
            if isinstance(message, FrameChunk):
                frames.update(zip(message.indices.tolist(), message.pixels, strict=True))
                held = max(held, len(frames))
            elif isinstance(message, StreamEnd):
                end = message
            elif message is None:
                break
            while ready < count and int(lasts[ready]) in frames:
                batch.append(np.stack([frames[i] for i in plan.indices[ready].tolist()]))
                ready += 1
                if ready < count:  # windows start in order: frames before the next one's
                    keep = int(firsts[ready])     # first frame are done with
                    while frames and next(iter(frames)) < keep:
                        del frames[next(iter(frames))]
                if len(batch) == batch_size or ready == count:
                    model_s += _run_model(clf, batch, rows, name)
                    bar.update(len(batch))
                    batch = []
    finally:
        bar.close()
    if ready < count:
        raise VideoError(name, f"the decoder stopped after {ready} of {count} windows")
    stats: dict[str, Any] = {"windows": count, "batch_size": batch_size,
                             "model_s": round(model_s, 4), "wait_s": round(wait_s, 4),
                             "frames_held_max": held}
    if end is not None:
        stats.update(backend=end.backend, frames=end.frames, decode_s=end.decode_s,
                     preprocess_s=end.preprocess_s)
        if end.fallback:
            stats["fallback"] = end.fallback
    return header, np.concatenate(rows, axis=0), stats


def _run_model(clf, batch: list[np.ndarray], rows: list[np.ndarray], name: str) -> float:
    started = time.perf_counter()
    try:
        rows.append(clf.predict_logits(np.stack(batch)))
    except Exception as exc:  # e.g. out of memory: this video's error, not the run's end
        raise VideoError(name, f"inference failed: {type(exc).__name__}: "
                               f"{first_line(exc, 300)}") from None
    return time.perf_counter() - started


#: seconds before the progress bar appears: short videos finish without one
PROGRESS_DELAY_S = 1.0


def _progress_bar(total: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=os.path.basename(name)[:30], unit="window", file=sys.stderr,
                disable=not enabled, delay=PROGRESS_DELAY_S, leave=False, dynamic_ncols=True)


def _isolation(clf, isolate: bool | None) -> IsolationSettings | None:
    if isolate is False or (isolate is None and clf.isolation is None):
        return None
    settings = clf.isolation.settings if isinstance(clf.isolation, IsolatedPreparer) else \
        clf.isolation if isinstance(clf.isolation, IsolationSettings) else IsolationSettings()
    if settings.start_method == "fork":
        # a worker per video, started while the model's inference threads run: forking this
        # process then could deadlock the worker; the fork server's are clean
        settings = replace(settings, start_method=None)
    return settings


def _check_arguments(video: Any, stride: int | None, stride_s: float | None, top_k: int,
                     min_score: float | None, batch_size: int, function: str) -> None:
    if isinstance(video, np.ndarray):
        raise UnsupportedInputError(None, "segments need a video file: window times come from "
                                          "its frame timestamps, which a frames array lacks")
    if stride is not None and (isinstance(stride, bool) or int(stride) != stride or stride < 1):
        raise ValueError(f"stride must be a whole number of frames >= 1, got {stride!r}")
    if stride_s is not None and not stride_s > 0:
        raise ValueError(f"stride_s must be > 0 seconds, got {stride_s!r}")
    if int(top_k) < 1 or int(batch_size) < 1:
        raise ValueError("top_k and batch_size must be >= 1")
    if min_score is not None and not math.isfinite(min_score):
        raise ValueError(f"min_score must be a finite number, got {min_score!r}")
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}")


def _warn_unused_sampling(clf) -> None:
    spec = clf.spec
    if spec.num_clips != 1 or spec.strategy != clf.model.strategy:
        warnings.warn("num_clips and strategy do not apply to segments: windows tile the whole "
                      "video", stacklevel=3)


def _in_thread(items: Iterator[Any], ahead: int, name: str) -> Iterator[Any]:
    """``items`` produced by a background thread, at most ``ahead`` in advance."""
    box: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if not put_unless_stopped(box, ("item", item), stop):
                    return
            put_unless_stopped(box, ("item", done), stop)
        except VidsortError as exc:
            put_unless_stopped(box, ("error", exc), stop)
        except Exception as exc:  # a bug or MemoryError on one file: still a typed error
            error = VideoError(name, f"unexpected {type(exc).__name__}: {exc}")
            put_unless_stopped(box, ("error", error), stop)
        finally:
            items.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=produce, name="vidsort-segments", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "error":
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()
        thread.join()
