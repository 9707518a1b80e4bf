"""benchmarks/bench_architectures.py runs end to end on tiny configs (figures: the script)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("optimum.exporters.onnx")
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))


def test_quick_run_writes_every_figure(tmp_path, shared_videos):
    import bench_architectures

    out = tmp_path / "architectures.json"
    assert bench_architectures.main(["--quick", "--archs", "timesformer,vivit", "--cache",
                                     str(tmp_path / "cache"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["flags"] and len(report["load_average_at_end"]) == 3
    assert [r["model_type"] for r in report["results"]] == ["timesformer", "vivit"]
    for result in report["results"]:
        assert result["flops_per_clip"] > 0
        assert result["flops_count"]["unresolved_shapes"] == {}  # every MatMul/Conv counted
        assert set(result["latency"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
        assert result["latency"]["onnx_int8"]["speedup_vs_pytorch"] > 0
        assert max(result["fp32_max_abs_diff"].values()) <= 1e-4
        assert result["int8_real_clips"]["min_cosine"] >= 0.99
    assert "| vivit | 32x32x32 |" in report["table"]
