"""Exposure (E): ``out = img * 2**e``, ``e`` in [-3.5, 3.5] stops (EV). Per channel, linear RGB."""

from __future__ import annotations

import math

from .base import Filter, ParamRange, ops_of, tanh_range, unit_range

MAX_EV = 3.5


class Exposure(Filter):
    short_name = "E"
    name = "Exposure"
    num_params = 1
    per_channel = True
    ranges = (ParamRange("ev", -MAX_EV, MAX_EV, "EV", identity=0.0),)

    def params(self, raw):
        return tanh_range(ops_of(raw), raw, -MAX_EV, MAX_EV, 0.0)

    def params_from_action(self, action):
        return unit_range(ops_of(action), action, -MAX_EV, MAX_EV)

    def pixel(self, r, g, b, p):
        ops = ops_of(r)
        scale = ops.exp(p[0] * math.log(2.0))
        return r * scale, g * scale, b * scale

    def to_dict(self, params):
        return {"ev": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Exposure {self._one(params)[0]:+.2f} EV"
