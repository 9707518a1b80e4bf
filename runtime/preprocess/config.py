"""``preprocessor_config.json``: the settings of the image processors the runtime reproduces
(VideoMAEImageProcessor, VivitImageProcessor) that change the pixels, validated the way
transformers reads them (each processor's own defaults included)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidsort.preprocess.resample import RESAMPLE_NAMES

CONFIG_NAME = "preprocessor_config.json"
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)  # transformers' defaults when the config omits them
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
_SHORTEST_EDGE_KEYS = ({"shortest_edge"}, {"shortest_edge", "longest_edge"})
#: the default processor of a config without ``image_processor_type`` (VideoMAE's, as before)
DEFAULT_PROCESSOR = "VideoMAEImageProcessor"
_VIDEOMAE_DEFAULTS = {"size": {"shortest_edge": 224}, "rescale_factor": 1 / 255}
#: image processor class -> what its ``__init__`` uses for keys the JSON leaves out, where that
#: differs between them (both default to bilinear, a 224 x 224 centre crop, mean = std = 0.5).
#: An ``offset`` entry means the processor has that setting: ViViT rescales to [-1, 1] with
#: ``x * rescale_factor - 1`` (transformers 4.57, ``VivitImageProcessor.rescale``).
PROCESSOR_DEFAULTS: dict[str, dict] = {
    "VideoMAEImageProcessor": _VIDEOMAE_DEFAULTS,
    "VideoMAEFeatureExtractor": _VIDEOMAE_DEFAULTS,  # the legacy name of the same processor
    "VivitImageProcessor": {"size": {"shortest_edge": 256}, "rescale_factor": 1 / 127.5,
                            "offset": True},
}


@dataclass(frozen=True)
class PreprocessConfig:
    """The settings of a ``preprocessor_config.json`` that change the pixels."""

    do_resize: bool = True
    shortest_edge: int | None = 224  # set, or height/width below
    height: int | None = None
    width: int | None = None
    resample: int = 2
    do_center_crop: bool = True
    crop_height: int = 224
    crop_width: int = 224
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_STANDARD_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STANDARD_STD
    offset: bool = False  # ViViT: subtract 1 after the rescale
    processor: str = DEFAULT_PROCESSOR  # the transformers class these settings belong to

    def affine(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel ``(scale, bias)`` with ``pixel * scale + bias`` = rescale (and offset),
        then normalise: the processor's two steps folded into one multiply-add."""
        scale = [self.rescale_factor if self.do_rescale else 1.0] * 3
        bias = [-1.0 if self.do_rescale and self.offset else 0.0] * 3
        if self.do_normalize:
            scale = [s / d for s, d in zip(scale, self.image_std, strict=True)]
            bias = [(b - m) / d for b, m, d in zip(bias, self.image_mean, self.image_std,
                                                    strict=True)]
        return tuple(scale), tuple(bias)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize step, with transformers' integer arithmetic."""
        if not self.do_resize:
            return height, width
        if self.shortest_edge is None:
            return int(self.height), int(self.width)
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)


