"""Auto-anchored Exposure (AE) and White balance (AW): action 0 is the automatic correction.

The plain filters map an action to fixed parameters (action 0 = no change). These two map it
*relative to the image being edited*, so an untrained policy already lands on a sensible
exposure and neutral colour, and what it has to learn from a style is the offset from there
(a brighter look, a warm cast), which is the same for most photos of a style:

* ``AE`` -- Exposure with ``ev = clip(log2(0.18 / mean luminance) + 3.5 a, -3.5, 3.5)``: action
  0 exposes the image to a mean linear luminance of 0.18 (mid grey), ``a`` adds up to +-3.5 EV;
* ``AW`` -- White balance with the action ``clip(g + a, -1, 1)`` where ``g`` is the grey-world
  action (channel means made equal: log gains ``log m_R - log m_c`` relative to red, in the
  filter's action units): action 0 neutralises the average colour, ``a`` tints from there;
* ``AWs`` -- White balance anchored at a *share* of grey world: ``clip(s g + a, -1, 1)`` with the
  strength ``s = (1 + a_R) / 2`` in [0, 1] read from the red action, which plain ``W`` and ``AW``
  leave unused (red's multiplier is fixed). ``s = 0`` is plain ``W``, ``s = 1`` is ``AW``, action 0
  is half of grey world: a style that keeps some of each scene's own colour learns that share
  (measured in docs/benchmarks.md, not a recipe's default).

The statistics are those of the image the filter is applied to (the observed thumbnail or
crop as edited so far: linear RGB when the filter comes before Gamma and the curves). An edit keeps the plain filter's name and absolute parameters (``E`` in
EV, ``W`` multipliers), so edit lists, full-size rendering, the fused kernels and the editor
sidecars do not know these filters exist. In a differentiable update the anchor is treated
as a constant (gradients reach the action, not the statistics).

>>> import numpy as np
>>> img = np.full((1, 4, 4, 3), 0.045, np.float32)  # mean luminance 0.045: 2 stops under 0.18
>>> round(float(AutoExposure().params_for(np.zeros((1, 1)), img)[0, 0]), 4)
2.0
>>> warm = np.concatenate([np.full((1, 4, 4, 1), 0.3), np.full((1, 4, 4, 2), 0.2)], -1).astype(np.float32)
>>> out = AutoWhiteBalance().apply(warm, AutoWhiteBalance().params_for(np.zeros((1, 3)), warm))
>>> out.mean(axis=(1, 2), dtype=np.float64).round(4).tolist()  # grey world: channel means made equal
[[0.2198, 0.2198, 0.2198]]
"""

from __future__ import annotations

import math

from ..backend import is_torch, ops_for
from ..colour import LUM_WEIGHTS
from .exposure import MAX_EV, Exposure
from .white_balance import LOG_RANGE, WhiteBalance

#: Mean linear luminance that ``AE``'s action 0 exposes to (mid grey).
MID_GREY = 0.18
_TINY = 1e-6


def _channel_means(images):
    """``(N, H, W, 3)`` -> ``(N, 3)`` channel means, floored at 1e-6 (a constant in torch's graph)."""
    images = images.detach() if is_torch(images) else images
    return ops_for(images).maximum(images.mean(axis=(1, 2)), _TINY)


def auto_ev(images):
    """``log2(0.18 / mean luminance)`` per image ``(N,)``: the exposure that brings it to mid grey."""
    m = _channel_means(images)
    lum = LUM_WEIGHTS[0] * m[:, 0] + LUM_WEIGHTS[1] * m[:, 1] + LUM_WEIGHTS[2] * m[:, 2]
    return (math.log(MID_GREY) - ops_for(lum).log(lum)) / math.log(2.0)


def grey_world_action(images):
    """``W`` actions ``(N, 3)`` (red 0) whose multipliers make the channel means equal."""
    log = ops_for(images).log(_channel_means(images))
    return (log[:, :1] - log) / LOG_RANGE


class AutoExposure(Exposure):
    """``AE``: Exposure anchored at mid grey (module docstring); edits are plain ``E`` edits."""

    short_name = "AE"
    name = "Auto exposure"
    anchored = True
    edit_name = "E"  # type: ignore[assignment]  # a class constant over the base property

    def params_for(self, action, images):
        ops = ops_for(action)
        return ops.clip(auto_ev(images)[:, None] + MAX_EV * ops.clip(action, -1.0, 1.0), -MAX_EV, MAX_EV)

    def identity_action(self):
        return None


class AutoWhiteBalance(WhiteBalance):
    """``AW``: White balance anchored at grey world (module docstring); edits are plain ``W`` edits."""

    short_name = "AW"
    name = "Auto white balance"
    anchored = True
    edit_name = "W"  # type: ignore[assignment]

    def params_for(self, action, images):
        return self.params_from_action(ops_for(action).clip(grey_world_action(images) + action, -1.0, 1.0))

    def identity_action(self):
        return None


class PartialWhiteBalance(AutoWhiteBalance):
    """``AWs``: :class:`AutoWhiteBalance` anchored at a share of grey world, the share read from
    the red action (module docstring); edits are plain ``W`` edits."""

    short_name = "AWs"
    name = "Auto white balance (strength)"

    def params_for(self, action, images):
        ops = ops_for(action)
        a = ops.clip(action, -1.0, 1.0)
        strength = 0.5 * (a[:, :1] + 1.0)
        return self.params_from_action(ops.clip(strength * grey_world_action(images) + a, -1.0, 1.0))
