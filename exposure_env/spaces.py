"""The spaces of ``Exposure-v0`` and the policy's view of an image (specified in :class:`~exposure_env.env.ExposureEnv`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from . import filters as _filters
from .state import state_dim

#: Upper bound of observed pixel values (linear; 1 = white, 4 = two stops above white).
OBS_MAX = 4.0


def observe(images: np.ndarray) -> np.ndarray:
    """The policy's view of linear images: a new float32 array clipped to ``[0, OBS_MAX]``."""
    return np.clip(images, 0.0, OBS_MAX).astype(np.float32, copy=False)


def observation_space(num_filters: int, max_steps: int, thumb_size: int) -> spaces.Dict:
    """``Dict(image, state)`` for one environment (see :class:`~exposure_env.env.ExposureEnv`)."""
    hi = np.ones(state_dim(num_filters), np.float32)
    hi[2] = max_steps  # the step count field of exposure_env.state
    return spaces.Dict(
        {
            "image": spaces.Box(0.0, OBS_MAX, (thumb_size, thumb_size, 3), np.float32),
            "state": spaces.Box(np.zeros_like(hi), hi, dtype=np.float32),
        }
    )


def action_space(filter_list: Sequence[_filters.Filter]) -> spaces.Dict:
    """``Dict(filter=Discrete(F), params=Box(-1, 1, (P,)))`` for one environment."""
    return spaces.Dict(
        {
            "filter": spaces.Discrete(len(filter_list)),
            "params": spaces.Box(-1.0, 1.0, (_filters.max_params(filter_list),), np.float32),
        }
    )
