"""Pillow-exact image resampling along one axis, in NumPy.

transformers' image processors resize through Pillow (``PIL.Image.resize``) on uint8 images, so
matching them means matching Pillow's arithmetic, not "some bilinear resize":

- The convolution filters (box, bilinear, hamming, bicubic, lanczos) are stretched by the
  reduction factor when shrinking (antialiasing), sampled at pixel centres (+0.5), normalised per
  output pixel, then quantised to 22-bit fixed point.
- A 2-D resize is two passes, and the first pass's result is rounded (half up) and clipped to
  uint8 before the second. Pillow 13 runs the vertical pass first when the height loses more
  than twice as many pixels as the width, else the horizontal one (always, before Pillow 13).
- NEAREST takes another code path (an affine scale with accumulated float coordinates).

Why hand-written: the runtime may only depend on numpy, onnxruntime, decord2 and PyAV, and none
of them offers a resize that reproduces Pillow's antialiased, fixed-point, uint8-rounded result
(decord and PyAV/swscale resize with other kernels, and pulling in Pillow or OpenCV is not
allowed). The passes are computed as banded matrix products (BLAS), which is also what makes them
fast: see `AxisResampler`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# float32 values per chunk converted from uint8 (~8 MB): big enough for efficient products
# (fewer, taller matrix products), small enough to stay in cache between conversion and use
# (measured on 1080p input: 1 MB chunks +5 %, 16 MB chunks +6 % time)
_CHUNK_VALUES = 1 << 21
# float32 sums of k taps of values <= 255 are within ~k * 3e-5 of the exact fixed-point sum;
# final results closer than this (per tap) to a rounding boundary are recomputed exactly
_TIE_MARGIN_PER_TAP = 6e-5
# above this share of unsure values, a final pass runs in float64 instead (see `tie_prone`)
_TIE_PRONE_RATE = 0.01

#: Pillow's fixed-point precision for 8-bit images (32 bits - 8 bits of data - 2 of headroom)
PRECISION_BITS = 22
_ONE = float(1 << PRECISION_BITS)

NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING = 0, 1, 2, 3, 4, 5
RESAMPLE_NAMES = {NEAREST: "nearest", LANCZOS: "lanczos", BILINEAR: "bilinear",
                  BICUBIC: "bicubic", BOX: "box", HAMMING: "hamming"}


def _box(x: np.ndarray) -> np.ndarray:
    return ((x > -0.5) & (x <= 0.5)).astype(np.float64)


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _hamming(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    px = x * math.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        # Pillow writes the window constants as C floats (0.54f), so use their float32 values
        w = np.sin(px) / px * (float(np.float32(0.54)) + float(np.float32(0.46)) * np.cos(px))
    return np.where(x == 0.0, 1.0, np.where(x >= 1.0, 0.0, w))


def _bicubic(x: np.ndarray) -> np.ndarray:
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _lanczos(x: np.ndarray) -> np.ndarray:
    # np.sinc is the normalised sinc, sin(pi x) / (pi x), like Pillow's sinc_filter
    return np.where((x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


# filter id -> (function, support in input pixels at scale 1)
_FILTERS = {BOX: (_box, 0.5), BILINEAR: (_bilinear, 1.0), HAMMING: (_hamming, 1.0),
            BICUBIC: (_bicubic, 2.0), LANCZOS: (_lanczos, 3.0)}


def pil_coefficients(in_size: int, out_size: int, resample: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` for one axis.

    Args:
        in_size: input length along the axis.
        out_size: output length along the axis.
        resample: a convolution filter id (BOX, BILINEAR, HAMMING, BICUBIC, LANCZOS).

    Returns:
        ``(first, weights)``: ``first[j]`` is the first input index output ``j`` reads (int64,
        shape (out_size,)) and ``weights[j, k]`` the integer fixed-point weight (stored as float64,
        scale 2**22) of input ``first[j] + k``; unused taps are 0.
    """
    func, filter_support = _FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = filter_support * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    # C casts truncate toward zero; the +0.5 makes them round, as in Pillow
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    taps = np.arange(ksize)
    w = func((taps[None, :] + xmin[:, None] - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where(taps[None, :] < xmax[:, None], w, 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.divide(w, total, out=w.copy(), where=total != 0.0)
    # fixed point, rounding half away from zero like Pillow's (int)(0.5 + x) / (int)(-0.5 + x)
    fixed = np.where(w < 0, np.trunc(w * _ONE - 0.5), np.trunc(w * _ONE + 0.5))
    return xmin, fixed


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Input index Pillow's NEAREST resize picks for each output index (int64, (out_size,)).

    Pillow scales with an accumulated float coordinate, ``x = scale / 2 + k * scale`` summed step
    by step; ``np.add.accumulate`` sums in the same order, so the rounding matches.
    """
    scale = in_size / out_size
    steps = np.full(out_size, scale)
    steps[0] = scale * 0.5
    coords = np.add.accumulate(steps)
    return np.clip(coords.astype(np.int64), 0, in_size - 1)


@dataclass
class AxisResampler:
    """Resampling of one axis from ``in_size`` to ``out_size``, restricted to the outputs
    ``[start, stop)`` (the ones a centre crop keeps).

    The filter is banded (each output reads ``2 * support * scale`` neighbouring inputs), so a
    dense matrix product over the whole axis would waste tens of GFLOPs on zeros. Outputs are
    grouped in blocks of ``block`` consecutive pixels whose inputs form one contiguous span; each
    block is one small dense BLAS product.

    Attributes:
        lo, hi: the input range that the kept outputs read.
        identity: the axis is not resized (Pillow skips the pass; so do we).
        first: per kept output, its first input index relative to ``lo``.
        fixed: per kept output, its fixed-point weights (see `pil_coefficients`).
        clips: the filter has negative lobes, so results must be clipped to [0, 255].
        exact: per kept output, float32 computes its sum exactly (see `_round`).
    """

    in_size: int
    out_size: int
    resample: int
    start: int
    stop: int
    block: int = 8
    lo: int = field(init=False)
    hi: int = field(init=False)
    identity: bool = field(init=False)
    first: np.ndarray = field(init=False, repr=False)
    fixed: np.ndarray = field(init=False, repr=False)
    clips: bool = field(init=False)
    exact: np.ndarray = field(init=False, repr=False)
    _tie_prone: bool | None = field(init=False, repr=False, default=None)
    _blocks: list = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        n = self.stop - self.start
        self.identity = self.in_size == self.out_size
        self.clips = False
        if self.identity or self.resample == NEAREST:
            if self.identity:
                idx = np.arange(self.start, self.stop, dtype=np.int64)
            else:
                idx = nearest_indices(self.in_size, self.out_size)[self.start:self.stop]
            self.lo, self.hi = int(idx[0]), int(idx[-1]) + 1
            self.first = idx - self.lo
            self.fixed = np.full((n, 1), _ONE)
            self.exact = np.ones(n, bool)
            return
        first, fixed = pil_coefficients(self.in_size, self.out_size, self.resample)
        first, fixed = first[self.start:self.stop], fixed[self.start:self.stop]
        used = fixed != 0
        # drop trailing taps that are zero for every kept output (shorter gathers later)
        ntaps = int(np.nonzero(used.any(axis=0))[0].max()) + 1
        fixed = fixed[:, :ntaps]
        last = np.where(used[:, :ntaps], np.arange(ntaps)[None, :], 0).max(axis=1)
        self.lo = int(first.min())
        self.hi = int((first + last).max()) + 1
        self.first = first - self.lo
        self.fixed = fixed
        self.clips = bool((fixed < 0).any())
        # An output whose weights all have >= 7 trailing zero bits (2**-15 steps: halves,
        # quarters... as in 2x or 8/7 scaling) has float32 sums with < 24 significant bits:
        # exact, ties included, so it never needs the exact recomputation.
        ints = np.abs(fixed).astype(np.int64)
        low_bits = np.where(ints != 0, ints & -ints, 1 << 22)  # lowest set bit
        self.exact = low_bits.min(axis=1) >= (1 << 7)

    @property
    def span(self) -> int:
        """Number of input pixels the kept outputs read."""
        return self.hi - self.lo

    def matrix(self) -> np.ndarray:
        """Dense float64 weights (n_out, span), scaled to sum to 1 (fixed point / 2**22)."""
        n, k = self.fixed.shape
        dense = np.zeros((n, self.span + k))
        rows = np.repeat(np.arange(n), k)
        cols = (self.first[:, None] + np.arange(k)[None, :]).ravel()
        dense[rows, cols] = self.fixed.ravel() / _ONE
        return dense[:, :self.span]

    def blocks(self, transpose: bool, channels: int = 1, dtype=np.float32) -> list[tuple]:
        """Banded blocks ``(out0, out1, in0, in1, weights)`` covering the kept outputs.

        Args:
            transpose: give weights as (in, out) for ``data @ w`` (the resampled axis is data's
                last) instead of (out, in) for ``w @ data``.
            channels: the resampled axis interleaves this many channels (RGB: 3); the weights
                then act on each channel separately (``kron(w, I)``) and the bounds count
                values, not pixels.
            dtype: weights' dtype (float32, or float64 for exact sums).

        Returns:
            The blocks; cached per arguments.
        """
        key = (bool(transpose), channels, np.dtype(dtype).str)
        for cached_key, blocks in self._blocks:
            if cached_key == key:
                return blocks
        dense = self.matrix().astype(dtype)
        nonzero = dense != 0
        eye = np.eye(channels, dtype=dtype)
        blocks = []
        for o0 in range(0, dense.shape[0], self.block):
            o1 = min(o0 + self.block, dense.shape[0])
            cols = np.nonzero(nonzero[o0:o1].any(axis=0))[0]
            i0, i1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 1)
            w = dense[o0:o1, i0:i1]
            w = np.kron(w.T if transpose else w, eye) if channels > 1 else (w.T if transpose else w)
            c = channels
            blocks.append((o0 * c, o1 * c, i0 * c, i1 * c, np.ascontiguousarray(w)))
        self._blocks.append((key, blocks))
        return blocks

    @property
    def tie_prone(self) -> bool:
        """Many float32 sums of this axis land too close to a rounding tie to round them
        safely (weights near simple fractions, e.g. 5/6 and 1/6 when scaling by 8/7): its
        final pass is then cheaper in float64, which is exact, than with per-value fix-ups.
        Probed once on random pixel values."""
        if self._tie_prone is None:
            values = np.random.default_rng(0).integers(0, 256, (self.span, 64))
            sums = self.matrix().astype(np.float32) @ values.astype(np.float32)
            dist = np.abs((sums + 0.5) % 1.0 - 0.5)  # how far past a rounding boundary
            margin = _TIE_MARGIN_PER_TAP * (self.fixed.shape[1] + 2)
            unsure = (dist < margin) & ~self.exact[:, None]
            self._tie_prone = bool(unsure.mean() > _TIE_PRONE_RATE)
        return self._tie_prone


def resample_rows(src: np.ndarray, ax: AxisResampler, out: np.ndarray, final: bool,
                  scratch) -> None:
    """Resample axis 1 (rows) of ``src`` (T, h, w, 3) into ``out`` (T, n, w, 3), rounded.

    Args:
        src: uint8 input or float32 values from a previous pass (rows ``ax.lo:ax.hi``).
        ax: the rows' resampler.
        out: float32 C-contiguous result.
        final: this is the last pass: round exactly like Pillow (else within float32 error).
        scratch: ``scratch(name, shape, dtype=float32) -> array`` for reusable buffers.
    """
    if final and ax.tie_prone:
        _exact_pass(src, ax, out, 1, scratch)
        return
    t, h, w, _ = src.shape
    blocks = ax.blocks(transpose=False)
    flat_out = out.reshape(t, out.shape[1], 3 * w)
    flat = src.reshape(t, h, 3 * w)  # RGB interleaved along the row: the rows pass ignores it
    if src.dtype == np.float32:
        for o0, o1, i0, i1, wts in blocks:
            np.matmul(wts, flat[:, i0:i1], out=flat_out[:, o0:o1])
    else:
        # convert to float32 one band of columns (of one or more frames) at a time, so it is
        # still cached when used; small frames are batched to save calls
        width = max(1, min(3 * w, _CHUNK_VALUES // h))
        batch = max(1, min(t, _CHUNK_VALUES // (h * width)))
        buf = scratch("rows_chunk", (batch, h, width))
        for f0 in range(0, t, batch):
            k = min(batch, t - f0)
            for c0 in range(0, 3 * w, width):
                n = min(width, 3 * w - c0)
                np.copyto(buf[:k, :, :n], flat[f0:f0 + k, :, c0:c0 + n])
                for o0, o1, i0, i1, wts in blocks:
                    np.matmul(wts, buf[:k, i0:i1, :n], out=flat_out[f0:f0 + k, o0:o1, c0:c0 + n])
                if not final:
                    _round_half_up(flat_out[f0:f0 + k, :, c0:c0 + n], ax.clips)
        if not final:
            return
    _round(out, ax, 1, final, lambda idx, k: src[idx[0], k, idx[1], idx[2]], scratch)


def resample_cols(src: np.ndarray, ax: AxisResampler, out: np.ndarray, final: bool,
                  scratch) -> None:
    """Resample axis 2 (columns) of ``src`` (T, h, w, 3) into ``out`` (T, h, n, 3), rounded.

    RGB stays interleaved: the weights act on each channel (``kron(w, I3)``). That triples the
    FLOPs but de-interleaving the input first costs more than it saves (measured).

    Args: as `resample_rows`.
    """
    if final and ax.tie_prone:
        _exact_pass(src, ax, out, 2, scratch)
        return
    t, h, w, _ = src.shape
    n_out = out.shape[2]
    blocks = ax.blocks(transpose=True, channels=3)
    flat_out = out.reshape(t, h, 3 * n_out)
    if src.dtype == np.float32:
        flat = src.reshape(t * h, 3 * w)
        for o0, o1, i0, i1, wts in blocks:
            np.matmul(flat[:, i0:i1], wts, out=flat_out.reshape(t * h, -1)[:, o0:o1])
    else:
        # convert to float32 a band of rows (or of whole small frames) at a time, so it is
        # still cached when used
        rows = max(1, min(h, _CHUNK_VALUES // (3 * w)))
        batch = max(1, min(t, _CHUNK_VALUES // (h * 3 * w))) if rows == h else 1
        buf = scratch("cols_chunk", (batch * rows, 3 * w))
        for f0 in range(0, t, batch):
            k = min(batch, t - f0)
            for r0 in range(0, h, rows):
                n = min(rows, h - r0)
                chunk = buf[:k * n]
                # reshapes are views: rows of pixels are contiguous, and k > 1 only if n == h
                np.copyto(chunk.reshape(k, n, 3 * w), src[f0:f0 + k, r0:r0 + n].reshape(k, n, -1))
                dst = flat_out[f0:f0 + k, r0:r0 + n].reshape(k * n, -1)
                for o0, o1, i0, i1, wts in blocks:
                    np.matmul(chunk[:, i0:i1], wts, out=dst[:, o0:o1])
                if not final:
                    _round_half_up(dst, ax.clips)
        if not final:
            return
    _round(out, ax, 2, final, lambda idx, k: src[idx[0], idx[1], k, idx[2]], scratch)


def _exact_pass(src: np.ndarray, ax: AxisResampler, out: np.ndarray, axis: int,
                scratch) -> None:
    """A final pass in float64: the sums of integers times 22-bit fixed-point weights are exact
    there, so rounding them reproduces Pillow's integer arithmetic without any fix-up."""
    t, h, w, _ = src.shape
    values = scratch("exact_in", src.shape, np.float64)
    np.copyto(values, src)
    if axis == 1:
        flat = values.reshape(t, h, 3 * w)
        sums = scratch("exact_out", (t, out.shape[1], 3 * w), np.float64)
        for o0, o1, i0, i1, wts in ax.blocks(transpose=False, dtype=np.float64):
            np.matmul(wts, flat[:, i0:i1], out=sums[:, o0:o1])
    else:
        flat = values.reshape(t * h, 3 * w)
        sums = scratch("exact_out", (t * h, 3 * out.shape[2]), np.float64)
        for o0, o1, i0, i1, wts in ax.blocks(transpose=True, channels=3, dtype=np.float64):
            np.matmul(flat[:, i0:i1], wts, out=sums[:, o0:o1])
    sums += 0.5
    np.floor(sums, out=sums)
    if ax.clips:
        np.clip(sums, 0, 255, out=sums)
    np.copyto(out, sums.reshape(out.shape))


def _round_half_up(values: np.ndarray, clips: bool) -> None:
    """A first pass's rounding, in place: half up (as Pillow's ``(s + 2**21) >> 22``), clipped
    for filters with negative lobes. Run on each chunk while it is still cached: over a whole
    1080p clip this is two more trips through memory (~10 % of the preprocessing time)."""
    values += 0.5
    np.floor(values, out=values)
    if clips:
        np.clip(values, 0, 255, out=values)


def _round(values: np.ndarray, ax: AxisResampler, axis: int, final: bool, taps, scratch) -> None:
    """Round a pass's float32 sums in place to Pillow's uint8 results.

    Not final: round half up (float32 may misjudge a value within ~1e-4 of a tie, by one level;
    the next pass averages that away). Final: values too close to a rounding boundary to be sure
    are recomputed exactly from their input taps (``taps(other_idx, k)``, see `exact_round`).
    """
    flat = values.reshape(-1)
    if not final:
        _round_half_up(flat, ax.clips)
        return
    flat += 0.5
    ntaps = ax.fixed.shape[1]
    margin = _TIE_MARGIN_PER_TAP * (ntaps + 2)
    floor = scratch("round", (flat.size,))
    np.floor(flat, out=floor)
    np.subtract(flat, floor, out=flat)  # fractional part: near 0 or 1 means near a tie
    flat -= 0.5
    np.abs(flat, out=flat)
    unsure = np.flatnonzero(flat > 0.5 - margin)
    np.copyto(flat, floor)
    if ax.clips:
        np.clip(flat, 0, 255, out=flat)
    if unsure.size:
        where = np.unravel_index(unsure, values.shape)
        inexact = ~ax.exact[where[axis]]
        unsure = unsure[inexact]
        where = tuple(idx[inexact] for idx in where)
    if unsure.size:
        j = where[axis]
        others = tuple(idx[:, None] for a, idx in enumerate(where) if a != axis)
        k = ax.first[j][:, None] + np.arange(ntaps)[None, :]
        k = np.minimum(k, ax.span - 1)  # zero-weight taps may point past the input
        flat[unsure] = exact_round(ax.fixed[j], taps(others, k), ax.clips)


def exact_round(fixed_rows: np.ndarray, taps: np.ndarray, clip: bool) -> np.ndarray:
    """Pillow's integer rounding of ``sum(fixed * taps)``: ``(s + 2**21) >> 22``, clipped to uint8.

    Args:
        fixed_rows: (m, k) fixed-point weights, one row per output.
        taps: (m, k) input values (integers 0..255) under those weights.
        clip: clip to [0, 255] (filters with negative lobes).

    Returns:
        float32 (m,) exact results. float64 holds the integer sums exactly (< 2**53).
    """
    total = np.einsum("mk,mk->m", fixed_rows, taps.astype(np.float64))
    out = np.floor((total + _ONE / 2) / _ONE)
    if clip:
        np.clip(out, 0, 255, out=out)
    return out.astype(np.float32)
