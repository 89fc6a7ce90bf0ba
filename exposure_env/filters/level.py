"""Level: ``out = clip((img - lo) / (hi - lo), 0, 1)``, black point ``lo`` in [0, 1) (actions reach 0.999),
white point ``hi`` in [1, 2]. In the release, not in the paper's default set.

>>> import numpy as np
>>> Level().apply(np.array([[[[0.1, 0.7, 1.5]]]], np.float32), [[0.2, 1.2]]).ravel().astype(float).round(4).tolist()
[0.0, 0.5, 1.0]
>>> Level().params_from_action(np.array([[1.0, 1.0]])).round(4).tolist()
[[0.999, 2.0]]
"""

from __future__ import annotations

from ..backend import ops_for, stack_last
from .base import Filter, ParamRange


class Level(Filter):
    short_name = "L"
    name = "Level"
    num_params = 2
    per_channel = True
    ranges = (ParamRange("black", 0.0, 1.0, "", identity=0.0), ParamRange("white", 1.0, 2.0, "", identity=1.0))

    def params(self, raw):
        ops = ops_for(raw)
        return stack_last([ops.sigmoid(raw[:, 0]), 1.0 + ops.sigmoid(raw[:, 1])])

    def params_from_action(self, action):
        ops = ops_for(action)
        a = ops.clip(action, 0.0, 1.0)
        return stack_last([0.999 * a[:, 0], 1.0 + a[:, 1]])

    def pixel(self, r, g, b, p):
        ops = ops_for(r)
        lo, hi = p
        return tuple(ops.clip((c - lo) / (hi - lo), 0.0, 1.0) for c in (r, g, b))

    def to_dict(self, params):
        lo, hi = self._one(params)
        return {"black": round(float(lo), 4), "white": round(float(hi), 4)}

    def describe(self, params):
        lo, hi = self._one(params)
        return f"Level {lo:.3f}-{hi:.3f}"
