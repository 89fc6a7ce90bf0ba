"""Level: ``out = clip((img - lo) / (hi - lo), 0, 1)``, black point ``lo`` in [0, 1) (actions reach 0.999),
white point ``hi`` in [1, 2]. In the release, not in the paper's default set."""

from __future__ import annotations

from .base import Filter, ParamRange, column_stack, ops_of


class Level(Filter):
    short_name = "L"
    name = "Level"
    num_params = 2
    per_channel = True
    ranges = (ParamRange("black", 0.0, 1.0, "", identity=0.0), ParamRange("white", 1.0, 2.0, "", identity=1.0))

    def params(self, raw):
        ops = ops_of(raw)
        return column_stack(ops.name, [ops.sigmoid(raw[:, 0]), 1.0 + ops.sigmoid(raw[:, 1])], raw)

    def params_from_action(self, action):
        ops = ops_of(action)
        a = ops.clip(action, 0.0, 1.0)
        return column_stack(ops.name, [0.999 * a[:, 0], 1.0 + a[:, 1]], action)

    def pixel(self, r, g, b, p):
        ops = ops_of(r)
        lo, hi = p
        return tuple(ops.clip((c - lo) / (hi - lo), 0.0, 1.0) for c in (r, g, b))

    def to_dict(self, params):
        lo, hi = self._one(params)
        return {"black": round(float(lo), 4), "white": round(float(hi), 4)}

    def describe(self, params):
        lo, hi = self._one(params)
        return f"Level {lo:.3f}-{hi:.3f}"
