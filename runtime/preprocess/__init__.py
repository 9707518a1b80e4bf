"""Preprocess: frames → model input, equal to the model's transformers image processor, in NumPy.

- `config` — ``preprocessor_config.json`` parsed and validated (`PreprocessConfig`).
- `processor` — `VideoPreprocessor`: resize, centre crop, rescale, normalise.
- `resample` / `resample_passes` — Pillow's antialiased resize reproduced as banded BLAS products.
"""

from vidsort.preprocess.config import CONFIG_NAME, PreprocessConfig, parse_config
from vidsort.preprocess.processor import VideoPreprocessor

__all__ = ["CONFIG_NAME", "PreprocessConfig", "VideoPreprocessor", "parse_config"]
