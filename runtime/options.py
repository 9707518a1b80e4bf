"""The choices and defaults users can set, one definition each.

The modules that act on them (`vidsort.decode`, `vidsort.sampling`, `vidsort.postprocess`,
`vidsort.session`, `vidsort.isolation`) and the CLI read them from here. Light on purpose:
``vidsort --help`` imports this and nothing heavy.
"""

from __future__ import annotations

from vidsort.manifest import VARIANT_FILES
from vidsort.providers import PROVIDER_CHOICES

__all__ = ["PROVIDER_CHOICES", "PRECISION_CHOICES", "BACKENDS", "DEFAULT_BACKEND", "STRATEGIES",
           "FUNCTIONS", "MAX_FILE_BYTES", "MAX_PIXELS", "MAX_DURATION_S", "DECODE_WORKERS",
           "DECODE_TIMEOUT_S", "DECODE_MEMORY_MB", "SEGMENT_BATCH_SIZE",
           "ENGINES"]

#: model variants (``auto``: int8 on CPU, fp16 on GPU, when exported)
PRECISION_CHOICES: tuple[str, ...] = ("auto", *VARIANT_FILES)

#: decoders; why the default is what it is: see `vidsort.decode.read`
BACKENDS: tuple[str, ...] = ("decord", "pyav")
DEFAULT_BACKEND = "pyav"

#: frame sampling strategies (`vidsort.sampling.sample_indices`)
STRATEGIES: tuple[str, ...] = ("centre", "start", "random", "uniform")

#: logits → scores (`vidsort.postprocess`)
FUNCTIONS: tuple[str, ...] = ("softmax", "sigmoid", "none")

# Decode limits (`vidsort.decode.DecodeLimits`)
MAX_FILE_BYTES = 4 * 1024**3
#: per frame; larger frames are downscaled at decode, up to 4x this (beyond: refused)
MAX_PIXELS = 3840 * 2160 * 2
MAX_DURATION_S = 6 * 3600.0

# Decode isolation (`vidsort.isolation.IsolationSettings`)
DECODE_WORKERS = 1
DECODE_TIMEOUT_S = 60.0
DECODE_MEMORY_MB = 3072

#: engines of archive jobs (``classify --out``, `vidsort.jobs`): this process, or Ray Data
ENGINES: tuple[str, ...] = ("local", "ray")

#: windows per inference call for long videos (`vidsort.segments`, ``classify --segments``)
SEGMENT_BATCH_SIZE = 4
