"""Exposure (E): ``out = img * 2**e``, ``e`` in [-3.5, 3.5] stops (EV). Per channel, linear RGB.

>>> import numpy as np
>>> E = Exposure()
>>> E.apply(np.full((1, 1, 1, 3), 0.25, np.float32), [[1.0]]).ravel().tolist()  # +1 EV doubles
[0.5, 0.5, 0.5]
>>> E.params_from_action(np.array([[0.0], [0.5], [1.0]])).ravel().tolist()  # actions -> EV
[0.0, 1.75, 3.5]
>>> E.describe([1.75])
'Exposure +1.75 EV'
"""

from __future__ import annotations

import math

from ..backend import ops_for
from .base import Filter, ParamRange, tanh_range, unit_range

MAX_EV = 3.5


class Exposure(Filter):
    short_name = "E"
    name = "Exposure"
    num_params = 1
    per_channel = True
    ranges = (ParamRange("ev", -MAX_EV, MAX_EV, "EV", identity=0.0),)

    def params(self, raw):
        return tanh_range(ops_for(raw), raw, -MAX_EV, MAX_EV, 0.0)

    def params_from_action(self, action):
        return unit_range(ops_for(action), action, -MAX_EV, MAX_EV)

    def pixel(self, r, g, b, p):
        ops = ops_for(r)
        scale = ops.exp(p[0] * math.log(2.0))
        return r * scale, g * scale, b * scale

    def to_dict(self, params):
        return {"ev": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Exposure {self._one(params)[0]:+.2f} EV"
