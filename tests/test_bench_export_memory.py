"""benchmarks/bench_export_memory.py on the tiny model: every mode measured, the peak attributed
to a step (no assertion on the figures themselves)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_export_memory.py"


def test_bench_measures_each_mode(tiny_videomae_dir, tmp_path):
    pytest.importorskip("optimum.exporters.onnx")
    pytest.importorskip("psutil")
    from vidsort.testing.videogen import make_clip

    videos = tmp_path / "videos"
    videos.mkdir()
    make_clip(videos / "a.mp4", num_frames=24, width=64, height=48)
    out = tmp_path / "memory.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--model", str(tiny_videomae_dir), "--modes",
         "static", "--calibration", str(videos), "--clips", "2", "--trace",
         "--out", str(out), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert "flags" in record["machine"] and record["versions"]["onnxruntime"]
    results = {r["label"]: r for r in record["results"]}
    assert set(results) == {"static", "static, 2 generated clips"}
    for r in results.values():
        assert "error" not in r, r
        assert r["peak_rss_gib"] > 0 and r["wall_s"] > 0 and r["peak_step"]
        assert r["kernel_maxrss_gib"]["self"] >= r["peak_rss_gib"] * 0.9
    assert results["static, 2 generated clips"]["calibration"]["clips"] == 2
    assert "model_quantized.onnx" in results["static"]["files_mb"]
    # --trace attributes time to the export's inner functions
    assert any("/ calibrate" in step for step in results["static"]["step_peaks_gib"])
