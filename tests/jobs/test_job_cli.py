"""``vidsort classify ... --out``: real SIGKILLs and resumes, Ctrl-C, refusal, ``@list.txt``,
progress only on a terminal — all through the command line, in subprocesses."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import random
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from job_helpers import cli, read_output, start_cli, video_counts, without_timings
from vidsort.inputs import walk_videos

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import kill_resume  # noqa: E402


@pytest.mark.parametrize("name", ["results.jsonl", "results.parquet", "parts"])
def test_sigkill_then_resume_gives_exactly_one_record_per_input(exported_tiny_dir, clip_dir,
                                                                tmp_path, name):
    pytest.importorskip("pyarrow")
    out = tmp_path / name
    expected = set(walk_videos(clip_dir))
    # start-up and per-file figures of this machine now, as the kill script measures them
    started = time.perf_counter()
    assert cli("classify", exported_tiny_dir, clip_dir, "-r", "--out", tmp_path / "whole.jsonl",
               "--flush-every", "8").returncode == 0
    whole = time.perf_counter() - started
    outcome = kill_resume.kill_resume(exported_tiny_dir, clip_dir, out, kills=3,
                                      rng=random.Random(name), startup_s=0.5 * whole,
                                      per_file_s=0.5 * whole / len(expected),
                                      extra=("--flush-every", "8"))
    assert outcome["duplicates_seen"] == 0, outcome
    assert outcome["final_rc"] == 0, outcome["final_stderr"]
    counts = video_counts(out)
    assert set(counts) == expected and set(counts.values()) == {1}, outcome


def test_ctrl_c_stops_after_the_batch_in_hand_and_resume_finishes(exported_tiny_dir, clip_dir,
                                                                  tmp_path):
    out = tmp_path / "r.jsonl"
    proc = start_cli("classify", exported_tiny_dir, clip_dir, "-r", "--out", out,
                     "--flush-every", "4")
    deadline = time.monotonic() + 120
    while not (out.exists() and out.stat().st_size) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted: rerun with --resume" in stderr
    assert "Traceback" not in stderr
    partial = read_output(out)  # whole lines only
    assert 0 < len(partial) < len(set(walk_videos(clip_dir)))
    done = cli("classify", exported_tiny_dir, clip_dir, "-r", "--out", out, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(partial)}" in done.stderr
    counts = video_counts(out)
    assert set(counts) == set(walk_videos(clip_dir)) and set(counts.values()) == {1}


@pytest.mark.parametrize("name", ["r.jsonl", "r.parquet", "parts"])
def test_existing_output_without_resume_exits_2_with_one_line(exported_tiny_dir, clip_dir,
                                                              tmp_path, name):
    pytest.importorskip("pyarrow")
    out = tmp_path / name
    one = next(walk_videos(clip_dir))
    assert cli("classify", exported_tiny_dir, one, "--out", out).returncode == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    again = cli("classify", exported_tiny_dir, one, "--out", out)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr
    assert "--resume" in again.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_at_list_inputs(exported_tiny_dir, clip_dir, tmp_path):
    files = sorted(walk_videos(clip_dir))
    listing = tmp_path / "list.txt"
    missing = str(tmp_path / "missing.mp4")
    listing.write_text("\n".join(["# the archive's first shelf", files[0], "", f"  {files[1]}  ",
                                  str(clip_dir / "d3"), missing, files[0]]) + "\n")
    out = tmp_path / "r.jsonl"
    done = cli("classify", exported_tiny_dir, f"@{listing}", "-r", "--out", out)
    assert done.returncode == 1, done.stderr  # the missing file failed
    records = read_output(out)
    expected = [files[0], files[1], *walk_videos(clip_dir / "d3"), missing]  # files[0] once
    assert [r["video"] for r in records] == expected
    (gone,) = [r for r in records if "error" in r]
    assert gone["video"] == missing and gone["size"] is None and gone["mtime"] is None
    assert all(r["size"] == os.stat(r["video"]).st_size for r in records if r is not gone)
    nothing = cli("classify", exported_tiny_dir, f"@{tmp_path / 'none.txt'}", "--out",
                  tmp_path / "x.jsonl")
    assert nothing.returncode == 2 and "cannot read the input list" in nothing.stderr


def test_records_equal_the_json_lines_plus_size_and_mtime(exported_tiny_dir, clip_dir,
                                                          tmp_path):
    files = sorted(walk_videos(clip_dir / "d0"))[:3]
    lines = cli("classify", exported_tiny_dir, *files, "--json")
    assert lines.returncode == 0
    expected = [json.loads(line) for line in lines.stdout.splitlines()]
    for record in expected:
        st = os.stat(record["video"])
        record.update(size=st.st_size, mtime=st.st_mtime)
    assert cli("classify", exported_tiny_dir, *files, "--out", tmp_path / "r.jsonl").returncode == 0
    assert without_timings(read_output(tmp_path / "r.jsonl")) == without_timings(expected)


def test_no_progress_when_stderr_is_not_a_terminal(exported_tiny_dir, clip_dir, tmp_path):
    done = cli("classify", exported_tiny_dir, clip_dir / "d1", "-r", "--out", tmp_path / "r.jsonl")
    assert done.returncode == 0
    (line,) = done.stderr.splitlines()  # the summary line alone: no bar, no carriage returns
    assert line.startswith("vidsort classify: done 40 (0 failed), skipped 0, elapsed")
    assert "\r" not in done.stderr


def test_progress_on_a_terminal(exported_tiny_dir, clip_dir, tmp_path):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([sys.executable, "-m", "vidsort", "classify", str(exported_tiny_dir),
                             str(clip_dir / "d2"), "-r", "--out", str(tmp_path / "r.jsonl")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = screen.decode("utf-8", "replace")
    assert "file/s" in text and "40/40" in text and "failed=0" in text
    assert "vidsort classify: done 40 (0 failed)" in text


def test_usage_errors_exit_2(exported_tiny_dir, clip_dir, tmp_path):
    one = next(walk_videos(clip_dir))
    for extra in (["--ray-address", "auto"], ["--flush-every", "0"], ["--vtt", tmp_path],
                  ["--segments", "--engine", "ray"], ["--segments", "--stride-s", "0"]):
        done = cli("classify", exported_tiny_dir, one, "--out", tmp_path / "r.jsonl", *extra)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (extra, done.stderr)
    assert not (tmp_path / "r.jsonl").exists()
    bad = cli("classify", exported_tiny_dir, one, "--out", tmp_path / "r.csv")
    assert bad.returncode == 2 and ".jsonl or .parquet" in bad.stderr


@pytest.mark.parametrize("module,extra,out", [("pyarrow", "parquet", "r.parquet"),
                                              ("ray", "ray", "r.jsonl")])
def test_a_missing_extra_is_one_line(exported_tiny_dir, clip_dir, tmp_path, module, extra, out):
    code = (f"import sys; sys.modules[{module!r}] = None; from vidsort.cli import main; "
            f"sys.exit(main(sys.argv[1:]))")
    args = ["classify", exported_tiny_dir, next(walk_videos(clip_dir)), "--out", tmp_path / out]
    if module == "ray":
        args += ["--engine", "ray"]
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"pip install 'vidsort[{extra}]'" in done.stderr


def test_segments_records(exported_tiny_dir, clip_dir, tmp_path):
    pytest.importorskip("pyarrow")
    files = sorted(walk_videos(clip_dir / "d0"))[:2]
    missing = str(tmp_path / "missing.mp4")
    lines = cli("classify", exported_tiny_dir, *files, missing, "--segments", "--json")
    assert lines.returncode == 1, lines.stderr
    expected = [json.loads(line) for line in lines.stdout.splitlines()]
    for record in expected:
        st = os.stat(record["video"]) if "error" not in record else None
        record.update(size=st and st.st_size, mtime=st and st.st_mtime)
    out = tmp_path / "r.parquet"
    done = cli("classify", exported_tiny_dir, *files, missing, "--segments", "--out", out)
    assert done.returncode == 1, done.stderr
    records = read_output(out)
    assert {"duration_s", "windows", "segments", "labels"} <= set(records[0])
    for record in records:
        record.pop("precision"), record.pop("provider")
    assert without_timings(records) == without_timings(expected)
