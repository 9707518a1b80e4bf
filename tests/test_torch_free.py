"""The runtime must never import torch, transformers or optimum."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "optimum")

CODE = """
import sys, numpy as np
import vidsort
from vidsort import VideoClassifier, VideoPreprocessor, sample_indices, read_frames
import vidsort.cli, vidsort.classifier, vidsort.decode, vidsort.session, vidsort.pipeline
heavy = [m for m in sys.modules if m.split('.')[0] in {heavy!r}]
print(heavy)
assert not heavy, heavy
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


def test_runtime_dependencies_exclude_heavy_libraries():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    deps = " ".join(pyproject["project"]["dependencies"]).lower()
    for name in HEAVY:
        assert name not in deps
