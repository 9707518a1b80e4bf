"""A PNG per video: the top labels' scores over time, with the segments drawn above them.

Needs matplotlib (the ``plot`` extra); import this module through
``vidsort.errors.import_extra("vidsort.segments.plot", "plot")`` so a missing extra is one line.
Uses matplotlib's object API with the Agg canvas: no pyplot, no global backend switch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: labels drawn: the video's top labels, at most this many
MAX_LINES = 5


def plot_scores(result: dict[str, Any], scores: np.ndarray, labels: Sequence[str],
                path: str | os.PathLike) -> Path:
    """Draw every window's scores of the video's top labels over time to a PNG.

    Args:
        result: a `vidsort.segments.segment_video` result.
        scores: its (windows, num_labels) scores (`SegmentRun.scores`).
        labels: label names in score order.
        path: the PNG to write.

    Returns:
        The path written.
    """
    centres = [(w["start_s"] + w["end_s"]) / 2 for w in result["windows"]]
    names = [entry["label"] for entry in result["labels"][:MAX_LINES]]
    column = {name: i for i, name in enumerate(labels)}
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    for name in names:
        axes.plot(centres, scores[:, column[name]], marker="." if len(centres) < 60 else None,
                  label=name, color=colours[name])
    for seg in result["segments"]:
        axes.axvspan(seg["start_s"], seg["end_s"], ymin=0.96, ymax=1.0,
                     color=colours.get(seg["label"], "0.6"), linewidth=0)
    axes.set_xlim(0, max(result["duration_s"], 1e-3))
    if scores.size and scores.min() >= 0 and scores.max() <= 1:  # probabilities
        axes.set_ylim(0, 1.05)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("score")
    axes.set_title(Path(result["video"]).name + "  (bar on top: segments; grey: other labels)",
                   fontsize=10)
    if names:
        axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    path = Path(path)
    figure.savefig(path, format="png")
    return path
