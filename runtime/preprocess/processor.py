"""Frames → model input, equal to transformers' ``VideoMAEImageProcessor`` (VideoMAE,
TimeSformer) or ``VivitImageProcessor`` (ViViT), in NumPy.

What the processors do per frame (transformers 4.57, for a uint8 RGB frame):

1. resize with Pillow (``size``: ``shortest_edge`` → ``int(s * long / short)`` for the long edge,
   or an explicit ``height``/``width``; ``resample`` filter), rounding to uint8;
2. centre crop to ``crop_size`` (zero padding where the image is smaller);
3. rescale (``x * rescale_factor``; ViViT's ``offset`` then subtracts 1) and normalise
   (``(x - mean) / std``); channels first.

`VideoPreprocessor` reproduces Pillow's arithmetic (see `resample`) but only computes the
pixels the crop keeps, reads only the input rows they need (and columns, unless they are most of
the row: whole rows convert faster), runs both resize passes as banded BLAS products
(`resample_passes`), and folds rescale + normalise into one multiply-add on the small
output.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vidsort.errors import ModelDirError
from vidsort.preprocess.config import (
    CONFIG_NAME,
    DEFAULT_PROCESSOR,
    PreprocessConfig,
    parse_config,
)
from vidsort.preprocess.resample import NEAREST, AxisResampler
from vidsort.preprocess.resample_passes import resample_cols, resample_rows

_PLAN_CACHE_SIZE = 8


@dataclass
class _Axis:
    """One axis of the plan: the resampler for the kept outputs and where they land."""

    resampler: AxisResampler
    out_size: int  # output length (crop size, or resized size without crop)
    offset: int  # where the kept pixels start in the output (> 0 when padding)


def _axis(in_size: int, resized: int, crop: int | None, resample: int, block: int) -> _Axis:
    if crop is None:
        start, stop, offset, out_size = 0, resized, 0, resized
    elif crop <= resized:
        start = (resized - crop) // 2
        stop, offset, out_size = start + crop, 0, crop
    else:  # the image is smaller than the crop: transformers pads it with zeros, centred
        start, stop, offset, out_size = 0, resized, math.ceil((crop - resized) / 2), crop
    return _Axis(AxisResampler(in_size, resized, resample, start, stop, block), out_size, offset)


class VideoPreprocessor:
    """NumPy equivalent of the model's image processor for one clip of uint8 RGB frames.

    ``VideoPreprocessor.from_pretrained(model_dir)(frames)`` equals
    ``VideoMAEImageProcessor.from_pretrained(model_dir)(list(frames),
    return_tensors="np")["pixel_values"]`` (``VivitImageProcessor`` for ViViT) to within about one
    uint8 level (Pillow's rounding is reproduced; only float32 summation order differs).
    """

    def __init__(self, config: PreprocessConfig, num_threads: int | None = None):
        """Args:
            config: the preprocessing settings (see `parse_config`).
            num_threads: worker threads; a clip's frames are split between them (default: the
                CPU count, at most 8). Results do not depend on it.
        """
        self.config = config
        self.num_threads = max(1, num_threads or min(8, os.cpu_count() or 1))
        self._plans: OrderedDict[tuple[int, int], tuple[_Axis, _Axis]] = OrderedDict()
        self._pid = -1
        self._reset_threads()
        scale, bias = config.affine()
        self._scale = np.asarray(scale, np.float32)
        self._bias = np.asarray(bias, np.float32)

    @classmethod
    def from_dict(cls, config: dict, num_threads: int | None = None,
                  source: str | os.PathLike | None = None,
                  default_processor: str = DEFAULT_PROCESSOR) -> VideoPreprocessor:
        """Build from a preprocessor config dict.

        Args:
            config: the parsed ``preprocessor_config.json``.
            num_threads: see `__init__`.
            source: the file the dict came from, for error messages.
            default_processor: the processor class when ``config`` names none.

        Returns:
            The preprocessor.

        Raises:
            ModelDirError: the config is malformed or asks for something unsupported.
        """
        try:
            return cls(parse_config(config, default_processor), num_threads=num_threads)
        except ValueError as exc:
            where = os.fspath(source) if source is not None else "preprocessor config"
            raise ModelDirError(f"{where}: {exc}") from None

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike,
                        num_threads: int | None = None) -> VideoPreprocessor:
        """Build from ``model_dir/preprocessor_config.json``.

        A config that names no processor class gets the model's own (``config.json``'s
        ``model_type`` looked up in `vidsort.supported`; VideoMAE's without one).

        Args:
            model_dir: a model directory (exported by vidsort or by transformers).
            num_threads: see `__init__`.

        Returns:
            The preprocessor.

        Raises:
            ModelDirError: the file is missing, unreadable, not JSON, or invalid (named).
        """
        path = Path(model_dir) / CONFIG_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelDirError(f"{path}: missing (every model dir needs {CONFIG_NAME})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelDirError(f"{path}: cannot be read ({exc})") from None
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelDirError(f"{path}: not valid JSON ({exc})") from None
        from vidsort.supported import default_processor  # here: vidsort.supported imports us

        return cls.from_dict(config, num_threads=num_threads, source=path,
                             default_processor=default_processor(model_dir))

    @property
    def crop_size(self) -> tuple[int, int] | None:
        """(height, width) of the output frames; None if it depends on the input (no crop and a
        shortest-edge resize: then see `output_size`)."""
        cfg = self.config
        if cfg.do_center_crop:
            return cfg.crop_height, cfg.crop_width
        if cfg.do_resize and cfg.shortest_edge is None:
            return cfg.height, cfg.width
        return None

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the output for input frames of this size."""
        rows, cols = self._plan(height, width)
        return rows.out_size, cols.out_size

    def _plan(self, height: int, width: int) -> tuple[_Axis, _Axis]:
        # videos have one frame size, so weights are built once per size and reused
        key = (height, width)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        cfg = self.config
        res_h, res_w = cfg.resized_size(height, width)
        crop_h = cfg.crop_height if cfg.do_center_crop else None
        crop_w = cfg.crop_width if cfg.do_center_crop else None
        # outputs per banded block: the fastest for each pass's matrix shapes, measured on 1080p
        plan = (_axis(height, res_h, crop_h, cfg.resample, block=8),
                _axis(width, res_w, crop_w, cfg.resample, block=4))
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return plan

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, 3) RGB -> float32 (1, T, 3, crop_h, crop_w).

        Args:
            frames: the clip's frames, RGB, uint8, any strides.

        Returns:
            The model input ``pixel_values`` (C-contiguous).

        Raises:
            ValueError: not a uint8 array of shape (T, H, W, 3) with T, H, W >= 1.
        """
        frames = _check_frames(frames)
        if self._pid != os.getpid():
            self._reset_threads()
        rows, cols = self._plan(frames.shape[1], frames.shape[2])
        t = frames.shape[0]
        out = np.empty((1, t, 3, rows.out_size, cols.out_size), np.float32)
        if rows.out_size != rows.resampler.stop - rows.resampler.start or \
                cols.out_size != cols.resampler.stop - cols.resampler.start:
            # transformers pads with 0 before rescale/normalise: 0 maps to the bias
            out[...] = self._bias[:, None, None]
        # frames are independent: split the clip into one group of frames per thread
        groups = min(t, self.num_threads)
        bounds = [t * g // groups for g in range(groups + 1)]
        self._map(lambda g: self._run(frames[bounds[g]:bounds[g + 1]],
                                      out[0, bounds[g]:bounds[g + 1]], rows, cols), range(groups))
        return out

    def _run(self, frames: np.ndarray, out: np.ndarray, rows: _Axis, cols: _Axis) -> None:
        """The whole pipeline for some frames, writing their slice of the output."""
        rr, cr = rows.resampler, cols.resampler
        band_rows = frames[:, rr.lo:rr.hi]  # only the input the kept pixels read
        band = band_rows[:, :, cr.lo:cr.hi]
        t = band.shape[0]
        n_rows, n_cols = rr.stop - rr.start, cr.stop - cr.start
        final = self._buffer("final", (t, n_rows, n_cols, 3))
        if _selects(rr) and _selects(cr):
            # identity / nearest on both axes: the output pixels are input pixels
            pixels = band[:, rr.first][:, :, cr.first]
        elif _selects(cr):
            pixels = final
            picked = band if cr.identity else band[:, :, cr.first]
            resample_rows(picked, rr, final, True, self._buffer)
        elif _selects(rr):
            pixels = final
            if rr.identity:  # whole rows: the columns pass converts them faster than a band
                resample_cols(band_rows, cr, final, True, self._buffer, col0=cr.lo)
            else:
                resample_cols(band[:, rr.first], cr, final, True, self._buffer)
        elif self._vertical_first(frames.shape[1:3]):
            pixels = final
            inter = self._buffer("inter", (t, n_rows, band.shape[2], 3))
            resample_rows(band, rr, inter, False, self._buffer)
            resample_cols(inter, cr, final, True, self._buffer)
        else:
            pixels = final
            inter = self._buffer("inter", (t, band.shape[1], n_cols, 3))
            resample_cols(band_rows, cr, inter, False, self._buffer, col0=cr.lo)
            resample_rows(inter, rr, final, True, self._buffer)
        target = out[:, :, rows.offset:rows.offset + n_rows, cols.offset:cols.offset + n_cols]
        np.multiply(pixels.transpose(0, 3, 1, 2), self._scale[:, None, None], out=target)
        target += self._bias[:, None, None]

    def _vertical_first(self, size: tuple[int, int]) -> bool:
        """Pillow (>= 13) resizes rows first when the height shrinks by more than twice as
        many pixels as the width; the pass order changes the uint8 rounding in between."""
        height, width = size
        res_h, res_w = self.config.resized_size(height, width)
        return height - res_h > 0 and height - res_h > 2 * (width - res_w)

    def _buffer(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """A scratch array, kept per thread: reusing it avoids page-faulting tens of MB of fresh
        memory on every call."""
        size = math.prod(shape)
        key = f"{name}_{np.dtype(dtype).str}"
        buf = getattr(self._local, key, None)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype)
            setattr(self._local, key, buf)
        return buf[:size].reshape(shape)

    def _reset_threads(self) -> None:
        # also run in a forked child: the parent's worker threads and locks do not exist there
        # (pipelines cache preprocessors and then fork decode workers)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None

    def _map(self, fn, items) -> None:
        items = list(items)
        if len(items) == 1:
            fn(items[0])
            return
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.num_threads, "vidsort-preprocess")
        for _ in self._pool.map(fn, items):
            pass

    def close(self) -> None:
        """Stop the worker threads (they are also stopped at interpreter exit)."""
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=True)
        self._pool = None

    def __repr__(self) -> str:
        return f"VideoPreprocessor({self.config})"


def _check_frames(frames) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB (0-255), got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3) (RGB), got {frames.shape}")
    if min(frames.shape[:3]) < 1:
        raise ValueError(f"frames must hold at least one 1x1 frame, got shape {frames.shape}")
    return frames


def _selects(axis: AxisResampler) -> bool:
    """The axis only picks input pixels (no resize, or nearest)."""
    return axis.identity or axis.resample == NEAREST
