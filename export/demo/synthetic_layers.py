"""Drawing layers of the motion renderer (`vidsort.export.demo.synthetic`): shapes and backgrounds.

A shape is its radius per direction (a "profile", star-shaped around its origin), drawn with
soft radial edges and 2x2 supersampling; backgrounds are solid, gradient, textured or noisy.
NumPy only.
"""

from __future__ import annotations

import numpy as np

_K = 720  # samples of a shape's radial profile over one turn
_SS = 2  # supersampling per axis: antialiased edges, also along a notch's straight sides


def colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour, float32 (3,) in 0..255."""
    return rng.uniform(0, 255, 3).astype(np.float32)


def _polygon_profile(points: np.ndarray) -> np.ndarray:
    """Radius along each of `_K` directions of a polygon star-shaped around the origin."""
    ang = np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * np.pi)
    order = np.argsort(ang)
    ang, pts = ang[order], points[order]
    phi = np.arange(_K) * (2 * np.pi / _K)
    i = (np.searchsorted(ang, phi, side="right") - 1) % len(pts)
    p, q = pts[i], pts[(i + 1) % len(pts)]
    ex, ey = q[:, 0] - p[:, 0], q[:, 1] - p[:, 1]
    ux, uy = np.cos(phi), np.sin(phi)
    den = ux * ey - uy * ex
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    return np.clip((p[:, 0] * ey - p[:, 1] * ex) / den, 0.0, 2.0)


def profile(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A shape as its radius per direction; irregular or notched so a turn is always visible.

    Repeating features (star arms, lobes, notches) stay at least ~70 degrees apart: a model
    sees every 4th frame, up to 32 degrees of turn, and features closer than twice that would
    alias, so the shape would seem to turn backwards. Polygon vertices can come closer (36
    degrees with 5 vertices) but each has its own radius, so no vertex looks like its neighbour.
    """
    phi = np.arange(_K) * (2 * np.pi / _K)
    if kind == "polygon":
        n = int(rng.integers(3, 6))
        a = np.sort(rng.uniform(0, 2 * np.pi / n, n) * 0.5 + np.arange(n) * 2 * np.pi / n)
        r = rng.uniform(0.55, 1.0, n)
        r[int(rng.integers(n))] = 1.0
        prof = _polygon_profile(np.stack([r * np.cos(a), r * np.sin(a)], 1))
    elif kind == "star":
        n = int(rng.integers(3, 6))
        a = np.arange(2 * n) * np.pi / n
        r = np.where(np.arange(2 * n) % 2 == 0, 0.8, rng.uniform(0.35, 0.55))
        r[0] = 1.0  # one longer arm breaks the n-fold symmetry
        prof = _polygon_profile(np.stack([r * np.cos(a), r * np.sin(a)], 1))
    elif kind == "arrow":
        w, h, base = rng.uniform(0.12, 0.22), rng.uniform(0.35, 0.5), rng.uniform(0.1, 0.35)
        pts = np.array([(1, 0), (base, h), (base, w), (-1, w), (-1, -w), (base, -w), (base, -h)])
        pts[:, 0] -= base - 0.05  # origin just inside the head: the arrow is star-shaped there
        prof = _polygon_profile(pts.astype(np.float64))
    elif kind == "blob":
        prof = np.ones(_K)
        for k in range(1, 4):
            prof += rng.uniform(0.05, 0.25) / k * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
        prof = np.maximum(prof, 0.3)
    else:  # disks and ellipses with one or two notches, or a pac-man wedge
        aspect = rng.uniform(0.55, 0.85) if kind == "notched_ellipse" else 1.0
        prof = aspect / np.sqrt((aspect * np.cos(phi)) ** 2 + np.sin(phi) ** 2)
        notches = 1 if kind == "pacman" else int(rng.integers(1, 3))
        centre = rng.uniform(0, 2 * np.pi)
        for j in range(notches):
            centre += j * np.radians(rng.uniform(100, 260))
            half = np.radians(rng.uniform(15, 35) / (j + 1))
            depth = 1.0 if kind == "pacman" else rng.uniform(0.3, 0.6)
            inside = np.abs(np.angle(np.exp(1j * (phi - centre)))) < half
            prof = np.where(inside, prof * (1 - depth), prof)
    return (prof / prof.max()).astype(np.float32)


def background_plan(kind: str, rng: np.random.Generator) -> dict:
    """Random settings of a background of ``kind`` (one of `BACKGROUNDS`), as a plain dict."""
    plan = {"kind": kind, "seed": int(rng.integers(2**31)), "colours": [colour(rng).tolist(),
                                                                        colour(rng).tolist()]}
    if kind == "noisy":
        plan["full_range"] = bool(rng.random() < 0.15)  # iid uniform 0..255 per pixel
        plan["sigma"] = float(rng.uniform(8, 60))
        plan["dynamic"] = bool(rng.random() < 0.5)  # fresh noise every frame, or frozen
        plan["grain"] = int(rng.choice([1, 1, 2]))
        plan["gradient"] = bool(rng.random() < 0.4)
    elif kind == "textured":
        plan["texture"] = str(rng.choice(["value_noise", "stripes", "checker"]))
        plan["period"] = float(rng.uniform(8, 60))
        plan["angle"] = float(rng.uniform(0, np.pi))
    plan["direction"] = float(rng.uniform(0, 2 * np.pi))
    return plan


def _interp_matrix(n: int, period: float, cells: int) -> np.ndarray:
    """(n, cells) weights of linear interpolation: a coarse grid upsampled by ``period`` pixels."""
    g = np.arange(n, dtype=np.float32) / period
    i0 = g.astype(int)
    m = np.zeros((n, cells), np.float32)
    m[np.arange(n), i0] = 1 - (g - i0)
    m[np.arange(n), i0 + 1] = g - i0
    return m


