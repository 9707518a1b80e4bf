"""The hostile corpus (`vidsort.testing`) through the real `vidsort classify` command and through
the isolated pipeline: decodable files classified, the rest a typed error naming the file, exit
codes 0 / 1 / 2, no traceback, no hang (every run has a timeout), order kept, memory bounded,
special files never opened, resource limits holding end to end.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import vidsort.errors
from vidsort.pipeline import PreparedClip
from vidsort.testing import hostile
from vidsort.testing.hostile import CLASSIFY, FAIL
from vidsort.testing.videogen import make_clip

#: typed per-file errors; the bare VideoError is what an unexpected exception becomes
TYPED = {name for name, cls in inspect.getmembers(vidsort.errors, inspect.isclass)
         if issubclass(cls, vidsort.errors.VideoError) and cls is not vidsort.errors.VideoError}
CLI_TIMEOUT = 180  # generous for a loaded 2-core machine; a hang would still be caught
TOP_K = 2


@pytest.fixture(scope="module")
def model_dir(exported_tiny_dir) -> Path:
    return Path(exported_tiny_dir)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[hostile.Entry]:
    return hostile.build_corpus(tmp_path_factory.mktemp("hostile"))


def _cli_help() -> str:
    out = subprocess.run([sys.executable, "-m", "vidsort", "classify", "--help"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout


def run_cli(model: Path, videos, *extra: str, env: dict | None = None, timeout=CLI_TIMEOUT):
    """Run `vidsort classify --json`; returns (exit code, JSON lines, stderr)."""
    cmd = [sys.executable, "-m", "vidsort", "classify", str(model), *map(str, videos), "--json",
           "--top-k", str(TOP_K), "--threads", "1", *extra]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    stdout = proc.stdout.decode("utf-8")
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr.decode("utf-8", "replace")


def check(entry_expect: str, path: Path | str, result: dict, errors: tuple = ()) -> list[str]:
    """What is wrong with one JSON result (empty when it is right)."""
    name = str(path)
    problems = []
    if result.get("video") != name:
        problems.append(f"result names {result.get('video')!r}, not {name!r}")
    if "error" in result:
        kind, message = result["error"]["type"], result["error"]["message"]
        if entry_expect == CLASSIFY:
            problems.append(f"should classify, got {kind}: {message}")
        elif kind not in (errors or TYPED) or name not in message:
            problems.append(f"untyped or unnamed error {kind}: {message}")
    else:
        preds = result.get("predictions") or []
        if entry_expect == FAIL:
            problems.append(f"should fail, got predictions {preds}")
        elif len(preds) != TOP_K or not all(np.isfinite(p["score"]) for p in preds):
            problems.append(f"bad predictions {preds}")
    return [f"{Path(name).name}: {p}" for p in problems]


def test_each_file_alone(model_dir, corpus):
    def one(entry):
        code, lines, stderr = run_cli(model_dir, [entry.path])
        problems = [] if len(lines) == 1 else [f"{entry.name}: {len(lines)} result lines"]
        if lines:
            problems += check(entry.expect, entry.path, lines[0], entry.errors)
            want = 1 if "error" in lines[0] else 0
            if code != want:
                problems.append(f"{entry.name}: exit code {code}, expected {want}")
        if "Traceback" in stderr:
            problems.append(f"{entry.name}: traceback on stderr:\n{stderr[-2000:]}")
        return problems

    with ThreadPoolExecutor(2) as pool:
        problems = [p for found in pool.map(one, corpus) for p in found]
    assert problems == [], "\n".join(problems)


def test_whole_corpus_in_one_batch(model_dir, corpus, tmp_path):
    missing = tmp_path / "missing.mp4"
    folder = tmp_path / "a_folder.mp4"
    folder.mkdir()
    videos = [e.path for e in corpus] + [missing, folder]
    code, lines, stderr = run_cli(model_dir, videos, "--batch-size", "3")
    assert [r["video"] for r in lines] == [str(v) for v in videos]  # order kept, none lost
    problems = [p for e, r in zip(corpus, lines, strict=False) for p in
                check(e.expect, e.path, r, e.errors)]
    problems += check(FAIL, missing, lines[-2], ("VideoNotFoundError",))
    problems += check(FAIL, folder, lines[-1], ("VideoNotFoundError", "UnsupportedInputError"))
    assert problems == [], "\n".join(problems)
    assert code == 1
    assert "Traceback" not in stderr


def test_corpus_through_the_isolated_pipeline(model_dir, corpus):
    from vidsort.classifier import VideoClassifier
    from vidsort.isolation import IsolationSettings, iter_prepared_isolated

    spec = VideoClassifier(model_dir, threads=1).spec
    got = list(iter_prepared_isolated([e.path for e in corpus], spec,
                                      settings=IsolationSettings(timeout_s=60)))
    problems = []
    for entry, (video, result) in zip(corpus, got, strict=True):
        assert video == entry.path
        if isinstance(result, PreparedClip):
            ok = entry.expect != FAIL and np.isfinite(result.pixel_values).all()
        else:
            ok = (entry.expect != CLASSIFY and type(result).__name__ in (entry.errors or TYPED)
                  and str(entry.path) in str(result))
        if not ok:
            problems.append(f"{entry.name} ({entry.expect}): {type(result).__name__}: {result}")
    assert problems == [], "\n".join(problems)


def test_exit_codes(model_dir, corpus):
    good = next(e.path for e in corpus if e.name == "normal")
    bad = next(e.path for e in corpus if e.name == "empty")
    assert run_cli(model_dir, [good])[0] == 0
    assert run_cli(model_dir, [good, bad])[0] == 1
    code, lines, stderr = run_cli(model_dir.parent / "no_such_model", [good])
    assert code == 2 and lines == [] and "Traceback" not in stderr and "no_such_model" in stderr
    assert run_cli(model_dir, [good], "--top-k", "0")[0] == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_are_never_opened(model_dir, corpus, tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)  # opening it for reading would block forever: no writer ever comes
    good = next(e.path for e in corpus if e.name == "normal")
    specials = [fifo, Path("/dev/zero"), Path("/dev/null")]
    code, lines, stderr = run_cli(model_dir, [fifo, good, "/dev/zero", "/dev/null"],
                                  timeout=120)
    assert [r["video"] for r in lines] == [str(fifo), str(good), "/dev/zero", "/dev/null"]
    problems = check(CLASSIFY, good, lines[1])
    for path, result in zip(specials, [lines[0], lines[2], lines[3]], strict=True):
        problems += check(FAIL, path, result, ("UnsupportedInputError", "VideoNotFoundError"))
    assert problems == [], "\n".join(problems)
    assert code == 1 and "Traceback" not in stderr


def test_directories_expand_only_when_asked(model_dir, tmp_path):
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    make_clip(folder / "b.mp4")
    make_clip(folder / "sub" / "a.webm", codec="libvpx-vp9")
    (folder / "notes.txt").write_text("not a video")
    code, lines, _ = run_cli(model_dir, [folder])
    assert code == 1 and len(lines) == 1 and lines[0]["video"] == str(folder)
    assert lines[0]["error"]["type"] in ("VideoNotFoundError", "UnsupportedInputError")
    code, lines, _ = run_cli(model_dir, [folder], "--recursive")
    assert code == 0
    assert [r["video"] for r in lines] == [str(folder / "b.mp4"), str(folder / "sub" / "a.webm")]


def _peak_tree_rss(proc: subprocess.Popen, psutil) -> int:
    """Peak of the summed RSS of ``proc`` and its descendants, sampled every 10 ms."""
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.01)
    return peak


def test_rss_bounded_on_a_4k_clip(model_dir, corpus, record_property):
    psutil = pytest.importorskip("psutil")
    uhd = next(e.path for e in corpus if e.name == "uhd_4k")
    cmd = [sys.executable, "-m", "vidsort", "classify", str(model_dir), str(uhd), "--json",
           "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]
    watcher = threading.Thread(target=lambda: peak.__setitem__(0, _peak_tree_rss(proc, psutil)))
    watcher.start()
    out, err = proc.communicate(timeout=CLI_TIMEOUT)
    watcher.join()
    record_property("peak_rss_mb_4k_tiny_model", round(peak[0] / 2**20))
    print(f"peak RSS (process tree) for a 3-frame 4K clip, tiny model: {peak[0] / 2**20:.0f} MB")
    assert proc.returncode == 0, err.decode()
    assert "predictions" in json.loads(out.decode().splitlines()[0])
    # 3 RGB 4K frames are 75 MB; the bound for the Base model is 1.5 GB.
    assert peak[0] < 1024 * 2**20


def test_hang_and_crash_in_a_cli_batch(model_dir, corpus):
    if "--timeout" not in _cli_help():
        pytest.skip("the CLI has no --timeout yet (isolation not wired into it)")
    videos = [e.path for e in corpus if e.name in ("normal", "portrait", "vp9", "mjpeg")]
    env = {"VIDSORT_TEST_FAULT": "hang:portrait,segv:vp9.webm"}
    code, lines, stderr = run_cli(model_dir, videos, "--timeout", "2", env=env)
    assert [r["video"] for r in lines] == [str(v) for v in videos]
    assert [r.get("error", {}).get("type") for r in lines] == [
        None, "DecodeTimeout", "DecoderCrashed", None]
    assert code == 1 and "Traceback" not in stderr


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """12 frames at 1 fps: 12 s long, tiny to decode."""
    return make_clip(tmp_path_factory.mktemp("long") / "long_12s.mp4", num_frames=12, fps=1)


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
@pytest.mark.parametrize("limit, over, under", [
    ({"max_file_bytes": 100_000}, "uhd_4k", "normal"),
    ({"max_pixels": 1280 * 720}, "uhd_4k", "normal"),  # 4K is over 4x: refused
    ({"max_duration_s": 5.0}, "long", "normal"),
    ({"max_frames": 2}, "normal", "one_frame"),
], ids=["file-size", "pixels", "duration", "frames"])
def test_limits_hold_end_to_end(model_dir, corpus, long_clip, limit, over, under, isolated):
    from vidsort.classifier import VideoClassifier
    from vidsort.decode import DecodeLimits
    from vidsort.isolation import IsolationSettings, iter_prepared_isolated

    paths = {e.name: e.path for e in corpus} | {"long": long_clip}
    videos = [paths[over], paths[under]]
    clf = VideoClassifier(model_dir, threads=1, limits=DecodeLimits(**limit))
    if isolated:
        results = [r for _, r in iter_prepared_isolated(videos, clf.spec,
                                                        settings=IsolationSettings())]
        refused, accepted = results
        assert isinstance(accepted, PreparedClip), accepted
        assert type(refused).__name__ == "ResourceLimitError", refused
        message = str(refused)
    else:
        refused, accepted = clf.classify_many(videos, top_k=TOP_K)
        assert "predictions" in accepted, accepted
        assert refused["error"]["type"] == "ResourceLimitError", refused
        message = refused["error"]["message"]
    assert str(paths[over]) in message and next(iter(limit)) in message


def test_frames_over_max_pixels_are_downscaled_at_decode(model_dir, corpus):
    from vidsort.classifier import VideoClassifier
    from vidsort.decode import DecodeLimits

    uhd = next(e.path for e in corpus if e.name == "uhd_4k")
    limit = 1920 * 1080  # 4K is exactly 4x this: decoded at 1080p, never at full size
    clf = VideoClassifier(model_dir, threads=1, limits=DecodeLimits(max_pixels=limit))
    (result,) = clf.classify_many([uhd], top_k=TOP_K)
    assert "predictions" in result, result
    assert result["width"] * result["height"] <= limit
    assert (result["width"], result["height"]) == (1920, 1080)
