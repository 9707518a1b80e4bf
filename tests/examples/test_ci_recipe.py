"""The CI recipe (examples/ci/): the shell script run end to end on the embedded tiny-motion model
(offline; the Hub download of the workflow cannot run here), and the workflow's steps checked
against it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
SCRIPT = CI / "export_model.sh"
WORKFLOW = CI / "export-model.yml"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    # the venv's `vidsort` first on PATH; nothing is installed (VIDSORT_INSTALL=0)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PATH": path, "VIDSORT_INSTALL": "0",
                                            "HF_HUB_OFFLINE": "1", **env})


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two rendered tiny-motion clips (a sample and a calibration set)."""
    pytest.importorskip("optimum.exporters.onnx")
    from vidsort.export.demo.synthetic import render_clip, write_clip

    folder = tmp_path_factory.mktemp("ci-clips")
    for seed, label in enumerate(("moving left", "growing")):
        write_clip(folder / f"clip{seed}.mp4", render_clip(label, seed, width=160, height=120,
                                                           seconds=2.0))
    return folder


@pytest.mark.parametrize("calibrate", [False, True], ids=["dynamic", "static"])
def test_script_exports_and_verifies_tiny_motion(clips, tmp_path, calibrate):
    out = tmp_path / "model-onnx"
    args = ["tiny-motion", str(out), str(clips / "clip0.mp4")]
    proc = _run(*args, *([str(clips)] if calibrate else []))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "all" in proc.stdout and "checks passed" in proc.stdout
    manifest = json.loads((out / "vidsort.json").read_text())
    assert manifest["quantization"]["mode"] == ("static" if calibrate else "dynamic")
    assert set(manifest["variants"]) == {"fp32", "int8"}
    assert "top-1 agreement with fp32 1/1" in proc.stdout


def test_script_fails_when_verify_fails(clips, tmp_path):
    """A failed check stops the script with verify's exit status (1), not a success."""
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    proc = _run("tiny-motion", str(tmp_path / "out"), str(bad))
    assert proc.returncode == 1
    assert any(line.startswith("FAIL") and str(bad) in line for line in proc.stdout.splitlines())


def test_script_usage():
    proc = _run("tiny-motion")
    assert proc.returncode == 2 and "usage:" in proc.stderr


def _commands(text: str) -> list[str]:
    """Shell commands of a script or of run: blocks, continuation lines joined, comments gone."""
    lines = [line.split(" #")[0].strip() for line in text.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_workflow_runs_the_scripts_steps():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["export"]["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert {"actions/setup-python", "actions/upload-artifact"} <= set(uses)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    out = workflow["jobs"]["export"]["env"]["OUT"]
    assert upload["with"]["path"].rstrip("/") == out
    run = [c for s in steps if "run" in s for c in _commands(s["run"])]
    script = _commands(SCRIPT.read_text())
    # the same installs: CPU torch first, then the export extra
    cpu_torch = "python -m pip install --index-url https://download.pytorch.org/whl/cpu torch"
    assert [c for c in run if c.startswith("python -m pip install")] == [
        cpu_torch, "python -m pip install 'vidsort[export]'"]
    assert [c for c in script if c.startswith("python -m pip install")] == [
        cpu_torch, 'python -m pip install "${VIDSORT_PIP_SPEC:-vidsort[export]}"']
    # ... and the same vidsort commands: an int8 export, a verify on the sample clip
    export = next(shlex.split(c) for c in run if c.startswith("vidsort export"))
    verify = next(shlex.split(c) for c in run if c.startswith("vidsort verify"))
    assert "--quantize" in export and export[export.index("--quantize") + 1] in ("static",
                                                                                 "dynamic")
    assert verify[2] == "$OUT" and "--video" in verify and "--require-agreement" in verify
    assert any(c.startswith("vidsort verify") and "--require-agreement" in c for c in script)
