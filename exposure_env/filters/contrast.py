"""Contrast (Ct): blend towards an S-curve on luminance, ``p`` in [-1, 1] (negative flattens).

``l = clip(L, 0, 1)``; ``lc = 0.5 - 0.5 cos(pi l)``; ``ci = img / (l + 1e-6) * lc``;
``out = (1 - p) img + p ci``.
"""

from __future__ import annotations

import math

from ..colour import luminance
from .base import Filter, ParamRange, ops_of


class Contrast(Filter):
    short_name = "Ct"
    name = "Contrast"
    num_params = 1
    ranges = (ParamRange("amount", -1.0, 1.0, "blend", identity=0.0),)

    def params(self, raw):
        return ops_of(raw).tanh(raw)

    def params_from_action(self, action):
        return ops_of(action).clip(action, -1.0, 1.0)

    def pixel(self, r, g, b, p):
        ops = ops_of(r)
        lum = ops.clip(luminance(r, g, b), 0.0, 1.0)
        gain = (0.5 - 0.5 * ops.cos(math.pi * lum)) / (lum + 1e-6)
        amt = p[0]
        return tuple(c + amt * (c * gain - c) for c in (r, g, b))

    def to_dict(self, params):
        return {"amount": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Contrast {100 * self._one(params)[0]:+.0f}%"
