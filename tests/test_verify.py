"""`vidsort verify`: a good directory passes; each kind of damage fails with exit 1 and exactly one
line naming the damaged file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vidsort.cli import main
from vidsort.manifest import FORMAT_VERSION, MANIFEST, VARIANT_FILES, sha256_file


@pytest.fixture
def model_dir(exported_tiny_dir, tmp_path) -> Path:
    """A private copy of the tiny export (fp32, int8 dynamic, fp16) that a test may damage."""
    return Path(shutil.copytree(exported_tiny_dir, tmp_path / "model"))


def _verify(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(["verify", *map(str, argv)])
    return code, capsys.readouterr().out.splitlines()


def _failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def _edit_manifest(model_dir: Path, **changes) -> None:
    path = model_dir / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_good_dir_passes(model_dir, capsys):
    code, lines = _verify(capsys, model_dir)
    assert code == 0, lines
    assert not _failures(lines)
    checked = "\n".join(lines)
    for name in (*VARIANT_FILES.values(), "config.json", "preprocessor_config.json", MANIFEST):
        assert f"{model_dir / name}:" in checked
    assert lines[-1].startswith("all ") and lines[-1].endswith("checks passed")


def test_good_dir_json(model_dir, capsys):
    code, lines = _verify(capsys, model_dir, "--json")
    report = json.loads("\n".join(lines))
    assert code == 0 and report["ok"] and report["failures"] == 0
    loaded = [c for c in report["checks"] if "loads in ONNX Runtime" in c["message"]]
    assert {c["file"] for c in loaded} == set(VARIANT_FILES.values())


def test_truncated_model_fails_with_one_line(model_dir, capsys):
    path = model_dir / VARIANT_FILES["int8"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{path}:" in fail and "changed since export" in fail
    assert f"{len(data) // 2} bytes" in fail


def test_edited_config_fails_with_one_line(model_dir, capsys):
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    config["id2label"]["0"] = "renamed"
    path.write_text(json.dumps(config, indent=2))
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{path}:" in fail and "changed since export" in fail


def test_missing_variant_file_fails_with_one_line(model_dir, capsys):
    path = model_dir / VARIANT_FILES["fp16"]
    path.unlink()
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{path}:" in fail and "missing" in fail


def test_newer_manifest_version_fails_with_one_line(model_dir, capsys):
    _edit_manifest(model_dir, format_version=FORMAT_VERSION + 1)
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{model_dir / MANIFEST}:" in fail and f"version {FORMAT_VERSION + 1}" in fail


def test_same_size_corruption_is_caught_by_sha256(model_dir, capsys):
    path = model_dir / VARIANT_FILES["fp32"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{path}:" in fail and "sha256" in fail


def test_unloadable_model_with_a_matching_manifest(model_dir, capsys):
    """The manifest's hashes are right but ONNX Runtime cannot load the file."""
    path = model_dir / VARIANT_FILES["int8"]
    path.write_bytes(b"not an onnx model")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["files"][path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{path}:" in fail and "ONNX Runtime" in fail


def test_signature_differs_from_manifest(model_dir, capsys):
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["input"]["shape"][1] += 1  # frames per clip
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    failures = _failures(lines)
    # every variant has the manifest's (wrong) frame count: one line per variant file
    assert len(failures) == len(VARIANT_FILES)
    assert all("input shape" in f for f in failures)


def test_video_agreement_between_variants(model_dir, tmp_path, capsys):
    from vidsort.testing.videogen import make_clip

    clip = make_clip(tmp_path / "clip.mp4", num_frames=24, width=64, height=48)
    code, lines = _verify(capsys, model_dir, "--video", clip, "--json")
    report = json.loads("\n".join(lines))
    assert code == 0, report
    video = report["video"]
    assert set(video["predictions"]) == set(VARIANT_FILES)
    labels = json.loads((model_dir / MANIFEST).read_text())["labels"]
    assert all(p["label"] in labels for p in video["predictions"].values())
    assert set(video["agreement"]) == {"int8", "fp16"}
    fp32 = video["predictions"]["fp32"]["label"]
    for variant, same in video["agreement"].items():
        assert same == (video["predictions"][variant]["label"] == fp32)


def test_undecodable_video_is_a_failure_line(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    code, lines = _verify(capsys, model_dir, "--video", bad)
    assert code == 1
    (fail,) = _failures(lines)
    assert str(bad) in fail


def test_usage_errors_exit_2(model_dir, tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["verify", str(model_dir), "--video", str(tmp_path / "none.mp4")]) == 2
    assert "none.mp4" in capsys.readouterr().err


def test_command_line_prints_no_traceback(model_dir):
    (model_dir / VARIANT_FILES["fp16"]).unlink()
    proc = subprocess.run([sys.executable, "-m", "vidsort", "verify", str(model_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sum(line.startswith("FAIL") for line in proc.stdout.splitlines()) == 1


def test_labels_differing_from_config(model_dir, capsys):
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["labels"][0] = "something else"
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    code, lines = _verify(capsys, model_dir)
    assert code == 1
    (fail,) = _failures(lines)
    assert f"{model_dir / 'config.json'}:" in fail and "labels" in fail
