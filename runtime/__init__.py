"""vidsort: torch-free video classification with ONNX Runtime.

How a video becomes labels (one module per stage):
``decode`` (frames from a file) → ``sampling`` (which frames) → ``preprocess`` (NumPy, equal to
transformers' VideoMAEImageProcessor) → ``session`` (ONNX Runtime) → ``postprocess`` (scores,
labels). ``classifier.VideoClassifier`` strings them together.

Attributes are imported lazily so that ``import vidsort`` stays cheap (no onnxruntime or
decoder import until something is used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "VideoClassifier": "vidsort.classifier",
    "VideoPreprocessor": "vidsort.preprocess",
    "sample_indices": "vidsort.sampling",
    "read_frames": "vidsort.decode",
    "ModelDir": "vidsort.modeldir",
    "errors": "vidsort.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from vidsort import errors  # noqa: F401
    from vidsort.classifier import VideoClassifier  # noqa: F401
    from vidsort.decode import read_frames  # noqa: F401
    from vidsort.modeldir import ModelDir  # noqa: F401
    from vidsort.preprocess import VideoPreprocessor  # noqa: F401
    from vidsort.sampling import sample_indices  # noqa: F401


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vidsort' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value
