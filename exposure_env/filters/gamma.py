"""Gamma (G): ``out = max(img, 0.001) ** g``, ``g`` in [1/3, 3]. Per channel.

``g < 1`` brightens (a display gamma of 2.2 is ``g = 1/2.2``); :meth:`describe` writes it
the photographer's way, ``Gamma 1/2.20``. Actions map to ``g`` on a log scale.

>>> import numpy as np
>>> G = Gamma()
>>> G.apply(np.full((1, 1, 1, 3), 0.25, np.float32), [[0.5]]).ravel().tolist()  # 0.25 ** 0.5
[0.5, 0.5, 0.5]
>>> G.params_from_action(np.array([[-1.0], [0.0], [1.0]])).ravel().round(4).tolist()
[0.3333, 1.0, 3.0]
>>> G.describe([1 / 2.2])
'Gamma 1/2.20'
"""

from __future__ import annotations

from ..backend import LN3, ops_for
from .base import Filter, ParamRange, tanh_range, unit_range

FLOOR = 0.001


class Gamma(Filter):
    short_name = "G"
    name = "Gamma"
    num_params = 1
    per_channel = True
    ranges = (ParamRange("gamma", 1.0 / 3.0, 3.0, "exponent", identity=1.0),)

    def params(self, raw):
        ops = ops_for(raw)
        return ops.exp(tanh_range(ops, raw, -LN3, LN3))

    def params_from_action(self, action):
        ops = ops_for(action)
        return ops.exp(unit_range(ops, action, -LN3, LN3))

    def pixel(self, r, g, b, p):
        ops = ops_for(r)
        return tuple(ops.pow(ops.maximum(c, FLOOR), p[0]) for c in (r, g, b))

    def to_dict(self, params):
        return {"exponent": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"Gamma 1/{1.0 / self._one(params)[0]:.2f}"
