"""White balance (W): per-channel multipliers ``s``, luminance-normalised.

``s = exp(tanh_range(-0.5, 0.5)(x))`` with the red input zeroed, then
``s /= 1e-5 + 0.27 s_r + 0.67 s_g + 0.06 s_b`` so brightness is kept. Parameters are the
final multipliers (R, G, B): R in [0.68, 1.40], G in [0.78, 1.17], B in [0.43, 2.13]
(the extremes of the normalisation over the allowed raw range).

>>> import numpy as np
>>> W = WhiteBalance()
>>> W.params_from_action(np.array([[0.0, 0.0, 1.0]])).round(4).tolist()  # bluer, brightness kept
[[0.9625, 0.9625, 1.5869]]
>>> W.params_from_action(np.array([[1.0, 0.0, 0.0]])).round(4).tolist()  # the red action is ignored
[[1.0, 1.0, 1.0]]
>>> W.apply(np.array([[[[0.2, 0.4, 0.6]]]], np.float32), [[1.0, 1.0, 0.5]]).ravel().astype(float).round(4).tolist()
[0.2, 0.4, 0.3]
"""

from __future__ import annotations

from ..backend import is_torch, ops_for, stack_last
from .base import Filter, ParamRange, tanh_range, unit_range

LOG_RANGE = 0.5


def _normalise(ops, log_s):
    s = [ops.exp(log_s[:, i]) for i in range(3)]
    norm = 1e-5 + 0.27 * s[0] + 0.67 * s[1] + 0.06 * s[2]
    return stack_last([c / norm for c in s])


class WhiteBalance(Filter):
    short_name = "W"
    name = "White balance"
    num_params = 3
    per_channel = True
    ranges = (
        ParamRange("r_multiplier", 0.68, 1.40, "x", identity=1.0),
        ParamRange("g_multiplier", 0.78, 1.17, "x", identity=1.0),
        ParamRange("b_multiplier", 0.43, 2.13, "x", identity=1.0),
    )

    def params(self, raw):
        ops = ops_for(raw)
        log_s = tanh_range(ops, raw, -LOG_RANGE, LOG_RANGE) * (1.0 - _red_mask(raw))
        return _normalise(ops, log_s)

    def params_from_action(self, action):
        ops = ops_for(action)
        log_s = unit_range(ops, action, -LOG_RANGE, LOG_RANGE) * (1.0 - _red_mask(action))
        return _normalise(ops, log_s)

    def pixel(self, r, g, b, p):
        return r * p[0], g * p[1], b * p[2]

    def to_dict(self, params):
        return {"multipliers": [round(float(v), 4) for v in self._one(params)]}

    def describe(self, params):
        r, g, b = self._one(params)
        return f"White balance R x{r:.2f} G x{g:.2f} B x{b:.2f}"


def _red_mask(x):
    """1 in the red column, 0 elsewhere, broadcastable against ``(N, 3)``."""
    mask = x[:1] * 0.0
    mask = mask.detach().clone() if is_torch(mask) else mask.copy()
    mask[..., 0] = 1.0
    return mask
