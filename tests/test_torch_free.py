"""The runtime must never import torch, transformers or optimum."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "optimum")

CODE = """
import sys, numpy as np
import vidsort
from vidsort import VideoClassifier, VideoPreprocessor, sample_indices, read_frames
import vidsort.cli, vidsort.classifier, vidsort.decode, vidsort.session, vidsort.pipeline
import vidsort.isolation, vidsort.preprocess, vidsort.modeldir
heavy = [m for m in sys.modules if m.split('.')[0] in {heavy!r}]
print(heavy)
assert not heavy, heavy
demo = [m for m in sys.modules if m.startswith(("vidsort.export", "vidsort.testing"))]
assert not demo, demo
"""


def test_runtime_imports_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", CODE.format(heavy=HEAVY)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout


def test_import_vidsort_is_lazy():
    code = ("import sys, vidsort; print(sorted(m for m in sys.modules "
            "if m.startswith(('onnxruntime', 'decord', 'av'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_import_vidsort_loads_no_heavy_or_demo_module():
    # a fresh interpreter: `import vidsort` alone, then the CLI's help (what a user runs first)
    code = ("import sys, vidsort, vidsort.cli; "
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            "or m.startswith(('vidsort.export', 'vidsort.testing'))); print(bad); "
            "sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_demo_lives_outside_the_runtime_package():
    from pathlib import Path

    runtime = Path(__file__).parents[1] / "runtime"
    names = {p.stem for p in runtime.rglob("*.py")}
    assert not names & {"demo", "synthetic", "synthetic_layers", "train_tiny_motion",
                        "check_tiny_motion"}
    assert not list(runtime.rglob("*.safetensors"))


def test_runtime_dependencies_exclude_heavy_libraries():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    deps = " ".join(pyproject["project"]["dependencies"]).lower()
    for name in HEAVY:
        assert name not in deps
