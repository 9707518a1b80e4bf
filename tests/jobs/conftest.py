"""Fixtures of the archive-job tests: a folder of small generated clips (helpers that run the
CLI and read outputs back are in job_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: clips in the shared folder: enough for a job to take a few seconds with the tiny model, so
#: that a kill lands in the middle of it
NUM_CLIPS = 160


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """``NUM_CLIPS`` 16-frame 64x48 H.264 clips in four sub-folders."""
    from vidsort.testing.videogen import make_clip

    root = tmp_path_factory.mktemp("job-clips")
    for i in range(NUM_CLIPS):
        sub = root / f"d{i % 4}"
        sub.mkdir(exist_ok=True)
        make_clip(sub / f"c{i:03d}.mp4", num_frames=16, seed=i)
    return root
