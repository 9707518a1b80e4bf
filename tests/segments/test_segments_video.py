"""`VideoClassifier.classify_segments` on real encoded videos, with the tiny-motion model."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from vidsort import VideoClassifier
from vidsort.decode import read_frames
from vidsort.errors import DecoderCrashed, DecodeTimeout, UnsupportedInputError, VideoError
from vidsort.isolation import FAULT_ENV, IsolationSettings
from vidsort.segments import plan_windows, segment_video
from vidsort.testing.videogen import make_clip, pattern_frames, write_video_pts

FPS = 25


@pytest.fixture(scope="module")
def clf(tiny_motion_dir):
    with VideoClassifier(tiny_motion_dir) as classifier:  # int8, decoding in a worker process
        yield classifier


def _window_s(clf) -> float:
    return clf.spec.clip_len * clf.spec.frame_sample_rate / FPS


def test_segment_labels_follow_the_cuts(clf, timeline_video):
    path, parts = timeline_video
    result = clf.classify_segments(path, min_score=0.8)
    assert [s["label"] for s in result["segments"]] == [p.label for p in parts]
    window_s = _window_s(clf)
    for before, after, part in zip(result["segments"], result["segments"][1:], parts[1:],
                                   strict=False):
        cut = part.start / FPS
        assert abs(before["end_s"] - cut) <= window_s
        assert abs(after["start_s"] - cut) <= window_s
    assert result["labels"][0]["label"] in {p.label for p in parts}


def test_windows_and_segments_tile_the_video(clf, timeline_video):
    path, parts = timeline_video
    result = clf.classify_segments(path, top_k=3)
    frames = parts[-1].stop
    assert result["duration_s"] == pytest.approx(frames / FPS)
    assert result["fps"] == pytest.approx(FPS)
    windows = result["windows"]
    plan = plan_windows(frames, clf.spec.clip_len, clf.spec.frame_sample_rate)
    assert len(windows) == plan.num_windows
    assert windows[0]["start_s"] == 0.0 and windows[-1]["end_s"] == result["duration_s"]
    for a, b in zip(windows, windows[1:], strict=False):
        assert a["start_s"] < b["start_s"] <= a["end_s"]  # in time order, no gap
    assert all(len(w["predictions"]) == 3 for w in windows)
    segs = result["segments"]
    assert segs[0]["start_s"] == 0.0 and segs[-1]["end_s"] == result["duration_s"]
    assert all(a["end_s"] == b["start_s"] for a, b in zip(segs, segs[1:], strict=False))


@pytest.mark.parametrize(("backend", "precision", "batch_size"),
                         [("pyav", "fp32", 4), ("decord", "fp32", 3), ("pyav", "int8", 1)])
def test_each_window_equals_the_classifier_on_its_frames(tiny_motion_dir, timeline_video,
                                                         backend, precision, batch_size):
    # dynamic int8 quantizes each batch's activations with one scale, so batching windows
    # changes int8 scores slightly (~3e-3); fp32 and int8 one window at a time must agree
    path, parts = timeline_video
    clf = VideoClassifier(tiny_motion_dir, precision=precision, backend=backend, isolation=None)
    run = segment_video(clf, path, top_k=8, batch_size=batch_size)
    assert run.stats["backend"] == backend
    plan = plan_windows(parts[-1].stop, clf.spec.clip_len, clf.spec.frame_sample_rate)
    for w, window in enumerate(run.result["windows"]):
        clip = read_frames(path, lambda n, w=w: plan.indices[w], backend=backend)
        reference = {p["label"]: p["score"] for p in clf(clip.frames, top_k=8)}
        got = {p["label"]: p["score"] for p in window["predictions"]}
        assert got.keys() == reference.keys()
        assert max(abs(got[k] - reference[k]) for k in got) < 1e-5, w


def test_each_needed_frame_is_preprocessed_once_and_released(clf, timeline_video):
    path, parts = timeline_video
    run = segment_video(clf, path)
    plan = plan_windows(parts[-1].stop, clf.spec.clip_len, clf.spec.frame_sample_rate)
    assert run.stats["frames"] == len(plan.needed)
    # frames are dropped once no later window needs them: a window and a chunk at most
    assert run.stats["frames_held_max"] <= 2 * clf.spec.clip_len + 8 < len(plan.needed)


def test_isolated_and_in_thread_runs_agree(clf, timeline_video):
    path, parts = timeline_video
    isolated = clf.classify_segments(path, stride=20)
    in_thread = segment_video(clf, path, stride=20, isolate=False).result
    assert isolated == in_thread
    plan = plan_windows(parts[-1].stop, clf.spec.clip_len, clf.spec.frame_sample_rate, 20)
    assert [w["start_s"] for w in isolated["windows"]] == [s / FPS for s in plan.starts]


def test_variable_frame_rate_times(clf, tmp_path):
    gaps = np.random.default_rng(3).choice([2, 3, 4, 9], size=80)
    pts = np.concatenate([[0], np.cumsum(gaps[:-1])])  # in 1/100 s
    path = write_video_pts(tmp_path / "vfr.mp4", pattern_frames(80, 96, 64), pts.tolist(),
                           time_base=Fraction(1, 100))
    result = clf.classify_segments(path)
    plan = plan_windows(80, clf.spec.clip_len, clf.spec.frame_sample_rate)
    seconds = pts / 100
    duration = seconds[-1] + gaps[-2] / 100  # the last frame lasts as long as the one before
    assert result["duration_s"] == pytest.approx(duration, abs=1e-3)
    for start, window in zip(plan.starts, result["windows"], strict=True):
        assert window["start_s"] == pytest.approx(seconds[start], abs=1e-3)
        stop = start + plan.span
        end = seconds[stop] if stop < 80 else duration
        assert window["end_s"] == pytest.approx(end, abs=1e-3)


def test_a_very_short_video_is_one_window_and_one_segment(clf, tmp_path):
    path = make_clip(tmp_path / "short.mp4", num_frames=12, width=96, height=64)
    result = clf.classify_segments(path)
    assert len(result["windows"]) == 1
    assert result["windows"][0]["start_s"] == 0.0
    assert result["windows"][0]["end_s"] == result["duration_s"] == pytest.approx(12 / 25)
    assert len(result["segments"]) == 1
    seg = result["segments"][0]
    assert (seg["start_s"], seg["end_s"]) == (0.0, result["duration_s"])
    assert seg["label"] == result["labels"][0]["label"]


@pytest.mark.parametrize(("fault", "error"), [("hang", DecodeTimeout), ("segv", DecoderCrashed)])
def test_a_decoder_hang_or_crash_costs_this_video(tiny_motion_dir, timeline_video, tmp_path,
                                                  monkeypatch, fault, error):
    path, _ = timeline_video
    bad = make_clip(tmp_path / "poisoned.mp4", num_frames=40)
    monkeypatch.setenv(FAULT_ENV, f"{fault}:poisoned")
    clf = VideoClassifier(tiny_motion_dir, isolation=IsolationSettings(timeout_s=3.0))
    with pytest.raises(error, match="poisoned.mp4"):
        clf.classify_segments(bad)
    assert clf.classify_segments(path)["segments"]  # the next video is unaffected


def test_the_sampling_rate_setting_shapes_the_windows(tiny_motion_dir, timeline_video):
    path, parts = timeline_video
    clf = VideoClassifier(tiny_motion_dir, frame_sample_rate=2, isolation=None)
    result = clf.classify_segments(path)
    plan = plan_windows(parts[-1].stop, clf.spec.clip_len, 2)
    assert plan.span == clf.spec.clip_len * 2
    assert len(result["windows"]) == plan.num_windows
    first = result["windows"][0]
    assert (first["start_s"], first["end_s"]) == (0.0, plan.span / FPS)


def test_frames_arrays_are_refused_with_a_reason(clf):
    with pytest.raises(UnsupportedInputError, match="frame timestamps"):
        clf.classify_segments(np.zeros((40, 32, 32, 3), np.uint8))


def test_sampling_options_that_do_not_apply_are_named(tiny_motion_dir, timeline_video):
    clf = VideoClassifier(tiny_motion_dir, num_clips=3, isolation=None)
    with pytest.warns(UserWarning, match="num_clips and strategy do not apply"):
        clf.classify_segments(timeline_video[0])


def test_bad_arguments_are_value_errors(clf, timeline_video):
    for kwargs in ({"stride": 0}, {"top_k": 0}, {"batch_size": 0}, {"min_score": float("nan")}):
        with pytest.raises(ValueError):
            clf.classify_segments(timeline_video[0], **kwargs)


def test_an_inference_failure_costs_this_video(tiny_motion_dir, timeline_video, monkeypatch):
    clf = VideoClassifier(tiny_motion_dir, isolation=None)

    def fail(pixel_values):
        raise MemoryError("no room for this batch")

    monkeypatch.setattr(clf, "predict_logits", fail)
    with pytest.raises(VideoError, match="timeline.mp4: inference failed: MemoryError"):
        clf.classify_segments(timeline_video[0])
