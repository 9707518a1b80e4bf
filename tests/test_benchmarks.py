"""The benchmark suite: its arithmetic, and one `run.py --quick` on the tiny model.

No assertion here is about speed: the figures are checked for completeness and consistency
(every configuration measured, every clip classified, FLOPs from the graph agreeing with the
config), never against a time budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
VIDEOS = Path(__file__).parents[1].parent / "shared" / "videos"
sys.path.insert(0, str(BENCH))

import _flops  # noqa: E402
import _harness  # noqa: E402


def test_config_macs_of_videomae_base_match_hand_arithmetic():
    macs = _flops.config_macs({})  # VideoMAEConfig() defaults
    tokens = 8 * 14 * 14
    per_layer = 4 * tokens * 768**2 + 2 * tokens**2 * 768 + 2 * tokens * 768 * 3072
    expected = 12 * per_layer + tokens * 3 * 2 * 16 * 16 * 768 + 768 * 400
    assert macs["tokens"] == tokens == 1568
    assert macs["total"] == expected
    # the "≈ 361 GFLOPs per clip" figure counts FLOPs (2 per multiply-add)
    assert round(2 * macs["total"] / 1e9) == 361


def test_stage_stats_and_paired_ratio():
    runs = [{"round": i, "decode_s": 0.1 * (i + 1), "preprocess_s": 0.01, "inference_s": 1.0,
             "postprocess_s": 0.001, "e2e_s": 1.0 + 0.1 * (i + 1), "top1": "a", "frames": [0, 1]}
            for i in range(5)]
    stats = _harness.stage_stats(runs)
    assert stats["n"] == 5
    assert stats["decode_s"]["p50"] == pytest.approx(0.3)
    assert stats["decode_s"]["p95"] == pytest.approx(0.48)
    assert stats["decode_s"]["min"] == pytest.approx(0.1)
    twice = [{**r, "e2e_s": 2 * r["e2e_s"]} for r in runs]
    assert _harness.paired_ratio(runs, twice) == pytest.approx(2.0)
    assert _harness.paired_ratio(twice, runs) == pytest.approx(0.5)
    assert "error" in _harness.stage_stats([{"error": "boom"}])


@pytest.mark.skipif(not VIDEOS.is_dir(), reason="../shared/videos is absent")
def test_quick_run_measures_every_configuration(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--models", "tiny",
         "--out", str(out), "--cache", str(tmp_path / "cache"), "--threads", "1"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert proc.stdout.strip() == summary.strip()

    assert {"cpu_model", "flags", "usable_cpus"} <= set(results["machine"])
    assert {"python", "numpy", "onnxruntime", "torch", "transformers"} <= set(results["versions"])
    model = results["models"]["tiny"]
    ids = {c["id"] for c in model["configs"]}
    assert ids == {"seed", "vidsort fp32 cpu decord", "vidsort fp32 cpu pyav",
                   "vidsort int8-dynamic cpu decord", "vidsort int8-dynamic cpu pyav"}
    labels = set(json.loads((Path(model["source"]["hf_dir"]) / "config.json").read_text())
                 ["id2label"].values())
    for c in model["configs"]:
        assert c["id"] in summary
        assert c["load"]["ok"], c["load"]
        (stats,) = c["latency"].values()
        assert stats["n"] == model["plan"]["runs"], stats
        assert stats["top1"] in labels
        for stage in ("decode_s", "preprocess_s", "inference_s", "postprocess_s", "e2e_s"):
            assert 0 <= stats[stage]["min"] <= stats[stage]["p50"] <= stats[stage]["p95"]
        assert c["memory"]["after_latency"]["peak_rss_mib"] > 0
        if c["id"] != "seed":
            assert c["ratio_vs_seed"]["arm_wrestling_340x256.mp4"]["e2e_s"] > 0
            assert c["load"]["provider"] == "cpu"
    # the vidsort configurations ran the file the precision names
    files = {c["id"]: c["load"]["model_file"] for c in model["configs"] if c["id"] != "seed"}
    assert files["vidsort fp32 cpu decord"] == "model.onnx"
    assert files["vidsort int8-dynamic cpu decord"] == "model_quantized.onnx"
    # throughput: every clip of the folder classified at every batch size, none failed
    for c in model["configs"]:
        for b in model["plan"]["batch_sizes"]:
            if "throughput" in c:
                (run,) = c["throughput"][str(b)]["passes"]
                assert (run["clips"], run["errors"]) == (model["plan"]["folder"], 0)
    assert {"seed", "vidsort fp32 cpu decord"} <= {c["id"] for c in model["configs"]
                                                   if "throughput" in c}
    # FLOPs counted in the exported graph agree with the config arithmetic
    flops = model["flops"]
    assert flops["graph"]["total"] == pytest.approx(flops["config"]["total"], rel=0.02)
    assert all(v > 0 for v in model["ceiling"]["ceiling"].values())
    sizes = results["installed_sizes"]
    assert 0 < sizes["runtime_mb"] < sizes["with_torch_mb"]
    assert results["import_times"]["import vidsort"]["runs"] == 1


def test_preprocess_benchmark_quick_run(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "preprocess.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_preprocess.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [r["case"] for r in report["results"]] == ["synthetic 340x256", "synthetic 1920x1080"]
    for row in report["results"]:
        for side in ("vidsort", "transformers"):
            assert 0 < row[side]["best_s"] <= row[side]["median_s"]
        assert row["speedup_paired"] > 0 and row["speedup_cpu"] > 0
        # the timed outputs are the processor's: parity as in tests/test_preprocess.py
        assert row["parity"]["max_abs"] <= 0.035 and row["parity"]["mean_abs"] <= 0.002
    assert "speed-up" in proc.stdout and "1920x1080" in proc.stdout
