"""Window scores → the result dict: windows with times, merged segments, video labels.

Segments: consecutive windows with the same top label merge; the boundary between two windows
that disagree lies halfway between their centres; the first segment starts at 0 and the last
ends at the video's end, so segments tile the video, except where a window's top score is below
``min_score`` (no label there: that window's stretch is a gap). A segment's score is the mean
top score of its windows. Video labels: the mean of the windows' scores, top k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from vidsort.decode.sequential import FrameTimeline
from vidsort.postprocess import apply_function, top_k_predictions
from vidsort.segments.plan import WindowPlan

#: decimals of the seconds in results (milliseconds, as WebVTT writes them)
TIME_DECIMALS = 3


def window_times(plan: WindowPlan, timeline: FrameTimeline) -> np.ndarray:
    """float64 (W, 2): each window's start and end in seconds, from its frames' timestamps."""
    starts = timeline.times[plan.starts]
    ends = np.array([timeline.end_of(plan.end(w) - 1) for w in range(plan.num_windows)])
    return np.stack([starts, ends], axis=1)


def segments(times: np.ndarray, top: np.ndarray, top_scores: np.ndarray, duration_s: float,
             labels: Sequence[str], min_score: float | None = None) -> list[dict[str, Any]]:
    """Merge windows into labelled segments (see the module docstring).

    Args:
        times: (W, 2) window start/end seconds, windows in time order.
        top: (W,) index of each window's top label.
        top_scores: (W,) its score.
        duration_s: the video's end.
        labels: label names.
        min_score: windows whose top score is below this get no label.

    Returns:
        ``[{"label", "start_s", "end_s", "score"}, ...]`` in time order.
    """
    count = len(top)
    centres = times.mean(axis=1)
    cuts = np.concatenate([[0.0], (centres[:-1] + centres[1:]) / 2, [duration_s]])
    keep = np.ones(count, bool) if min_score is None else top_scores >= min_score
    out: list[dict[str, Any]] = []
    first = 0
    for w in range(1, count + 1):
        if w < count and keep[w] == keep[first] and top[w] == top[first]:
            continue
        if keep[first]:
            out.append({"label": labels[int(top[first])],
                        "start_s": _t(cuts[first]), "end_s": _t(cuts[w]),
                        "score": float(np.mean(top_scores[first:w]))})
        first = w
    return out


def window_scores(logits: np.ndarray, function: str) -> np.ndarray:
    """float64 (W, num_labels) scores from the windows' logits (softmax, sigmoid or none)."""
    return apply_function(logits, function)


def build_result(video: str, plan: WindowPlan, timeline: FrameTimeline, scores: np.ndarray,
                 labels: Sequence[str], top_k: int, min_score: float | None) -> dict[str, Any]:
    """The result dict of `vidsort.segments.segment_video`.

    Args:
        video: the name to report.
        plan: the windows.
        timeline: frame times.
        scores: (W, num_labels) `window_scores`, one row per window.
        labels: label names.
        top_k: labels per window and for the video.
        min_score: see `segments`.

    Returns:
        ``{"video", "duration_s", "fps", "windows", "segments", "labels"}``.
    """
    times = window_times(plan, timeline)
    # "none": the scores are final already (top_k_predictions would apply the function again)
    windows = [{"start_s": _t(start), "end_s": _t(end),
                "predictions": top_k_predictions(row, labels, top_k, "none")}
               for (start, end), row in zip(times, scores, strict=True)]
    top = scores.argmax(axis=1)  # the first of equal scores, as top_k_predictions ranks them
    top_scores = scores[np.arange(len(top)), top]
    return {
        "video": video,
        "duration_s": _t(timeline.duration_s),
        "fps": round(float(timeline.fps), 3),
        "windows": windows,
        "segments": segments(times, top, top_scores, timeline.duration_s, labels, min_score),
        "labels": top_k_predictions(scores.mean(axis=0), labels, top_k, "none"),
    }


def _t(seconds: float) -> float:
    return round(float(seconds), TIME_DECIMALS)
