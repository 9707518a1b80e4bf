"""The GPU check's CPU dry run (benchmarks/gpu/run.sh --dry-run): every phase runs and writes
its results, on the CPU provider with a tiny model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("optimum.exporters.onnx")

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "run.sh"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-dry")
    proc = subprocess.run(["bash", str(RUN), "--dry-run", "--out", str(out), "--seconds", "0"],
                          capture_output=True, text=True, timeout=600)
    return proc, out


def test_dry_run_passes_and_writes_only_its_results(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [".tmp", "gpu_check.json", "gpu_check.md"]
    assert not list(out.rglob("*.onnx"))  # the exported models went with the scratch folder
    assert not [p for p in (out / ".tmp").iterdir() if not p.name.startswith("pymp-")]
    assert proc.stdout.strip() == (out / "gpu_check.md").read_text().strip()


def test_every_phase_has_results(dry_run):
    proc, out = dry_run
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["dry_run"] is True and results["provider"] == "cpu"
    assert results["hardware"]["cpu"]["model"]
    fp16 = results["export"]["validation"]["fp16"]
    assert fp16["cosine"] >= 0.999 and fp16["nonfinite"] == 0
    assert set(fp16["sets"]) == {"noise", "real_clips"}
    records = results["vidsort"]["records"]
    model = {(r["precision"], r["batch"]): r for r in records if r["kind"] == "model"}
    assert set(model) == {(p, b) for p in ("fp32", "fp16") for b in (1, 2)}
    assert all(r["status"] == "ok" and r["calls"] >= 5 for r in model.values())
    e2e = [r for r in records if r["kind"] == "e2e"]
    assert len(e2e) == 2 and all(r["status"] == "ok" for r in e2e)
    (variant,) = results["vidsort io_binding=True"]["records"]
    assert variant["io_binding"] is True and variant["status"] == "ok"
    torch32 = results["pytorch fp32"]
    assert [r["batch"] for r in torch32] == [1, 2] and all(r["status"] == "ok" for r in torch32)
    assert len(results["pytorch fp16"]) == 2  # measured, or rows saying why not on this CPU
    parity = results["parity"]
    assert parity["vidsort fp32"]["cosine_min"] > 0.99999
    assert parity["vidsort fp16"]["cosine_min"] >= 0.999
    e2e_many = results["end_to_end"]
    assert e2e_many["errors"] == 0 and e2e_many["clips"] == 8 and e2e_many["clips_per_s"] > 0


def test_markdown_names_the_hardware_and_says_dry_run(dry_run):
    proc, out = dry_run
    md = (out / "gpu_check.md").read_text()
    assert md.startswith("# vidsort GPU check (DRY RUN on CPU: no GPU figures)")
    for heading in ("## Model only", "## Parity", "## End to end"):
        assert heading in md
    assert "AVX2" in md and "PyTorch (transformers, SDPA)" in md
