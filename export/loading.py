"""Find and load the model to export: an embedded name, a local directory, or a Hub id.

Everything that can be checked before the (slow) weight load is checked first, so bad input
fails in well under a second with one `ExportError` line naming the path and the problem.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsort.errors import ExportError, first_line
from vidsort.export.demo.embedded import resolve_embedded
from vidsort.export.onnx_config import supported_model_types

#: weight files `save_pretrained` writes (single file or sharded index), in load order
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
CONFIG_NAME = "config.json"
PREPROCESSOR_NAME = "preprocessor_config.json"


@dataclass
class LoadedModel:
    """A video classifier ready to export."""

    source: str  #: the MODEL argument as given
    location: str  #: local directory or Hub id it was loaded from
    model: Any  #: the torch module, in eval mode, float32
    config: Any  #: its transformers config

    @property
    def model_type(self) -> str:
        return str(self.config.model_type)

    @property
    def labels(self) -> list[str]:
        """Label names in logit order (id2label by index)."""
        id2label = {int(k): str(v) for k, v in (self.config.id2label or {}).items()}
        return [id2label.get(i, f"LABEL_{i}") for i in range(int(self.config.num_labels))]

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.config.image_size
        if isinstance(size, (list, tuple)):
            return int(size[0]), int(size[1])
        return int(size), int(size)

    def write_preprocessor_config(self, dest: Path) -> str:
        """Copy the model's preprocessor_config.json to ``dest`` or write a default one.

        Returns:
            ``"copied"`` or ``"default"`` (the model had none: its architecture's own image
            processor with that class's defaults, resized to the model's image_size when the
            default crop differs from it).
        """
        found = _find_file(self.location, PREPROCESSOR_NAME)
        if found is not None:
            shutil.copyfile(found, dest)
            return "copied"
        import transformers
        from vidsort.supported import BY_MODEL_TYPE

        processor = getattr(transformers, BY_MODEL_TYPE[self.model_type].processors[0])()
        height, width = self.image_size
        if (processor.crop_size["height"], processor.crop_size["width"]) != (height, width):
            processor.size = {"shortest_edge": min(height, width)}
            processor.crop_size = {"height": height, "width": width}
        processor.to_json_file(str(dest))
        return "default"


def _find_file(location: str, name: str) -> Path | None:
    """``name`` inside a local dir, or from the Hub cache/download for a Hub id (None if absent)."""
    local = Path(location)
    if local.is_dir():
        path = local / name
        return path if path.is_file() else None
    from transformers.utils import cached_file

    try:
        path = cached_file(location, name, _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None
    return Path(path) if path else None


def _looks_like_path(model: str) -> bool:
    """True when ``model`` cannot be a Hub id, so a missing path is the only explanation."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if model.startswith((".", "~", os.sep)) or (os.altsep and os.altsep in model):
        return True
    try:
        validate_repo_id(model)
    except HFValidationError:
        return True
    return False


def resolve_location(model: str | os.PathLike) -> str:
    """Map the MODEL argument to a local directory path or a Hub id.

    Args:
        model: embedded model name, directory written by ``save_pretrained``, or Hub id.

    Returns:
        A local directory (as a string) or the Hub id unchanged.
    """
    text = os.fspath(model)
    embedded = resolve_embedded(text)
    if embedded is not None:
        return str(embedded)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ExportError(f"{path}: not a directory (expected a model directory written by "
                              "save_pretrained, or a Hub model id)")
        return str(path)
    if _looks_like_path(text):
        raise ExportError(f"{text}: no such model directory")
    return text


def _read_config_dict(location: str) -> dict[str, Any]:
    """The raw config.json, read without transformers so every problem gets our message."""
    path = _find_file(location, CONFIG_NAME)
    if path is None:
        if Path(location).is_dir():
            raise ExportError(f"{Path(location) / CONFIG_NAME}: missing (not a model directory "
                              "written by save_pretrained)")
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
        why = ("HF_HUB_OFFLINE is set and it is not in the local cache" if offline
               else "not a local directory, and no Hub model with that id could be fetched")
        raise ExportError(f"{location}: {why}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def check_video_classifier(config: dict[str, Any], where: str) -> str:
    """Refuse configs that are not a supported video classifier; return the model_type.

    Args:
        config: the parsed config.json.
        where: path or id for the message.

    Returns:
        The model_type (one of `supported_model_types()`).
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES

    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    supported = ", ".join(supported_model_types())
    if not model_type:
        raise ExportError(f"{where}: config.json has no model_type (not a transformers model)")
    if model_type not in MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES:
        arch = f" ({', '.join(architectures)})" if architectures else ""
        raise ExportError(f"{where}: a {model_type!r} model{arch} is not a video classifier "
                          f"(supported: {supported})")
    if model_type not in supported_model_types():
        raise ExportError(f"{where}: unsupported architecture {model_type!r} "
                          f"(supported: {supported})")
    if architectures and not any(a.endswith("ForVideoClassification") for a in architectures):
        raise ExportError(f"{where}: a {', '.join(architectures)} checkpoint has no "
                          "classification head (fine-tune it into a *ForVideoClassification "
                          "model first)")
    return str(model_type)


def _check_local_weights(location: str) -> None:
    path = Path(location)
    if path.is_dir() and not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ExportError(f"{path}: no weights ({' or '.join(WEIGHT_FILES[::2])} missing)")


def _dtype_kwarg() -> dict[str, Any]:
    """float32 weights whatever the checkpoint stores; the kwarg was renamed in 4.56."""
    import torch
    import transformers
    from packaging.version import Version

    key = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    return {key: torch.float32}


def load_model(model: str | os.PathLike) -> LoadedModel:
    """Resolve, check and load a video classifier for export.

    Args:
        model: embedded model name, local ``save_pretrained`` directory, or Hub id (fetched
            through the normal ``from_pretrained`` cache; HF_HUB_OFFLINE is honoured).

    Returns:
        The loaded model (eval mode, float32). Raises `ExportError` for a missing path, a model
        that is not a supported video classifier, or missing/incomplete weights.
    """
    location = resolve_location(model)
    check_video_classifier(_read_config_dict(location), location)
    _check_local_weights(location)

    from transformers import AutoConfig, AutoModelForVideoClassification

    try:
        config = AutoConfig.from_pretrained(location)
        loaded, info = AutoModelForVideoClassification.from_pretrained(
            location, config=config, output_loading_info=True, **_dtype_kwarg()
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ExportError(f"{location}: cannot load the model ({first_line(exc)})") from None
    missing = list(info.get("missing_keys") or [])
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        shown = ", ".join(missing[:3]) + more
        raise ExportError(f"{location}: the weights lack {shown}; the export would hold random "
                          "values there")
    loaded.eval()
    return LoadedModel(source=os.fspath(model), location=location, model=loaded, config=config)
