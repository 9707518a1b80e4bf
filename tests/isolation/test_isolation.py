"""Decoding in worker processes: same results as in-process, and a hang or crash costs one file.

Hangs and crashes are made with the test-only ``VIDSORT_TEST_FAULT`` hook of
`vidsort.isolation` (read when a pool starts, so tests set it before creating one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from vidsort.errors import (
    DecoderCrashed,
    DecodeTimeout,
    UnsupportedInputError,
    VideoError,
    VideoNotFoundError,
)
from vidsort.isolation import (
    FAULT_ENV,
    IsolatedPreparer,
    IsolationSettings,
    iter_prepared_isolated,
    parse_faults,
)
from vidsort.pipeline import PreparedClip, PrepareSpec, iter_prepared
from vidsort.testing.videogen import make_clip

SHARED = Path(__file__).parents[2].parent / "shared" / "videos"
PREPROCESSOR = {
    "do_resize": True, "size": {"shortest_edge": 32}, "do_center_crop": True,
    "crop_size": {"height": 32, "width": 32}, "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    "resample": 2,
}
SPEC = PrepareSpec(preprocessor_config=PREPROCESSOR, clip_len=4, frame_sample_rate=2)
FAST = IsolationSettings(timeout_s=20, memory_mb=1024)


def _comparable(result):
    if isinstance(result, PreparedClip):
        info = {k: v for k, v in result.info.items() if k != "timings"}
        return ("clip", result.pixel_values.dtype, result.pixel_values.shape, info)
    return ("error", type(result).__name__, str(result))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("iso")
    return [make_clip(d / "a.mp4", seed=1), make_clip(d / "b.webm", codec="libvpx-vp9", seed=2),
            make_clip(d / "c.avi", num_frames=9, width=40, height=64, codec="mpeg4", seed=3),
            make_clip(d / "d.mp4", num_frames=1, seed=4)]


def test_same_results_as_in_process(clips, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"<html>not a video</html>")
    frames = np.random.default_rng(0).integers(0, 255, (6, 40, 50, 3), dtype=np.uint8)
    videos = [clips[0], str(bad), clips[1], frames, str(tmp_path / "missing.mp4"), *clips[2:],
              np.zeros((3, 8, 8), np.uint8)]
    expected = list(iter_prepared(videos, SPEC))
    got = list(iter_prepared_isolated(videos, SPEC, settings=FAST))
    assert [v is w for (v, _), (w, _) in zip(got, expected, strict=True)] == [True] * len(videos)
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert _comparable(g) == _comparable(e)
        if isinstance(e, PreparedClip):
            np.testing.assert_array_equal(g.pixel_values, e.pixel_values)
    kinds = [type(r).__name__ for _, r in got]
    assert kinds[0] == kinds[2] == kinds[3] == "PreparedClip"
    assert isinstance(got[1][1], VideoError) and str(bad) in str(got[1][1])
    assert isinstance(got[4][1], VideoNotFoundError)
    assert isinstance(got[-1][1], UnsupportedInputError)


def test_order_kept_with_several_workers(clips):
    videos = [clips[i % len(clips)] for i in range(10)]
    settings = IsolationSettings(workers=2, timeout_s=20, memory_mb=1024)
    got = list(iter_prepared_isolated(videos, SPEC, prefetch=3, settings=settings))
    assert [v for v, _ in got] == videos
    shapes = [r.info["num_video_frames"] for _, r in got]
    assert shapes == [24, 24, 9, 1, 24, 24, 9, 1, 24, 24]


def test_hang_times_out_and_the_batch_goes_on(clips, tmp_path, monkeypatch):
    stuck = make_clip(tmp_path / "stuck_hang.mp4")
    monkeypatch.setenv(FAULT_ENV, "hang:stuck_hang")
    videos = [clips[0], stuck, clips[1], stuck, clips[2]]
    got = list(iter_prepared_isolated(videos, SPEC,
                                      settings=IsolationSettings(timeout_s=1, memory_mb=None)))
    kinds = [type(r).__name__ for _, r in got]
    assert kinds == ["PreparedClip", "DecodeTimeout", "PreparedClip", "DecodeTimeout",
                     "PreparedClip"]
    err = got[1][1]
    assert isinstance(err, DecodeTimeout) and err.path == str(stuck)
    assert "after 1 s" in err.reason and "killed" in err.reason


def test_hang_that_ignores_sigterm_is_killed(clips, tmp_path, monkeypatch):
    # Like native code looping while it holds the GIL: only SIGKILL ends it.
    stuck = make_clip(tmp_path / "hard.mp4")
    monkeypatch.setenv(FAULT_ENV, "hang-hard:hard.mp4")
    got = list(iter_prepared_isolated([stuck, clips[0]], SPEC,
                                      settings=IsolationSettings(timeout_s=0.5)))
    assert isinstance(got[0][1], DecodeTimeout)
    assert isinstance(got[1][1], PreparedClip)


@pytest.mark.parametrize("kind, words", [
    ("segv", "signal 11, SIGSEGV"), ("abort", "signal 6, SIGABRT"),
    ("kill", "signal 9, SIGKILL"), ("exit", "exited with code 3")])
def test_worker_death_is_a_typed_error_and_the_worker_is_replaced(clips, tmp_path, monkeypatch,
                                                                   kind, words):
    victim = make_clip(tmp_path / f"victim_{kind}.mp4")
    monkeypatch.setenv(FAULT_ENV, f"{kind}:victim_")
    got = list(iter_prepared_isolated([clips[0], victim, clips[1], victim, clips[2]], SPEC,
                                      settings=FAST))
    errors = [r for _, r in got if not isinstance(r, PreparedClip)]
    assert [type(e) for e in errors] == [DecoderCrashed, DecoderCrashed]
    assert errors[0].path == str(victim) and words in errors[0].reason
    assert [isinstance(r, PreparedClip) for _, r in got] == [True, False, True, False, True]


def test_memory_cap_stops_a_runaway_worker(clips, tmp_path, monkeypatch):
    hog = make_clip(tmp_path / "hog.mp4")
    monkeypatch.setenv(FAULT_ENV, "oom:hog.mp4")
    got = list(iter_prepared_isolated([hog, clips[0]], SPEC,
                                      settings=IsolationSettings(timeout_s=30, memory_mb=256)))
    err = got[0][1]
    assert isinstance(err, DecoderCrashed) and err.path == str(hog)
    assert "256 MB" in err.reason
    assert isinstance(got[1][1], PreparedClip)


def test_real_decode_over_the_memory_cap_fails_typed(tmp_path):
    big = make_clip(tmp_path / "big.mp4", num_frames=3, width=3840, height=2160,
                    options={"preset": "ultrafast"})
    small = make_clip(tmp_path / "small.mp4")
    spec = PrepareSpec(preprocessor_config=PREPROCESSOR, clip_len=3, frame_sample_rate=1)
    # 3 RGB 4K frames alone are 75 MB: a 64 MB cap cannot hold them and the decoder's buffers.
    got = list(iter_prepared_isolated([big, small, big], spec,
                                      settings=IsolationSettings(timeout_s=60, memory_mb=64)))
    assert isinstance(got[0][1], VideoError), got[0][1]
    assert isinstance(got[1][1], PreparedClip)
    # and with room to spare the same file decodes
    ok = list(iter_prepared_isolated([big], spec, settings=IsolationSettings(memory_mb=1024)))
    assert isinstance(ok[0][1], PreparedClip)


def test_relative_paths_follow_the_callers_cwd(clips, tmp_path, monkeypatch):
    with IsolatedPreparer(FAST) as preparer:
        preparer.start().result(timeout=60)  # the workers exist before the chdir
        (tmp_path / "sub").mkdir()
        make_clip(tmp_path / "sub" / "rel.mp4")
        monkeypatch.chdir(tmp_path)
        videos = [os.path.join("sub", "rel.mp4"), "nope.mp4"]
        got = list(preparer.iter_prepared(videos, SPEC))
        expected = list(iter_prepared(videos, SPEC))
    assert isinstance(got[0][1], PreparedClip)
    assert _comparable(got[1][1]) == _comparable(expected[1][1])
    assert "nope.mp4" in str(got[1][1])


def test_a_preparer_survives_its_workers_dying_between_batches(clips):
    import signal

    with IsolatedPreparer(IsolationSettings(workers=2)) as preparer:
        first = list(preparer.iter_prepared(clips, SPEC))
        for pid in list(preparer._pool._pool_manager.worker_manager.workers):
            os.kill(pid, signal.SIGKILL)  # idle workers die: pebble calls its pool broken
        second = list(preparer.iter_prepared(clips, SPEC))
    assert all(isinstance(r, PreparedClip) for _, r in first + second)


def test_stopping_early_leaves_no_worker_running(clips):
    psutil = pytest.importorskip("psutil")
    gen = iter_prepared_isolated(clips * 3, SPEC, settings=FAST)
    assert isinstance(next(gen)[1], PreparedClip)
    gen.close()
    # What may stay: the fork server (idle, reused by the next pool), the resource tracker.
    left = [p for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE
            and not any(w in " ".join(p.cmdline()) for w in ("forkserver", "resource_tracker"))]
    assert left == []


def test_an_unguarded_main_script_is_not_rerun_in_workers(clips, tmp_path):
    # Users write scripts without `if __name__ == "__main__"`; workers must not re-run them.
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_isolation import SPEC
        from vidsort.isolation import iter_prepared_isolated
        print("script body ran", flush=True)
        out = list(iter_prepared_isolated([{str(clips[0])!r}, {str(clips[1])!r}], SPEC))
        print("results", [type(r).__name__ for _, r in out], flush=True)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("script body ran") == 1
    assert "results ['PreparedClip', 'PreparedClip']" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not (SHARED / "clip_340x256_300f.mp4").exists(), reason="shared clips absent")
def test_real_clip_equal_in_and_out_of_process():
    video = SHARED / "clip_340x256_300f.mp4"
    spec = PrepareSpec(preprocessor_config=PREPROCESSOR, clip_len=16, frame_sample_rate=4)
    (_, expected), = iter_prepared([video], spec)
    (_, got), = iter_prepared_isolated([video], spec, settings=FAST)
    np.testing.assert_array_equal(got.pixel_values, expected.pixel_values)
    assert got.info["frames"] == expected.info["frames"]


def test_fault_spec_parsing_and_settings_validation():
    assert parse_faults("hang:a, segv:b.mp4") == (("hang", "a"), ("segv", "b.mp4"))
    assert parse_faults(None) == ()
    with pytest.raises(ValueError, match="bad entry"):
        parse_faults("explode:x")
    with pytest.raises(ValueError):
        IsolationSettings(workers=0)
    with pytest.raises(ValueError):
        IsolationSettings(timeout_s=0)
    with pytest.raises(ValueError):
        IsolationSettings(start_method="threads")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_other_start_methods_give_the_same_results(clips, method):
    # In-process use first: a forked worker then inherits cached preprocessors whose thread
    # pools lost their threads in the fork (they hung before the worker dropped them).
    expected = list(iter_prepared(clips[:2], SPEC))
    got = list(iter_prepared_isolated(clips[:2], SPEC,
                                      settings=IsolationSettings(start_method=method,
                                                                 timeout_s=30)))
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert isinstance(g, PreparedClip), g
        np.testing.assert_array_equal(g.pixel_values, e.pixel_values)


def test_cli_style_fork_pool_started_before_the_model(exported_tiny_dir, clips, tmp_path,
                                                      monkeypatch):
    # The CLI set-up: fork workers before the ONNX Runtime session exists (cheap, and forked
    # from a process without its threads); replacements are then forked while the session's
    # threads exist and inference runs between files.
    from vidsort.classifier import VideoClassifier

    victim = make_clip(tmp_path / "victim_fork.mp4")
    monkeypatch.setenv(FAULT_ENV, "segv:victim_fork")
    with IsolatedPreparer(IsolationSettings(start_method="fork", timeout_s=30)) as preparer:
        preparer.start()
        clf = VideoClassifier(exported_tiny_dir, threads=2)
        got = []
        for _, result in preparer.iter_prepared([victim, clips[0], victim, clips[1]], clf.spec):
            if isinstance(result, PreparedClip):
                assert np.isfinite(clf.predict_logits(result.pixel_values)).all()
            got.append(type(result).__name__)
    assert got == ["DecoderCrashed", "PreparedClip", "DecoderCrashed", "PreparedClip"]