def _channels(value, name: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),) * 3
    if isinstance(value, (list, tuple)) and len(value) == 3:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return tuple(float(v) for v in value)
    raise ValueError(f"{name} must be a number or a list of 3 numbers, got {value!r}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _resample_id(value) -> int:
    if isinstance(value, str):
        by_name = {name: key for key, name in RESAMPLE_NAMES.items()}
        if value.lower() in by_name:
            return by_name[value.lower()]
    elif isinstance(value, int) and not isinstance(value, bool) and value in RESAMPLE_NAMES:
        return value
    known = ", ".join(f"{k} ({v})" for k, v in RESAMPLE_NAMES.items())
    raise ValueError(f"resample {value!r} is not a Pillow filter; expected one of {known}")


def processor_type(config: dict, default: str = DEFAULT_PROCESSOR) -> str:
    """The image processor class a preprocessor config names (``image_processor_type``, or the
    legacy ``feature_extractor_type``), else ``default``."""
    named = config.get("image_processor_type") or config.get("feature_extractor_type")
    return str(named) if named is not None else default


def parse_config(config: dict, default_processor: str = DEFAULT_PROCESSOR) -> PreprocessConfig:
    """Validate a preprocessor config dict the way its transformers image processor reads it.

    Args:
        config: the parsed ``preprocessor_config.json`` (unknown keys are ignored).
        default_processor: the processor class when the config names none (the model's own:
            see `vidsort.supported`).

    Returns:
        The settings, with that processor's defaults for missing keys.

    Raises:
        ValueError: a setting is malformed or not supported, or the processor is not one of
            `PROCESSOR_DEFAULTS`.
    """
    if not isinstance(config, dict):
        raise ValueError(f"expected a JSON object, got {type(config).__name__}")
    processor = processor_type(config, default_processor)
    defaults = PROCESSOR_DEFAULTS.get(processor)
    if defaults is None:
        raise ValueError(f"image processor {processor!r} is not one the runtime reproduces "
                         f"(supported: {', '.join(PROCESSOR_DEFAULTS)})")
    size = config.get("size", defaults["size"])
    shortest = height = width = None
    if isinstance(size, int) and not isinstance(size, bool):
        shortest = _positive_int(size, "size")
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        height, width = (_positive_int(v, "size") for v in size)
    elif isinstance(size, dict) and set(size) in _SHORTEST_EDGE_KEYS:
        # VideoMAE resizes on shortest_edge alone; it never passes longest_edge as max_size
        shortest = _positive_int(size["shortest_edge"], "size.shortest_edge")
    elif isinstance(size, dict) and set(size) == {"height", "width"}:
        height = _positive_int(size["height"], "size.height")
        width = _positive_int(size["width"], "size.width")
    else:
        raise ValueError(
            f"size must be {{'shortest_edge': n}} or {{'height', 'width'}}, got {size!r}")
    crop = config.get("crop_size", {"height": 224, "width": 224})
    if isinstance(crop, int) and not isinstance(crop, bool):
        crop_h = crop_w = _positive_int(crop, "crop_size")
    elif isinstance(crop, (list, tuple)) and len(crop) == 2:
        crop_h, crop_w = (_positive_int(v, "crop_size") for v in crop)
    elif isinstance(crop, dict) and {"height", "width"} <= set(crop):
        crop_h = _positive_int(crop["height"], "crop_size.height")
        crop_w = _positive_int(crop["width"], "crop_size.width")
    else:
        raise ValueError(f"crop_size must be {{'height', 'width'}} or an integer, got {crop!r}")
    flags = {}
    for key in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
        value = config.get(key, True)
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        flags[key] = value
    factor = config.get("rescale_factor", defaults["rescale_factor"])
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
            or not math.isfinite(factor):
        raise ValueError(f"rescale_factor must be a number, got {factor!r}")
    # only processors with the setting read it (VideoMAEImageProcessor ignores an "offset" key)
    offset = config.get("offset", defaults["offset"]) if "offset" in defaults else False
    if not isinstance(offset, bool):
        raise ValueError(f"offset must be true or false, got {offset!r}")
    if offset and not flags["do_rescale"]:  # VivitImageProcessor refuses it the same way
        raise ValueError("offset needs do_rescale (the offset is part of the rescale step)")
    mean = _channels(config.get("image_mean", IMAGENET_STANDARD_MEAN), "image_mean")
    std = _channels(config.get("image_std", IMAGENET_STANDARD_STD), "image_std")
    if flags["do_normalize"] and any(s == 0 for s in std):
        raise ValueError(f"image_std must not contain 0, got {list(std)}")
    return PreprocessConfig(
        do_resize=flags["do_resize"], shortest_edge=shortest, height=height, width=width,
        resample=_resample_id(config.get("resample", 2)),
        do_center_crop=flags["do_center_crop"], crop_height=crop_h, crop_width=crop_w,
        do_rescale=flags["do_rescale"], rescale_factor=float(factor),
        do_normalize=flags["do_normalize"], image_mean=mean, image_std=std, offset=offset,
        processor=processor,
    )
