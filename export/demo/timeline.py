"""A longer demo video: clips of different motion classes one after another, with abrupt cuts.

The input for ``vidsort classify --segments`` on the embedded tiny-motion model (README, tests):
``python -m vidsort.export.demo.timeline out.mp4`` writes one and prints where the cuts are.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vidsort.export.demo.synthetic import render_clip, write_frames

#: the default sequence: four classes, one of each family (translation, rotation, scale)
DEFAULT_PARTS = ("moving left", "rotating clockwise", "growing", "moving up")


@dataclass(frozen=True)
class Part:
    """One clip of a timeline video: its label and its frames ``[start, stop)``."""

    label: str
    start: int
    stop: int


def write_timeline(path: str | os.PathLike, labels=DEFAULT_PARTS, seconds: float = 4.0,
                   fps: int = 25, width: int = 320, height: int = 240,
                   seed: int = 1, style: str | None = "solid") -> list[Part]:
    """Render one clip per label (same size and rate) and encode them back to back (H.264).

    Args:
        path: the video to write (container from the suffix).
        labels: the class of each part, in order.
        seconds: length asked of each clip (the renderer shortens one whose motion would leave
            the frame).
        fps: frames per second.
        width, height: frame size.
        seed: part ``i`` is rendered with seed ``seed + i``.
        style: background kind (see `synthetic.BACKGROUNDS`; None draws one per part).

    Returns:
        The parts in order, with their frame ranges (a cut lies at each ``start`` after the
        first; its time is ``start / fps``).
    """
    clips, parts, start = [], [], 0
    for i, label in enumerate(labels):
        clip = render_clip(label, seed + i, width=width, height=height, fps=fps,
                           seconds=seconds, style=style)
        clips.append(clip.frames)
        parts.append(Part(label, start, start + len(clip.frames)))
        start += len(clip.frames)
    write_frames(Path(path), np.concatenate(clips), fps)
    return parts


def main(argv: list[str] | None = None) -> None:
    """Command line: write a timeline video and print its parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="video to write, e.g. timeline.mp4")
    parser.add_argument("--labels", nargs="+", default=list(DEFAULT_PARTS))
    parser.add_argument("--seconds", type=float, default=4.0, help="per part (default 4)")
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args(argv)
    parts = write_timeline(args.out, args.labels, args.seconds, args.fps)
    for part in parts:
        print(f"{part.start / args.fps:7.2f} s - {part.stop / args.fps:7.2f} s  {part.label}")


if __name__ == "__main__":  # pragma: no cover
    main()
