"""Tone curve (T) and colour curves (C): monotone piecewise-linear curves of 8 equal segments.

The slopes ``t_i`` of segment ``i`` are the parameters; the curve is normalised so 1 maps to 1:
``out = (8 / sum t) * sum_i t_i * clip(img - i/8, 0, 1/8)``. Inputs below 0 map to 0 and
above 1 to 1. T uses one curve for R, G, B (slopes in [0.5, 2]); C one curve per channel
(slopes in [0.9, 1.1], 3 x 8 parameters laid out R0..R7, G0..G7, B0..B7). Equal slopes are
the identity (the action 0 gives slopes 1.25 for T, 1.0 for C).

>>> import numpy as np
>>> steep_shadows = [2.0, 1, 1, 1, 1, 1, 1, 1]  # sum 9: out = 8/9 * ...
>>> curve(np.array([0.0, 0.0625, 0.5, 1.0, 1.5]), steep_shadows).round(4).tolist()
[0.0, 0.1111, 0.5556, 1.0, 1.0]
>>> x = np.full((1, 1, 1, 3), 0.0625, np.float32)
>>> ToneCurve().apply(x, [steep_shadows]).ravel().astype(float).round(4).tolist()
[0.1111, 0.1111, 0.1111]
>>> ColorCurves().apply(x, [[1.1] + [1.0] * 23]).ravel().astype(float).round(4).tolist()  # only red's curve bends
[0.0679, 0.0625, 0.0625]
"""

from __future__ import annotations

import numpy as np

from ..backend import ops_for
from .base import Filter, ParamRange, tanh_range, unit_range

SEGMENTS = 8


def curve(x, slopes):
    """Evaluate the normalised curve with ``SEGMENTS`` slopes (broadcastable arrays) at ``x``."""
    ops = ops_for(x)
    total = 0.0
    acc = 0.0
    for i, t in enumerate(slopes):
        acc = acc + t * ops.clip(x - i / SEGMENTS, 0.0, 1.0 / SEGMENTS)
        total = total + t
    return acc * (SEGMENTS / (total + 1e-30))


def curve_points(slopes) -> list[list[float]]:
    """The curve's knots ``[[x, y], ...]`` at ``x = 0, 1/8, ..., 1`` for one curve (numpy)."""
    t = np.asarray(slopes, dtype=np.float64)
    y = np.concatenate([[0.0], np.cumsum(t)]) / t.sum()
    return [[round(i / SEGMENTS, 4), round(float(v), 4)] for i, v in enumerate(y)]


def _fmt(points) -> str:
    return " ".join(f"{y:.2f}" for _, y in points[1:-1])


class ToneCurve(Filter):
    short_name = "T"
    name = "Tone curve"
    num_params = SEGMENTS
    per_channel = True
    ranges = tuple(ParamRange(f"slope_{i}", 0.5, 2.0, "", identity=1.25) for i in range(SEGMENTS))

    def params(self, raw):
        return tanh_range(ops_for(raw), raw, 0.5, 2.0)

    def params_from_action(self, action):
        return unit_range(ops_for(action), action, 0.5, 2.0)

    def pixel(self, r, g, b, p):
        return tuple(curve(c, p) for c in (r, g, b))

    def to_dict(self, params):
        return {"curve": curve_points(self._one(params))}

    def describe(self, params):
        return f"Tone curve [{_fmt(curve_points(self._one(params)))}]"


class ColorCurves(Filter):
    short_name = "C"
    name = "Colour curves"
    num_params = 3 * SEGMENTS
    per_channel = True
    ranges = tuple(ParamRange(f"{c}_slope_{i}", 0.9, 1.1, "", identity=1.0) for c in "rgb" for i in range(SEGMENTS))

    def params(self, raw):
        return tanh_range(ops_for(raw), raw, 0.9, 1.1, 1.0)

    def params_from_action(self, action):
        return unit_range(ops_for(action), action, 0.9, 1.1)

    def pixel(self, r, g, b, p):
        s = SEGMENTS
        return curve(r, p[0:s]), curve(g, p[s : 2 * s]), curve(b, p[2 * s : 3 * s])

    def to_dict(self, params):
        p = self._one(params)
        return {c: curve_points(p[i * SEGMENTS : (i + 1) * SEGMENTS]) for i, c in enumerate("rgb")}

    def describe(self, params):
        d = self.to_dict(params)
        return "Colour curves " + " ".join(f"{c.upper()}[{_fmt(d[c])}]" for c in "rgb")
