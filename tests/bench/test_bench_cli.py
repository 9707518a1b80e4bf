"""`vidsort bench` on CPU: the JSON schema, reason rows, exit codes, and the tables."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vidsort import bench
from vidsort.bench.records import RECORD_KEYS, REPORT_KEYS, STAGES, problems
from vidsort.session import available_providers
from vidsort.testing.videogen import make_clip

GPU_BUILD = bool({"cuda", "tensorrt"} & set(available_providers()))


def _vidsort(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidsort", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("bench-clip") / "clip.mp4", num_frames=16)


@pytest.fixture(scope="module")
def cli_run(exported_tiny_dir, clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-out")
    missing = out / "no-such-video.mp4"
    proc = _vidsort("bench", str(exported_tiny_dir), "--batch", "1", "2", "--seconds", "0",
                    "--threads", "1", "--video", str(clip), str(missing),
                    "--json", str(out / "bench.json"), "--markdown", str(out / "bench.md"))
    return proc, out


def test_json_follows_the_documented_schema(cli_run, exported_tiny_dir):
    proc, out = cli_run
    report = json.loads((out / "bench.json").read_text())
    assert set(REPORT_KEYS) <= set(report)
    assert problems(report) == []
    assert report["schema"] == "vidsort-bench" and report["schema_version"] == 1
    assert report["model_dir"] == str(exported_tiny_dir)
    assert report["settings"]["batches"] == [1, 2]
    hw = report["hardware"]
    assert hw["cpu"]["model"] and hw["cpu"]["usable_cpus"] >= 1
    assert set(hw["cpu"]["simd"]) == {"AVX2", "AVX-512", "VNNI", "AMX"}
    assert {"python", "onnxruntime", "numpy", "vidsort"} <= set(hw["versions"])
    assert hw["threads"] == 1 and len(hw["load_average"]) == 3
    for rec in report["records"]:
        assert set(RECORD_KEYS) <= set(rec)


def test_every_combination_is_a_row(cli_run):
    proc, out = cli_run
    records = json.loads((out / "bench.json").read_text())["records"]
    model = {(r["provider"], r["precision"], r["batch"]) for r in records if r["kind"] == "model"}
    assert model == {(p, q, b) for p in ("cpu", "cuda", "tensorrt")
                     for q in ("fp32", "int8", "fp16") for b in (1, 2)}
    e2e = {(r["provider"], r["precision"], r["video"]) for r in records if r["kind"] == "e2e"}
    assert e2e == {(p, q, v) for p in ("cpu", "cuda", "tensorrt")
                   for q in ("fp32", "int8", "fp16") for v in ("clip.mp4", "no-such-video.mp4")}


def test_cpu_rows_are_measured(cli_run):
    proc, out = cli_run
    records = json.loads((out / "bench.json").read_text())["records"]
    for rec in (r for r in records if r["provider"] == "cpu" and r["kind"] == "model"):
        assert rec["status"] == "ok", rec
        lat = rec["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert rec["calls"] >= 5 and rec["seconds"] > 0
        assert rec["throughput"] == pytest.approx(rec["batch"] * rec["calls"] / rec["seconds"],
                                                  rel=1e-2)
        assert rec["load_s"] > 0 and rec["peak_rss_mib"] > 20
        assert rec["session_provider"] == "CPUExecutionProvider"
        assert rec["model_file"] == {"fp32": "model.onnx", "int8": "model_quantized.onnx",
                                     "fp16": "model_fp16.onnx"}[rec["precision"]]
        assert rec["peak_device_mib"] is None and rec["io_binding"] is False
    e2e = [r for r in records if r["provider"] == "cpu" and r["video"] == "clip.mp4"]
    for rec in e2e:
        assert rec["status"] == "ok", rec
        assert set(rec["stages_ms"]) == set(STAGES)
        stages = {s: rec["stages_ms"][s]["p50"] for s in STAGES}
        assert all(v >= 0 for v in stages.values()) and stages["decode"] > 0
        assert rec["top1"]


def test_unavailable_and_failed_rows_say_why(cli_run):
    proc, out = cli_run
    records = json.loads((out / "bench.json").read_text())["records"]
    bad_video = [r for r in records if r["video"] == "no-such-video.mp4" and r["provider"] == "cpu"]
    assert bad_video and all(r["status"] == "failed" and "no-such-video.mp4" in r["reason"]
                             for r in bad_video)
    assert proc.returncode == 1, proc.stderr  # a failed row, the rest measured
    if GPU_BUILD:
        pytest.skip("a GPU onnxruntime build is installed here")
    for rec in (r for r in records if r["provider"] in ("cuda", "tensorrt")):
        assert rec["status"] == "unavailable"
        assert "not available in this onnxruntime build" in rec["reason"]
        assert rec["latency_ms"] is None and rec["calls"] is None


def test_stdout_table_and_markdown_name_the_hardware(cli_run):
    proc, out = cli_run
    first = proc.stdout.splitlines()[0]
    assert first.startswith("hardware: ") and "inference threads 1" in first
    assert "AVX2" in first or "no AVX2" in first
    assert "unavailable [" in proc.stdout and "failed [" in proc.stdout
    md = (out / "bench.md").read_text()
    assert md.startswith("| provider | precision | batch | p50 ms |")
    assert "| cpu | fp32 | 2 |" in md and "vidsort bench" in md


def test_missing_variant_is_a_reason_row(exported_tiny_dir, tmp_path):
    model = tmp_path / "no-fp16"
    shutil.copytree(exported_tiny_dir, model)
    (model / "model_fp16.onnx").unlink()
    manifest = json.loads((model / "vidsort.json").read_text())
    del manifest["variants"]["fp16"], manifest["files"]["model_fp16.onnx"]
    (model / "vidsort.json").write_text(json.dumps(manifest))
    report = bench.run(model, providers=["cpu"], precisions=["fp16", "fp32"], seconds=0,
                       isolate=False)
    fp16, fp32 = report["records"]
    assert fp16["status"] == "unavailable" and "model_fp16.onnx" in fp16["reason"]
    assert "--fp16" in fp16["reason"]
    assert fp32["status"] == "ok" and fp32["calls"] >= 5


@pytest.mark.skipif(GPU_BUILD, reason="a GPU onnxruntime build is installed here")
def test_cuda_only_on_a_machine_without_it_exits_2_with_one_line(exported_tiny_dir):
    proc = _vidsort("bench", str(exported_tiny_dir), "--provider", "cuda", "--seconds", "0")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidsort bench: error: nothing could run")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_model_dir_exits_2_with_one_line(tmp_path):
    proc = _vidsort("bench", str(tmp_path / "nope"), "--seconds", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"vidsort bench: error: {tmp_path / 'nope'}: model directory does not exist"]


def test_api_returns_the_records_the_cli_writes(exported_tiny_dir):
    report = bench.run(exported_tiny_dir, providers=["cpu"], precisions=["int8"], batches=[3],
                       seconds=0, threads=1, isolate=False)
    assert problems(report) == []
    (rec,) = report["records"]
    assert (rec["kind"], rec["provider"], rec["precision"], rec["batch"]) == \
        ("model", "cpu", "int8", 3)
    assert rec["status"] == "ok" and rec["rss_scope"] in ("cell", "process")
    assert bench.table(report).splitlines()[0].startswith("hardware: ")
    with pytest.raises(ValueError, match="unknown provider"):
        bench.run(exported_tiny_dir, providers=["gpu"])
