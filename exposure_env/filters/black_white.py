"""Black and white (BW): ``out = (1 - p) img + p L``, blend ``p`` in [0, 1]."""

from __future__ import annotations

from ..colour import luminance
from .base import Filter, ParamRange, ops_of


class BlackWhite(Filter):
    short_name = "BW"
    name = "Black & white"
    num_params = 1
    ranges = (ParamRange("amount", 0.0, 1.0, "blend", identity=0.0),)

    def params(self, raw):
        return ops_of(raw).sigmoid(raw)

    def params_from_action(self, action):
        return ops_of(action).clip(action, 0.0, 1.0)

    def pixel(self, r, g, b, p):
        lum = luminance(r, g, b)
        amt = p[0]
        return tuple(c + amt * (lum - c) for c in (r, g, b))

    def to_dict(self, params):
        return {"amount": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Black & white {100 * self._one(params)[0]:.0f}%"
