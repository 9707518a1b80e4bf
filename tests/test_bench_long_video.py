"""benchmarks/bench_long_video.py runs end to end on short videos (figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vidsort.segments import plan_windows

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_long_video.py"


def test_long_video_benchmark_smoke(tmp_path):
    pytest.importorskip("optimum.exporters.onnx")  # it exports the embedded model once
    pytest.importorskip("psutil")
    out = tmp_path / "long_video.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--models", "tiny", "--minutes",
                           "0.05,0.1", "--model-rounds", "1", "--cache", str(tmp_path / "cache"),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert [(r["model"], r["minutes"]) for r in rows] == [("tiny", 0.05), ("tiny", 0.1)]
    for row in rows:
        frames = round(row["minutes"] * 60 * 25)
        assert row["windows"] == plan_windows(frames, 8, 4).num_windows
        assert row["decode_pass_frames"] == row["run_stats"]["frames"]
        assert row["bound_s"] == pytest.approx(1.2 * row["model_total_s"] + row["decode_pass_s"],
                                               abs=0.02)
        assert row["rss_main_mb"] > 0 and row["rss_worker_mb"] > 0
    assert {c["what"] for c in record["rss_checks"]} == {"rss_main_mb", "rss_worker_mb",
                                                          "rss_total_mb"}
    assert "flags" in record["machine"] and "load_average" in rows[0]
    assert "RSS growth tiny" in proc.stdout