def background_base(plan: dict, width: int, height: int) -> np.ndarray:
    """The static part of a background, float32 (H, W, 3)."""
    c1, c2 = (np.asarray(c, np.float32) for c in plan["colours"])
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    kind = plan["kind"]
    if kind == "gradient" or (kind == "noisy" and plan["gradient"]):
        d = np.cos(plan["direction"]) * x + np.sin(plan["direction"]) * y
        t = (d - d.min()) / max(1e-6, float(d.max() - d.min()))
    elif kind == "textured":
        p, a = plan["period"], plan["angle"]
        u, v = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
        if plan["texture"] == "stripes":
            t = 0.5 + 0.5 * np.sin(2 * np.pi * u / p)
        elif plan["texture"] == "checker":
            t = ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float32)
        else:  # smooth value noise: a coarse random grid, bilinearly upsampled (separable)
            gh, gw = int(height / p) + 2, int(width / p) + 2
            grid = np.random.default_rng(plan["seed"]).random((gh, gw), dtype=np.float32)
            t = _interp_matrix(height, p, gh) @ grid @ _interp_matrix(width, p, gw).T
    else:
        return np.broadcast_to(c1, (height, width, 3)).astype(np.float32)
    return c1 + (c2 - c1) * t[..., None]


_PAD = 24  # dynamic noise: one field, shifted by a fresh random offset every frame


def noise_field(plan: dict, width: int, height: int) -> np.ndarray:
    """The noise of a noisy background, float32, a little larger than the frame."""
    rng = np.random.default_rng(plan["seed"])
    g = plan["grain"]
    shape = (-(-(height + _PAD) // g), -(-(width + _PAD) // g), 3)
    if plan["full_range"]:
        n = rng.uniform(-255, 255, shape).astype(np.float32)
    else:
        n = rng.standard_normal(shape, dtype=np.float32) * plan["sigma"]
    if g > 1:
        n = n.repeat(g, 0).repeat(g, 1)
    return n


def noise_at(plan: dict, field: np.ndarray, t: int, width: int, height: int) -> np.ndarray:
    """Frame ``t``'s noise: the field shifted by an offset drawn from the plan's seed and t."""
    oy, ox = np.random.default_rng([plan["seed"], t]).integers(0, _PAD + 1, 2)
    return field[oy:oy + height, ox:ox + width]


def shape_layer(params: dict, t: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Coverage (h, w, 1) and premultiplied colour (h, w, 3) of the shape in its bounding box."""
    cx, cy = (float(v) for v in params["centres"][t])
    r = float(params["radii"][t])
    a = np.radians(float(params["angles"][t]))
    W, H = params["width"], params["height"]
    x0, x1 = max(0, int(cx - r) - 2), min(W, int(cx + r) + 3)
    y0, y1 = max(0, int(cy - r) - 2), min(H, int(cy + r) + 3)
    if x1 <= x0 or y1 <= y0:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0, 1)), np.zeros((0, 0, 3))
    # Supersample small shapes; big ones are smooth enough with the soft radial edge alone.
    ss = _SS if r < 48 else 1
    sub = ((np.arange(ss) + 0.5) / ss).astype(np.float32)
    dx = ((np.arange(x0, x1, dtype=np.float32)[:, None] + sub).ravel() - cx)[None, :]
    dy = ((np.arange(y0, y1, dtype=np.float32)[:, None] + sub).ravel() - cy)[:, None]
    d = np.hypot(dx, dy)
    # direction in the shape's own frame, as a fractional index into its profile table
    k = np.mod(np.arctan2(dy, dx) - np.float32(a), np.float32(2 * np.pi)) * np.float32(
        _K / (2 * np.pi))
    k0 = k.astype(np.int32)
    f = k - k0
    prof = params["shape"]["profile"]
    k0 %= _K
    edge = prof[k0] * (1 - f) + prof[(k0 + 1) % _K] * f
    cov = np.clip((edge * np.float32(r) - d) * ss + 0.5, 0.0, 1.0)
    fill = params["shape"]["fill"]
    c1, c2 = np.asarray(fill["colour"], np.float32), np.asarray(fill["colour2"], np.float32)
    kind = fill["kind"]
    ca, sa = np.float32(np.cos(a) / r), np.float32(np.sin(a) / r)
    if kind == "two_tone":
        m = ((ca * dy - sa * dx) > fill["offset"]).astype(np.float32)
    elif kind == "stripes":
        m = (np.sin((dx * ca + dy * sa) * np.float32(fill["freq"] * np.pi)) > 0).astype(
            np.float32)
    elif kind == "gradient":
        m = np.clip((dx * ca + dy * sa + 1) / 2, 0, 1)
    elif kind == "dot":
        m = (np.hypot(dx * ca + dy * sa - fill["dot"][0], ca * dy - sa * dx - fill["dot"][1])
             < 0.22).astype(np.float32)
    else:
        m = None
    colour = c1 * cov[..., None] if m is None else (c1 + (c2 - c1) * m[..., None]) * cov[
        ..., None]
    if ss > 1:
        cov, colour = _downsample(cov, ss), _downsample(colour, ss)
    return (slice(y0, y1), slice(x0, x1)), cov[..., None], colour


def _downsample(a: np.ndarray, ss: int) -> np.ndarray:
    out = a[0::ss, 0::ss].copy()
    for i in range(ss):
        for j in range(ss):
            if i or j:
                out += a[i::ss, j::ss]
    return out / np.float32(ss * ss)
