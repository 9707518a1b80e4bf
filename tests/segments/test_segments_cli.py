"""``vidsort classify --segments``: JSON lines, timeline text, WebVTT, PNG, errors, exit codes."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import sys
import termios

import pytest
from vidsort.cli import main
from vidsort.isolation import FAULT_ENV
from vidsort.segments import run
from vidsort.testing.videogen import make_clip

KEYS = ["video", "duration_s", "fps", "windows", "segments", "labels"]


@pytest.fixture()
def junk(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(b"not a video at all" * 64)
    return path


def test_json_lines_hold_exactly_the_result_and_a_bad_file_costs_itself(
        tiny_motion_dir, timeline_video, junk, capsys):
    path, parts = timeline_video
    code = main(["classify", str(tiny_motion_dir), str(path), str(junk), str(path), "--segments",
                 "--json", "--min-score", "0.8"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len(out) == 3
    first, error, last = (json.loads(line) for line in out)
    assert list(first) == KEYS and first == last
    assert [s["label"] for s in first["segments"]] == [p.label for p in parts]
    assert error["video"] == str(junk)
    assert error["error"]["type"] == "VideoDecodeError" and "junk.mp4" in error["error"]["message"]


def test_the_timeline_is_readable(tiny_motion_dir, timeline_video, capsys):
    path, parts = timeline_video
    assert main(["classify", str(tiny_motion_dir), str(path), "--segments", "--min-score",
                 "0.8", "--stride-s", "0.4"]) == 0
    out = capsys.readouterr().out
    assert f"{path}  (15.9 s, 25 fps" in out
    lines = [line for line in out.splitlines() if line.startswith("  0")]
    assert [line.split("  ")[2].strip() for line in lines if "(" not in line] == \
        [p.label for p in parts]
    assert "whole video: " in out


def test_vtt_and_plot_files(tiny_motion_dir, timeline_video, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, parts = timeline_video
    vtt, png = tmp_path / "vtt", tmp_path / "png"
    assert main(["classify", str(tiny_motion_dir), str(path), "--vtt", str(vtt), "--plot",
                 str(png), "--min-score", "0.8", "--json"]) == 0  # both imply --segments
    result = json.loads(capsys.readouterr().out)
    text = (vtt / "timeline.vtt").read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n1\n00:00:00.000 --> ")
    assert text.count(" --> ") == len(result["segments"]) == len(parts)
    assert f"\n{parts[1].label} (" in text
    assert (png / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_one_line_and_exit_2(tiny_motion_dir, timeline_video,
                                                          tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing package looks like
    for name in [m for m in sys.modules if m.startswith(("matplotlib.", "vidsort.segments.plot"))]:
        monkeypatch.delitem(sys.modules, name)
    code = main(["classify", str(tiny_motion_dir), str(timeline_video[0]), "--plot",
                 str(tmp_path / "png")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "needs the plot extra (pip install 'vidsort[plot]')" in err


def test_limits_and_decoder_faults_cost_their_video(tiny_motion_dir, timeline_video, tmp_path,
                                                    monkeypatch, capsys):
    path, _ = timeline_video
    hang = make_clip(tmp_path / "hangs.mp4", num_frames=40)
    monkeypatch.setenv(FAULT_ENV, "hang:hangs")
    # --timeout: seconds without progress; 3 s leaves the good video room on a busy machine
    code = main(["classify", str(tiny_motion_dir), str(hang), str(path), "--segments", "--json",
                 "--timeout", "3"])
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert code == 1
    assert first["error"]["type"] == "DecodeTimeout"
    assert list(second) == KEYS
    code = main(["classify", str(tiny_motion_dir), str(path), "--segments", "--max-duration", "5"])
    out = capsys.readouterr().out
    assert code == 1
    assert "error: ResourceLimitError" in out and "max_duration_s" in out


def test_options_that_do_not_apply_are_named_and_bad_values_refused(
        tiny_motion_dir, tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", num_frames=40, width=96, height=64)
    assert main(["classify", str(tiny_motion_dir), str(clip), "--segments", "--clips", "3",
                 "--no-isolate"]) == 0
    assert "--strategy and --clips do not apply with --segments" in capsys.readouterr().err
    for bad in (["--stride-s", "0"], ["--min-score", "nan"], ["--window-batch", "0"]):
        assert main(["classify", str(tiny_motion_dir), str(clip), "--segments", *bad]) == 2
        assert "vidsort classify:" in capsys.readouterr().err


def test_progress_goes_to_a_terminal_on_stderr_never_into_json(tiny_motion_dir, timeline_video,
                                                               monkeypatch, capsys):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    terminal = os.fdopen(slave, "w")
    monkeypatch.setattr(run, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.setattr(sys, "stderr", terminal)
    try:
        assert main(["classify", str(tiny_motion_dir), str(timeline_video[0]), "--segments",
                     "--json", "--no-isolate"]) == 0
        terminal.flush()
        shown = os.read(master, 1 << 16).decode(errors="replace")
    finally:
        terminal.close()
        os.close(master)
    assert "timeline.mp4:" in shown and "/24 [" in shown and "window/s" in shown
    assert list(json.loads(capsys.readouterr().out)) == KEYS  # stdout: the JSON line alone
