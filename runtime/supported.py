"""What the runtime can run faithfully: one table of architectures and their image processors.

`vidsort.modeldir.ModelDir` checks every model directory against it, so a model whose
preprocessing the runtime does not reproduce is refused with a clear `ModelDirError`, never
preprocessed silently wrong. Adding an architecture is one row here (its processors must be
ones `vidsort.preprocess.config.PROCESSOR_DEFAULTS` knows) plus one export config class
(`vidsort.export.onnx_config`).

V-JEPA 2 (``vjepa2``), the fourth transformers video classifier, is left out on purpose: its
processor needs torchvision, so its preprocessing cannot be checked against the reference here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsort.errors import ModelDirError
from vidsort.preprocess.config import DEFAULT_PROCESSOR, PROCESSOR_DEFAULTS, processor_type


@dataclass(frozen=True)
class Architecture:
    """A model family the runtime supports.

    Attributes:
        model_type: ``config.json``'s ``model_type``.
        name: how people write it.
        classes: ``config.json``'s ``architectures`` entries accepted (video classification heads).
        processors: ``image_processor_type`` (or legacy ``feature_extractor_type``) values whose
            preprocessing `vidsort.preprocess.VideoPreprocessor` reproduces exactly; the first is
            the model's own, used when the config names none.
        frame_sample_rate: default stride between sampled frames (the clip length is the
            config's ``num_frames``), from the training recipe the model card points to.
        example: a Hub checkpoint of the family.
    """

    model_type: str
    name: str
    classes: tuple[str, ...]
    processors: tuple[str, ...]
    frame_sample_rate: int
    example: str


_VIDEOMAE_PROCESSORS = ("VideoMAEImageProcessor", "VideoMAEFeatureExtractor")

SUPPORTED: tuple[Architecture, ...] = (
    # 16 frames x stride 4: the VideoMAE fine-tuning recipe (and this project's seed recipe)
    Architecture("videomae", "VideoMAE", classes=("VideoMAEForVideoClassification",),
                 processors=_VIDEOMAE_PROCESSORS, frame_sample_rate=4,
                 example="MCG-NJU/videomae-base-finetuned-kinetics"),
    # 8 frames x stride 32 ("8x32", TimeSformer paper, Kinetics); its checkpoints ship a
    # VideoMAEImageProcessor config (transformers maps timesformer to that processor)
    Architecture("timesformer", "TimeSformer", classes=("TimesformerForVideoClassification",),
                 processors=_VIDEOMAE_PROCESSORS, frame_sample_rate=32,
                 example="facebook/timesformer-base-finetuned-k400"),
    # 32 frames x stride 2 (ViViT paper, Kinetics: "16x2" is the tubelet, 16 px x 2 frames)
    Architecture("vivit", "ViViT", classes=("VivitForVideoClassification",),
                 processors=("VivitImageProcessor",), frame_sample_rate=2,
                 example="google/vivit-b-16x2-kinetics400"),
)
BY_MODEL_TYPE: dict[str, Architecture] = {a.model_type: a for a in SUPPORTED}
assert all(p in PROCESSOR_DEFAULTS for a in SUPPORTED for p in a.processors)


def _names(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def default_processor(model_dir: str | os.PathLike) -> str:
    """The processor class of ``model_dir``'s architecture (from ``config.json``), for a
    preprocessor config that names none; VideoMAE's when config.json is absent or unknown."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return DEFAULT_PROCESSOR
    arch = BY_MODEL_TYPE.get(str(config.get("model_type"))) if isinstance(config, dict) else None
    return arch.processors[0] if arch is not None else DEFAULT_PROCESSOR


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
    # A processor config without a type (saved by hand or by old tools) is read as the
    # architecture's own processor; every key that changes pixels is still validated.
    processor = processor_type(preprocessor, arch.processors[0])
    if processor not in arch.processors:
        raise ModelDirError(f"{preprocessor_path}: image processor {processor!r} is not one the "
                            f"runtime reproduces for {model_type} "
                            f"(supported: {', '.join(arch.processors)})")
    return arch
