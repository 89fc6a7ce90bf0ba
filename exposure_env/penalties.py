"""The reward of SPEC §4 and its penalty terms, each written once for NumPy and torch.

``r = scale * (score_after - score_before) - penalties`` with

* over-exposure ``mean(max(out - 1, 0) ** 2)`` over the pixels and channels of each image,
* reuse ``weight * [filter already used in this episode]``,
* entropy ``weight * (1 - progress) * (ln n - H(pi))`` (the learner's term: a low-entropy
  filter choice early in training costs up to ``weight * ln n``),
* early stop ``weight * [stopped before the last step]`` (only where a stop action exists).

Every function takes batched arrays (``(N, ...)``, NumPy or torch) and returns ``(N,)`` on
the same backend; primitives come from :func:`exposure_env.backend.ops_for`.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import is_torch, ops_for
from .env_config import EnvConfig

#: SPEC §4 defaults: the environment's weights are :class:`EnvConfig`'s, the learner's below.
REWARD_SCALE = EnvConfig.reward_scale
OVEREXPOSURE_WEIGHT = EnvConfig.overexposure_weight
REUSE_WEIGHT = EnvConfig.reuse_penalty
ENTROPY_WEIGHT = 0.05
EARLY_STOP_WEIGHT = 1.0


def overexposure(images):
    """``mean(max(out - 1, 0) ** 2)`` per image: ``(N, H, W, 3)`` linear RGB -> ``(N,)`` (>= 0)."""
    ops = ops_for(images)
    excess = ops.maximum(images - 1.0, 0.0)
    return (excess * excess).reshape(images.shape[0], -1).mean(-1)


def reuse(already_used, weight: float = REUSE_WEIGHT):
    """``weight * [filter already used]``: ``(N,)`` bools (or 0/1) -> ``(N,)`` float."""
    return weight * _as_float(already_used)


def entropy(entropy_nats, num_filters: int, progress, weight: float = ENTROPY_WEIGHT):
    """``weight * (1 - progress) * (ln n - H)``: ``H`` the filter-choice entropy in nats,
    ``progress`` in [0, 1] the fraction of training done (scalar or ``(N,)``). >= 0 for valid ``H``."""
    return weight * (1.0 - progress) * (math.log(num_filters) - entropy_nats)


def early_stop(stopped, step, max_steps: int, weight: float = EARLY_STOP_WEIGHT):
    """``weight * [stopped and step < max_steps]`` for episodes with a stop action (``(N,)``)."""
    return weight * _as_float(stopped) * _as_float(step < max_steps)


def step_reward(score_before, score_after, over, reused, *, scale: float = REWARD_SCALE, overexposure_weight: float = OVEREXPOSURE_WEIGHT):
    """The environment's part of the §4 reward for one step, all ``(N,)``.

    ``scale * (score_after - score_before) - overexposure_weight * over - reused`` with
    ``over`` from :func:`overexposure` of the edited images and ``reused`` from :func:`reuse`
    (already weighted).
    """
    return scale * (score_after - score_before) - overexposure_weight * over - reused


def _as_float(x):
    """Bools / ints -> float32 on the same backend (torch tensors keep their device)."""
    if is_torch(x):
        return x if x.is_floating_point() else x.float()
    return np.asarray(x, dtype=np.float32)
