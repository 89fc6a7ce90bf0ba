"""Colour math on channel planes: luminance and HSV, for any backend.

All functions take and return separate ``r, g, b`` planes (same shape, any backend
understood by :func:`exposure_env.backend.ops_for`). Values are linear RGB; HSV uses
``h`` in [0, 1) (fraction of a turn), ``s`` and ``v`` in [0, 1] for inputs in [0, 1].
"""

from __future__ import annotations

from .backend import ops_for

#: Luminance weights of SPEC §1 (``L = 0.27 R + 0.67 G + 0.06 B``).
LUM_WEIGHTS = (0.27, 0.67, 0.06)


def luminance(r, g, b):
    """Luminance of linear RGB planes, ``0.27 R + 0.67 G + 0.06 B`` (same units as input)."""
    return LUM_WEIGHTS[0] * r + LUM_WEIGHTS[1] * g + LUM_WEIGHTS[2] * b


def _safe_div(ops, num, den):
    """``num / den`` where ``den > 0``, else 0; gradient-safe (no 0/0 in either branch)."""
    pos = den > 0
    return ops.where(pos, num / ops.where(pos, den, 1.0), 0.0)


def rgb_to_hsv(r, g, b):
    """RGB planes in [0, 1] -> (h, s, v) planes; ``h`` in [0, 1), grey pixels get ``h = s = 0``."""
    ops = ops_for(r)
    v = ops.maximum(ops.maximum(r, g), b)
    mn = ops.minimum(ops.minimum(r, g), b)
    d = v - mn
    s = _safe_div(ops, d, v)
    hr = _safe_div(ops, g - b, d)
    hg = _safe_div(ops, b - r, d) + 2.0
    hb = _safe_div(ops, r - g, d) + 4.0
    h = ops.where(r >= v, hr, ops.where(g >= v, hg, hb))
    h = h / 6.0
    h = h - ops.floor(h)  # wrap negative hues (r is max, g < b) into [0, 1)
    h = ops.where(d > 0, h, 0.0)
    return h, s, v


def hsv_to_rgb(h, s, v):
    """(h, s, v) planes -> RGB planes; ``c_n = v - v s clip(min(k, 4 - k), 0, 1)``,
    ``k = (n + 6h) mod 6`` with ``n = 5, 3, 1`` for R, G, B."""
    ops = ops_for(h)
    out = []
    for n in (5.0, 3.0, 1.0):
        k = n + 6.0 * h
        k = k - 6.0 * ops.floor(k / 6.0)
        w = ops.clip(ops.minimum(k, 4.0 - k), 0.0, 1.0)
        out.append(v - v * s * w)
    return out[0], out[1], out[2]
