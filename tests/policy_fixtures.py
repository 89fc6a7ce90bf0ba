"""Helpers for tests that need a policy: a tiny random-init ExposureRLModule (no training)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from exposure_env import filters
from exposure_env.state import state_dim

#: A very small network (the paper's layout, narrow layers) with dropout on the policy feature.
TINY_MODEL = {"preset": "small", "encoder_channels": (4, 8, 8), "feature_channels": 8, "hidden": 16, "dropout": 0.5}


def spaces(thumb: int = 64, filter_names=None):
    flist = filters.resolve(filter_names)
    obs = gym.spaces.Dict(
        image=gym.spaces.Box(-np.inf, np.inf, (thumb, thumb, 3), np.float32),
        state=gym.spaces.Box(-np.inf, np.inf, (state_dim(len(flist)),), np.float32),
    )
    act = gym.spaces.Dict(
        filter=gym.spaces.Discrete(len(flist)),
        params=gym.spaces.Box(-1.0, 1.0, (filters.max_params(flist),), np.float32),
    )
    return obs, act


def tiny_module(seed: int = 0, *, vivid: bool = False, **overrides):
    """A random-init ExposureRLModule with :data:`TINY_MODEL` (``overrides`` change its config).

    A fresh module starts near the identity action; ``vivid=True`` sets random parameter-head
    biases in [-0.7, 0.7] and larger head weights, so its edits are visible and image-dependent.
    """
    from policies.rl_module import ExposureRLModule

    torch.manual_seed(seed)
    cfg = {**TINY_MODEL, **overrides}
    obs, act = spaces(filter_names=cfg.get("filters"))
    module = ExposureRLModule(observation_space=obs, action_space=act, inference_only=False, model_config=cfg)
    if vivid:
        heads = module.pi.param_heads
        with torch.no_grad():
            heads.bias.uniform_(-0.7, 0.7)
            heads.weight.mul_(10.0)
    return module
