"""Saturation+ (S+): blend towards a saturation boost that spares shadows and highlights.

``c = min(img, 1)``; in HSV ``s' = s + (1 - s) (0.5 - |0.5 - v|) 0.8``; back to RGB gives
``full``; ``out = (1 - p) c + p full`` with blend ``p`` in [0, 1].
"""

from __future__ import annotations

from ..colour import hsv_to_rgb, rgb_to_hsv
from .base import Filter, ParamRange, ops_of


class Saturation(Filter):
    short_name = "S+"
    name = "Saturation+"
    num_params = 1
    ranges = (ParamRange("amount", 0.0, 1.0, "blend", identity=0.0),)

    def params(self, raw):
        return ops_of(raw).sigmoid(raw)

    def params_from_action(self, action):
        return ops_of(action).clip(action, 0.0, 1.0)

    def pixel(self, r, g, b, p):
        ops = ops_of(r)
        r, g, b = (ops.minimum(c, 1.0) for c in (r, g, b))
        h, s, v = rgb_to_hsv(r, g, b)
        s = s + (1.0 - s) * (0.5 - ops.abs(0.5 - v)) * 0.8
        fr, fg, fb = hsv_to_rgb(h, s, v)
        amt = p[0]
        return tuple(c + amt * (f - c) for c, f in ((r, fr), (g, fg), (b, fb)))

    def to_dict(self, params):
        return {"amount": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Saturation+ {100 * self._one(params)[0]:.0f}%"
