"""Window planning, merging windows into segments, WebVTT and the timeline text (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from vidsort.decode.sequential import FrameTimeline
from vidsort.sampling import sample_indices
from vidsort.segments import plan_windows, segments, vtt_text
from vidsort.segments.cli import clock, timeline_text
from vidsort.segments.merge import build_result, window_scores, window_times
from vidsort.segments.vtt import output_path, timestamp

LABELS = ["a", "b", "c"]


def test_windows_start_every_stride_and_the_last_ends_at_the_last_frame():
    plan = plan_windows(100, clip_len=8, frame_sample_rate=4, stride=10)
    assert plan.span == 32
    assert plan.starts.tolist() == [0, 10, 20, 30, 40, 50, 60, 68]
    assert plan.end(plan.num_windows - 1) == 100
    # every window is the centre clip of a video one window long, moved to its start
    offsets = sample_indices(32, 8, 4, "centre")
    assert np.array_equal(plan.indices, plan.starts[:, None] + offsets[None, :])
    assert plan.indices.max() == 99 and plan.indices.min() == 0
    assert np.array_equal(plan.needed, np.unique(plan.indices))


def test_default_stride_is_half_a_window_and_exact_fit_has_no_extra_window():
    plan = plan_windows(96, clip_len=8, frame_sample_rate=4)
    assert plan.starts.tolist() == [0, 16, 32, 48, 64]
    assert plan.end(4) == 96


@pytest.mark.parametrize("frames", [1, 5, 31, 32])
def test_a_video_up_to_one_window_long_is_one_window(frames):
    plan = plan_windows(frames, clip_len=8, frame_sample_rate=4)
    assert plan.num_windows == 1
    assert plan.end(0) == frames
    assert np.array_equal(plan.indices[0], sample_indices(frames, 8, 4, "centre"))


@pytest.mark.parametrize("stride", [0, -3, 2.5, True])
def test_bad_strides_are_refused(stride):
    with pytest.raises(ValueError, match="stride"):
        plan_windows(100, 8, 4, stride=stride)


def _timeline(n: int, fps: float = 10.0) -> FrameTimeline:
    return FrameTimeline(np.arange(n) / fps, n / fps, fps)


def test_window_times_come_from_frame_times():
    times = np.cumsum([0, 0.1, 0.3, 0.05, 0.2, 0.1, 0.1, 0.4])  # variable frame rate
    timeline = FrameTimeline(times, float(times[-1]) + 0.4, 8 / (float(times[-1]) + 0.4))
    plan = plan_windows(8, clip_len=2, frame_sample_rate=2, stride=2)  # span 4
    got = window_times(plan, timeline)
    assert np.allclose(got[:, 0], times[[0, 2, 4]])
    assert np.allclose(got[:, 1], [times[4], times[6], timeline.duration_s])


def _merge(tops, scores, min_score=None, n=10):
    times = np.array([[i, i + 2] for i in range(n)], dtype=float)  # stride 1 s, 2 s windows
    return segments(times, np.array(tops), np.array(scores, dtype=float), n + 1.0, LABELS,
                    min_score)


def test_consecutive_windows_merge_and_boundaries_lie_between_centres():
    out = _merge([0, 0, 0, 1, 1, 1, 1, 2, 2, 2], [0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 1, 1, 1])
    assert [s["label"] for s in out] == ["a", "b", "c"]
    # centres at 1, 2, 3...: the a/b boundary lies between 3 and 4
    assert [(s["start_s"], s["end_s"]) for s in out] == [(0.0, 3.5), (3.5, 7.5), (7.5, 11.0)]
    assert out[0]["score"] == pytest.approx(0.8)
    assert out[1]["score"] == pytest.approx(0.6)


def test_low_scores_leave_gaps_and_split_runs():
    out = _merge([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], [0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.3, 0.3, 0.9, 0.9],
                 min_score=0.5)
    spans = [(s["label"], s["start_s"], s["end_s"]) for s in out]
    assert spans == [("a", 0.0, 2.5), ("a", 3.5, 4.5), ("b", 4.5, 6.5), ("b", 8.5, 11.0)]
    assert _merge([0] * 10, [0.1] * 10, min_score=0.5) == []


def test_segments_tile_the_video_without_min_score():
    rng = np.random.default_rng(0)
    out = _merge(rng.integers(0, 3, 10).tolist(), rng.uniform(0, 1, 10).tolist())
    assert out[0]["start_s"] == 0.0 and out[-1]["end_s"] == 11.0
    assert all(a["end_s"] == b["start_s"] for a, b in zip(out, out[1:], strict=False))
    assert all(a["label"] != b["label"] for a, b in zip(out, out[1:], strict=False))


def test_result_has_exactly_the_documented_shape():
    plan = plan_windows(40, clip_len=2, frame_sample_rate=5, stride=5)
    logits = np.random.default_rng(1).normal(size=(plan.num_windows, 3)).astype(np.float32)
    scores = window_scores(logits, "softmax")
    result = build_result("v.mp4", plan, _timeline(40), scores, LABELS, 2, None)
    assert list(result) == ["video", "duration_s", "fps", "windows", "segments", "labels"]
    assert list(result["windows"][0]) == ["start_s", "end_s", "predictions"]
    assert list(result["windows"][0]["predictions"][0]) == ["label", "score"]
    assert len(result["windows"][0]["predictions"]) == 2
    assert list(result["segments"][0]) == ["label", "start_s", "end_s", "score"]
    # video labels: the mean of the window probabilities
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean = probs.mean(axis=0)
    best = int(mean.argmax())
    assert result["labels"][0] == {"label": LABELS[best], "score": pytest.approx(mean[best])}


def test_webvtt_cues_are_the_segments():
    result = {"segments": [{"label": "moving left", "start_s": 0.0, "end_s": 3.5, "score": 0.93},
                           {"label": "a --> b", "start_s": 3.5, "end_s": 3725.25, "score": 0.5}]}
    assert vtt_text(result) == (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:03.500\nmoving left (0.93)\n\n"
        "2\n00:00:03.500 --> 01:02:05.250\na -> b (0.50)\n")
    assert timestamp(59.9996) == "00:01:00.000"


def test_output_names_do_not_collide(tmp_path):
    taken: set[str] = set()
    names = [output_path(tmp_path, v, ".vtt", taken).name
             for v in ("a/clip.mp4", "b/clip.mp4", "other.mkv", "c/clip.avi")]
    assert names == ["clip.vtt", "clip-2.vtt", "other.vtt", "clip-3.vtt"]


def test_timeline_text_shows_segments_gaps_and_video_labels():
    result = {"video": "v.mp4", "duration_s": 75.0, "fps": 25.0, "windows": [{}] * 3,
              "segments": [{"label": "a", "start_s": 0.0, "end_s": 10.0, "score": 0.9},
                           {"label": "b", "start_s": 20.0, "end_s": 70.0, "score": 0.8}],
              "labels": [{"label": "b", "score": 0.6}]}
    text = timeline_text(result, min_score=0.5)
    assert "00:10.0 - 00:20.0  (top score below 0.5)" in text
    assert "01:10.0 - 01:15.0  (top score below 0.5)" in text
    assert "whole video: b 0.60" in text
    assert clock(3725.04) == "1:02:05.0"
