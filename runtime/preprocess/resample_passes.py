"""The two resize passes (rows, columns) over a clip, with Pillow's rounding.

A pass multiplies the pixels by an axis's banded weights (`resample.AxisResampler`) as
BLAS matrix products, converting uint8 input to float32 a cache-sized chunk at a time, and rounds
the sums to uint8 values: half up after a first pass (as Pillow's ``(s + 2**21) >> 22``, within
float32 error), exactly after the final one (values too close to a tie are recomputed from their
taps in float64).
"""

from __future__ import annotations

import numpy as np
from vidsort.preprocess.resample import PRECISION_BITS, TIE_MARGIN_PER_TAP, AxisResampler

# float32 values per chunk converted from uint8: big enough for efficient products, small enough
# to stay in cache between conversion and use. Measured on 1080p input, whole preprocessing
# time: rows pass (8 MB) 1 MB chunks +5 %, 16 MB +6 %; columns pass (4 MB) 3 MB +1 %,
# 8 MB +5 %, 12 MB +10 %.
_ROWS_CHUNK_VALUES = 1 << 21
_COLS_CHUNK_VALUES = 1 << 20
# convert whole rows when the columns pass reads at least this share of them
_WHOLE_ROWS_SHARE = 0.5
_ONE = float(1 << PRECISION_BITS)


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
        width = max(1, min(3 * w, _ROWS_CHUNK_VALUES // h))
        batch = max(1, min(t, _ROWS_CHUNK_VALUES // (h * width)))
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
                  scratch, col0: int = 0) -> None:
    """Resample axis 2 (columns) of ``src`` (T, h, w, 3) into ``out`` (T, h, n, 3), rounded.

    RGB stays interleaved: the weights act on each channel (``kron(w, I3)``). That triples the
    FLOPs but de-interleaving the input first costs more than it saves (measured: a planar
    float32 conversion takes 2.4x as long as a contiguous one, and the thinner products that
    follow are no faster on OpenBLAS).

    Args: as `resample_rows`, and
        col0: the column of src where the axis' input (``ax.span`` columns) starts; other
            columns are not used (uint8 input may be converted whole rows at a time: faster).
    """
    t, h, w, _ = src.shape
    if src.dtype == np.uint8 and not (final and ax.tie_prone):
        _cols_from_uint8(src, ax, out, final, scratch, col0)
        if not final:
            return
    src = src[:, :, col0:col0 + ax.span]
    if final and ax.tie_prone:
        _exact_pass(src, ax, out, 2, scratch)
        return
    if src.dtype == np.float32:
        flat = src.reshape(t * h, -1)
        flat_out = out.reshape(t * h, -1)
        for o0, o1, i0, i1, wts in ax.blocks(transpose=True, channels=3):
            np.matmul(flat[:, i0:i1], wts, out=flat_out[:, o0:o1])
    _round(out, ax, 2, final, lambda idx, k: src[idx[0], idx[1], k, idx[2]], scratch)


def _cols_from_uint8(src: np.ndarray, ax: AxisResampler, out: np.ndarray, final: bool,
                     scratch, col0: int) -> None:
    """The columns pass's products on uint8 input (see `resample_cols`): converts a band of
    rows (or of whole small frames) at a time to float32, so it is still cached when used, and
    resamples it with the axis' `WindowPlan`; rounds half up unless final."""
    t, h, w, _ = src.shape
    plan = ax.windows(channels=3)
    # Whole rows convert faster than a band of them when the band is most of the row (1080p
    # band: 57 %; measured 0.10 vs 0.23 ns per value: the hardware prefetcher follows
    # contiguous rows, not a strided band), so convert the whole row then.
    c0, c1 = (0, w) if ax.span >= _WHOLE_ROWS_SHARE * w else (col0, col0 + ax.span)
    front = max(0, plan.lead - 3 * (col0 - c0))  # zero columns before the converted values
    origin = front + 3 * (col0 - c0)
    width = max(front + 3 * (c1 - c0), origin + plan.reach)
    rows = max(1, min(h, _COLS_CHUNK_VALUES // width))
    batch = max(1, min(t, _COLS_CHUNK_VALUES // (h * width))) if rows == h else 1
    buf = scratch("cols_chunk", (batch * rows, width))
    values = buf[:, front:front + 3 * (c1 - c0)]
    buf[:, :front] = 0
    buf[:, front + 3 * (c1 - c0):] = 0
    flat_out = out.reshape(t, h, -1)
    for f0 in range(0, t, batch):
        k = min(batch, t - f0)
        for r0 in range(0, h, rows):
            n = min(rows, h - r0)
            # reshapes are views: rows of pixels are contiguous, and k > 1 only if n == h
            np.copyto(values[:k * n].reshape(k, n, -1),
                      src[f0:f0 + k, r0:r0 + n, c0:c1].reshape(k, n, -1))
            dst = flat_out[f0:f0 + k, r0:r0 + n].reshape(k * n, -1)
            plan.apply(buf, k * n, origin, dst)
            if not final:
                _round_half_up(dst, ax.clips)


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
    _round_half_up(sums, ax.clips)  # the sums are exact: this is Pillow's rounding
    np.copyto(out, sums.reshape(out.shape))


def _round_half_up(values: np.ndarray, clips: bool) -> None:
    """Round in place half up (as Pillow's ``(s + 2**21) >> 22``), clipped for filters with
    negative lobes: a first pass's rounding, and the float64 pass's. Run on each chunk while
    it is still cached: over a whole 1080p clip this is two more trips through memory (~10 % of
    the preprocessing time)."""
    # not np.rint (one pass, not two): float32 sums land on x.5 exactly about once in 1,000
    # values, and half up, like Pillow, then misses the exact result less often (measured)
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
    margin = TIE_MARGIN_PER_TAP * (ntaps + 2)
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
