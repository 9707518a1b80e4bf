"""Videos for the segment tests: clips of the embedded model's classes back to back."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def timeline_video(tmp_path_factory):
    """``(path, parts)``: four 4-s tiny-motion clips at 25 fps, 320x240, abrupt cuts."""
    from vidsort.export.demo.timeline import write_timeline

    path = tmp_path_factory.mktemp("timeline") / "timeline.mp4"
    parts = write_timeline(path)
    return path, parts
