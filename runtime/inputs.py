"""Command-line inputs → the list of videos to classify, in the order given."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: suffixes taken when a directory is expanded (containers FFmpeg reads)
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".3gp", ".ogv", ".gif",
})


def expand_inputs(paths: Iterable[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Expand the inputs of a batch run.

    Args:
        paths: files and (with ``recursive``) directories, in the user's order.
        recursive: expand directories into the video files below them (sorted, by suffix,
            symlinked directories not followed). Without it a directory stays one input and
            fails as "not a file" on its own line, so nothing is silently skipped.

    Returns:
        Paths as strings, in input order; directory contents in sorted order.
    """
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if recursive and p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in sorted(files)
                             if Path(f).suffix.lower() in VIDEO_SUFFIXES)
            out.extend(found)
        else:
            out.append(os.fspath(path))
    return out
