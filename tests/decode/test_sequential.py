"""`SequentialReader`: one pass in order gives the very frames `read_frames` gives, with times."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from vidsort.decode import DecodeLimits, read_frames
from vidsort.decode.sequential import SequentialReader
from vidsort.errors import ResourceLimitError, VideoDecodeError, VideoNotFoundError
from vidsort.testing.videogen import (
    frame_index,
    index_frames,
    make_clip,
    write_video,
    write_video_pts,
)

WANTED = [0, 3, 4, 17, 40, 41, 42, 90, 99]


@pytest.fixture(scope="module")
def indexed_mp4(tmp_path_factory):
    """100 H.264 frames (with B-frames) that carry their own index."""
    path = tmp_path_factory.mktemp("seq") / "indexed.mp4"
    return write_video(path, index_frames(100, 64, 48), fps=25)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_frames_equal_read_frames_pixel_for_pixel(indexed_mp4, backend):
    with SequentialReader(indexed_mp4, backend=backend) as reader:
        assert reader.num_frames == 100
        got = list(reader.frames(reversed(WANTED + [4, 17])))  # any order, repeats ignored
        assert reader.backend == backend and reader.fallback is None
    assert [i for i, _ in got] == WANTED
    assert [frame_index(f) for _, f in got] == WANTED
    ref = read_frames(indexed_mp4, lambda n: np.array(WANTED), backend=backend)
    assert np.array_equal(np.stack([f for _, f in got]), ref.frames)


def test_pyav_skips_frames_nobody_wants(indexed_mp4):
    with SequentialReader(indexed_mp4) as reader:
        list(reader.frames([0, 50, 99]))
        decoded = reader._reader.decoded
    assert decoded < 100  # non-reference pictures between the wanted ones were not decoded


def test_decord_hands_over_to_pyav_where_read_frames_would(tmp_path):
    path = write_video(tmp_path / "clip.ts", index_frames(30, 64, 48), fps=25)  # MPEG-TS
    with SequentialReader(path, backend="decord") as reader:
        got = list(reader.frames([1, 29]))
        assert reader.backend == "pyav"
        assert "decord skipped" in reader.fallback
    assert [frame_index(f) for _, f in got] == [1, 29]


def test_times_come_from_timestamps_for_variable_frame_rate(tmp_path):
    pts = np.cumsum([0, 4, 4, 10, 2, 2, 30, 4, 4, 8])  # in 1/100 s
    path = write_video_pts(tmp_path / "vfr.mp4", index_frames(10, 64, 48), pts.tolist(),
                           time_base=Fraction(1, 100))
    with SequentialReader(path) as reader:
        timeline = reader.timeline
    assert np.allclose(timeline.times, (pts - pts[0]) / 100)
    assert timeline.duration_s == pytest.approx((pts[-1] - pts[0] + 8) / 100)
    assert timeline.end_of(3) == pytest.approx(pts[4] / 100)


def test_constant_rate_times(indexed_mp4):
    with SequentialReader(indexed_mp4) as reader:
        assert np.allclose(reader.timeline.times, np.arange(100) / 25)
        assert reader.timeline.duration_s == pytest.approx(4.0)
        assert reader.timeline.fps == pytest.approx(25.0)


def test_bad_inputs_are_typed_errors(tmp_path):
    with pytest.raises(VideoNotFoundError):
        SequentialReader(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        SequentialReader(junk)


def test_limits_apply(indexed_mp4, tmp_path):
    with pytest.raises(ResourceLimitError, match="max_duration_s"):
        SequentialReader(indexed_mp4, limits=DecodeLimits(max_duration_s=1.0))
    with SequentialReader(indexed_mp4, limits=DecodeLimits(max_frames=20)) as reader:
        with pytest.raises(ResourceLimitError, match="max_frames"):
            list(reader.frames([0, 99]))


def test_out_of_range_indices_are_refused(tmp_path):
    path = make_clip(tmp_path / "c.mp4", num_frames=10)
    with SequentialReader(path) as reader, pytest.raises(ValueError, match="0, 10"):
        list(reader.frames([10]))
