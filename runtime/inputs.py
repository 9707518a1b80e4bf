"""Inputs of a batch run → the videos to classify, in the order given, streamed.

One definition of what counts as a video file (`VIDEO_SUFFIXES`) and one directory walk
(`walk_videos`) serve the CLI, the export's calibration set and archive jobs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

#: suffixes taken when a directory is expanded (containers FFmpeg reads)
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".3gp", ".ogv", ".gif",
})


def is_video_name(name: str | os.PathLike) -> bool:
    """Whether a file name has one of the `VIDEO_SUFFIXES` (case-insensitive)."""
    return Path(name).suffix.lower() in VIDEO_SUFFIXES


def walk_videos(directory: str | os.PathLike) -> Iterator[str]:
    """The video files below ``directory``, sorted per folder, streamed (a million files never
    sit in one list); symlinked directories are not followed."""
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if is_video_name(name):
                yield os.path.join(root, name)


def iter_inputs(paths: Iterable[str | os.PathLike], recursive: bool = False) -> Iterator[str]:
    """Expand the inputs of a batch run lazily.

    Args:
        paths: files and (with ``recursive``) directories, in the user's order.
        recursive: expand directories into the video files below them (`walk_videos`).
            Without it a directory stays one input and fails as "not a file" on its own line,
            so nothing is silently skipped.

    Returns:
        An iterator of paths as strings, in input order.
    """
    for path in paths:
        if recursive and os.path.isdir(path):
            yield from walk_videos(path)
        else:
            yield os.fspath(path)


def expand_inputs(paths: Iterable[str | os.PathLike], recursive: bool = False) -> list[str]:
    """`iter_inputs` as a list."""
    return list(iter_inputs(paths, recursive))
