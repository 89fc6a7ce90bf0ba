"""Contrast (Ct): blend towards an S-curve on luminance, ``p`` in [-1, 1] (negative flattens).

``l = clip(L, 0, 1)``; ``lc = 0.5 - 0.5 cos(pi l)``; ``ci = img / (l + 1e-6) * lc``;
``out = (1 - p) img + p ci``.

>>> import numpy as np
>>> grey = np.full((1, 1, 1, 3), 0.25, np.float32)
>>> Contrast().apply(grey, [[1.0]]).ravel().astype(float).round(4).tolist()  # 0.5 - 0.5 cos(pi / 4): darker
[0.1464, 0.1464, 0.1464]
>>> Contrast().apply(grey, [[-1.0]]).ravel().astype(float).round(4).tolist()  # negative: towards mid grey
[0.3536, 0.3536, 0.3536]
"""

from __future__ import annotations

import math

from ..backend import ops_for
from ..colour import luminance
from .base import Filter, ParamRange


class Contrast(Filter):
    short_name = "Ct"
    name = "Contrast"
    num_params = 1
    ranges = (ParamRange("amount", -1.0, 1.0, "blend", identity=0.0),)

    def params(self, raw):
        return ops_for(raw).tanh(raw)

    def params_from_action(self, action):
        return ops_for(action).clip(action, -1.0, 1.0)

    def pixel(self, r, g, b, p):
        ops = ops_for(r)
        lum = ops.clip(luminance(r, g, b), 0.0, 1.0)
        gain = (0.5 - 0.5 * ops.cos(math.pi * lum)) / (lum + 1e-6)
        amt = p[0]
        return tuple(c + amt * (c * gain - c) for c in (r, g, b))

    def to_dict(self, params):
        return {"amount": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Contrast {100 * self._one(params)[0]:+.0f}%"
