"""``preprocessor_config.json``: the settings of VideoMAEImageProcessor that change the pixels,
validated the way transformers reads them (defaults included)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidsort.preprocess.resample import RESAMPLE_NAMES

CONFIG_NAME = "preprocessor_config.json"
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)  # transformers' defaults when the config omits them
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
_SHORTEST_EDGE_KEYS = ({"shortest_edge"}, {"shortest_edge", "longest_edge"})


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


def parse_config(config: dict) -> PreprocessConfig:
    """Validate a preprocessor config dict the way VideoMAEImageProcessor reads it.

    Args:
        config: the parsed ``preprocessor_config.json`` (unknown keys are ignored).

    Returns:
        The settings, with transformers' defaults for missing keys.

    Raises:
        ValueError: a setting is malformed or not supported.
    """
    if not isinstance(config, dict):
        raise ValueError(f"expected a JSON object, got {type(config).__name__}")
    size = config.get("size", {"shortest_edge": 224})
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
    factor = config.get("rescale_factor", 1 / 255)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
            or not math.isfinite(factor):
        raise ValueError(f"rescale_factor must be a number, got {factor!r}")
    mean = _channels(config.get("image_mean", IMAGENET_STANDARD_MEAN), "image_mean")
    std = _channels(config.get("image_std", IMAGENET_STANDARD_STD), "image_std")
    if flags["do_normalize"] and any(s == 0 for s in std):
        raise ValueError(f"image_std must not contain 0, got {list(std)}")
    return PreprocessConfig(
        do_resize=flags["do_resize"], shortest_edge=shortest, height=height, width=width,
        resample=_resample_id(config.get("resample", 2)),
        do_center_crop=flags["do_center_crop"], crop_height=crop_h, crop_width=crop_w,
        do_rescale=flags["do_rescale"], rescale_factor=float(factor),
        do_normalize=flags["do_normalize"], image_mean=mean, image_std=std,
    )
