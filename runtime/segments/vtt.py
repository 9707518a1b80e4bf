"""Segments as WebVTT subtitles: players show the label of the moment under the picture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the WebVTT cue time format."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def vtt_text(result: dict[str, Any]) -> str:
    """A WebVTT document whose cues are ``result["segments"]`` ("label (score)").

    Args:
        result: a `vidsort.segments.segment_video` result.

    Returns:
        The file's text.
    """
    lines = ["WEBVTT", ""]
    for number, seg in enumerate(result["segments"], 1):
        # "-->" cannot occur in a label's cue text line: WebVTT would read it as a timing
        label = str(seg["label"]).replace("-->", "->").replace("\n", " ")
        lines += [str(number), f"{timestamp(seg['start_s'])} --> {timestamp(seg['end_s'])}",
                  f"{label} ({seg['score']:.2f})", ""]
    return "\n".join(lines)


def output_path(directory: str | os.PathLike, video: str, suffix: str,
                taken: set[str]) -> Path:
    """``directory/<video stem><suffix>``, numbered (``-2``, ``-3``...) when a file of this run
    already took the name (two videos with one name in different folders)."""
    stem = Path(video).stem or "video"
    name, number = stem + suffix, 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}{suffix}"
    taken.add(name)
    return Path(directory) / name


def write_vtt(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `vtt_text` of ``result`` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.write_text(vtt_text(result), encoding="utf-8")
    return path
