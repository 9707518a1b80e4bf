"""What the runtime can run faithfully: one table of architectures and their image processors.

`vidsort.modeldir.ModelDir` checks every model directory against it, so a model whose
preprocessing the runtime does not reproduce (e.g. ViViT, whose processor rescales with an
offset) is refused with a clear `ModelDirError`, never preprocessed silently wrong. Adding an
architecture is one row here plus one export config class (`vidsort.export.onnx_config`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vidsort.errors import ModelDirError


@dataclass(frozen=True)
class Architecture:
    """A model family the runtime supports.

    Attributes:
        model_type: ``config.json``'s ``model_type``.
        classes: ``config.json``'s ``architectures`` entries accepted (video classification heads).
        processors: ``image_processor_type`` (or legacy ``feature_extractor_type``) values whose
            preprocessing `vidsort.preprocess.VideoPreprocessor` reproduces exactly.
    """

    model_type: str
    classes: tuple[str, ...]
    processors: tuple[str, ...]


SUPPORTED: tuple[Architecture, ...] = (
    Architecture("videomae", classes=("VideoMAEForVideoClassification",),
                 processors=("VideoMAEImageProcessor", "VideoMAEFeatureExtractor")),
)
BY_MODEL_TYPE: dict[str, Architecture] = {a.model_type: a for a in SUPPORTED}


def _names(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def check_supported(config: dict[str, Any], preprocessor: dict[str, Any],
                    config_path: str | os.PathLike, preprocessor_path: str | os.PathLike
                    ) -> Architecture:
    """The table row for a model directory, or a one-line `ModelDirError` saying what was found
    and what is supported.

    Args:
        config: the parsed ``config.json``.
        preprocessor: the parsed ``preprocessor_config.json``.
        config_path, preprocessor_path: the files, for the message.

    Returns:
        The matching `Architecture`.
    """
    model_type = config.get("model_type")
    supported_types = ", ".join(BY_MODEL_TYPE)
    arch = BY_MODEL_TYPE.get(str(model_type)) if model_type is not None else None
    if arch is None:
        found = f"model_type {model_type!r}" if model_type is not None else "no model_type"
        raise ModelDirError(f"{config_path}: {found} is not supported by the runtime "
                            f"(supported: {supported_types})")
    classes = _names(config.get("architectures"))
    if classes and not set(classes) & set(arch.classes):
        raise ModelDirError(f"{config_path}: architectures {classes} are not supported for "
                            f"{model_type} (supported: {', '.join(arch.classes)})")
    processor = preprocessor.get("image_processor_type") or preprocessor.get(
        "feature_extractor_type")
    # A processor config without a type (saved by hand or by old tools) is read as the
    # architecture's own processor; every key that changes pixels is still validated.
    if processor is not None and str(processor) not in arch.processors:
        raise ModelDirError(f"{preprocessor_path}: image processor {processor!r} is not one the "
                            f"runtime reproduces for {model_type} "
                            f"(supported: {', '.join(arch.processors)})")
    return arch
