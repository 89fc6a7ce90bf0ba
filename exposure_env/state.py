"""The agent's state vector of SPEC §3: ``[reward_given, stopped, step, used_0 .. used_{n-1}]``.

One definition shared by the environment, the networks (as constant planes) and the batch
retoucher, so a policy sees identical inputs in training and at full resolution.
"""

from __future__ import annotations

import numpy as np

#: Index of each leading field in the state vector.
REWARD_GIVEN, STOPPED, STEP = 0, 1, 2
NUM_FIXED = 3


def state_dim(num_filters: int) -> int:
    """Length of the state vector for ``num_filters`` filters."""
    return NUM_FIXED + num_filters


def make_state(step, used, *, stopped=None, reward_given=None) -> np.ndarray:
    """Batched state ``(N, 3 + n)`` float32.

    ``step``: ``(N,)`` steps taken so far (0 before the first edit); ``used``: ``(N, n)`` bools,
    filter already applied in this episode. ``reward_given`` defaults to ``step > 0`` (a reward
    has been paid for the current image), ``stopped`` to 0 (the paper's config has no stop action).
    """
    step = np.asarray(step, dtype=np.float32).reshape(-1)
    used = np.asarray(used, dtype=np.float32).reshape(len(step), -1)
    out = np.zeros((len(step), NUM_FIXED + used.shape[1]), np.float32)
    out[:, REWARD_GIVEN] = (step > 0) if reward_given is None else np.asarray(reward_given, np.float32)
    out[:, STOPPED] = 0.0 if stopped is None else np.asarray(stopped, np.float32)
    out[:, STEP] = step
    out[:, NUM_FIXED:] = used
    return out
