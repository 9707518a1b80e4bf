"""Fixtures of the server tests (helpers: `serve_helpers`)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the serve extra: pip install 'vidsort[serve]'")

from serve_helpers import LABELS  # noqa: E402


@pytest.fixture(scope="session")
def rendered_clips(tmp_path_factory) -> dict[str, Path]:
    """One small rendered clip per label in `LABELS` (label → path)."""
    synthetic = pytest.importorskip("vidsort.export.demo.synthetic")
    out = tmp_path_factory.mktemp("serve-clips")
    clips = {}
    for i, label in enumerate(LABELS):
        clip = synthetic.render_clip(label, seed=100 + i, width=160, height=120, seconds=2.0)
        clips[label] = synthetic.write_clip(out / f"{label.replace(' ', '_')}.mp4", clip)
    return clips
