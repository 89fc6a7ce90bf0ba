"""``ExposureRLModule``: the paper's policy and value networks (SPEC §5) as an RLlib RLModule.

Observations ``{"image": (S, S, 3) linear RGB, "state": (3 + F,)}``; actions
``{"filter": Discrete(F), "params": Box(-1, 1, (P,))}`` (see ``docs/ARCHITECTURE.md``).

Networks (each a :class:`Trunk`: the ConvEncoder on the image with the state vector appended as
constant planes -- or, in the ``small`` preset, on a 2x pooled image with the state appended to
the feature):

* ``pi.param_encoder`` (Trunk, optional dropout) -> per-filter MLP heads: filter ``f``'s
  head outputs only its own ``k_f`` parameter means (action units, [-1, 1] nominal); the
  heads are one block-diagonal layer pair (``Linear(D, F*H)`` then a batched ``(F, H, P)``
  product masked to each filter's ``k_f`` columns), i.e. F independent MLP(H) heads.
* ``pi.filter_encoder`` (a separate Trunk) -> MLP(H) -> filter logits.
* ``pi.log_std`` ``(F, P)``: state-independent log standard deviations per filter parameter.
* ``vf``: Trunk -> MLP(H) -> scalar value.

The action distribution (:mod:`policies.action_dist`) samples the filter, then that filter's
own Gaussian; the filter choice is mixed with ``filter_epsilon`` uniform (SPEC §3: 5 %), inside
the distribution inputs so sampling and training see the same probabilities.

``model_config`` keys (defaults = the paper; ``preset="small"`` is a CPU-friendly variant):
``filters`` (short names, default the paper's eight), ``thumb_size`` (taken from the
observation space when absent), ``encoder_channels``, ``feature_channels``, ``hidden``,
``dropout`` (policy feature; 0 by default because PPO's importance ratios need the sampling
and training passes to be the same function), ``log_std_init``, ``filter_epsilon``,
``downsample`` (average-pool factor before the encoders), ``state_planes``, ``policy_average``
(the exposure algorithm's averaged policy, :mod:`policies.exposure_algo.module`; 0 = off).

APPO: ``TargetNetworkAPI`` keeps a frozen copy of ``pi``. Env runners build the inference-only
variant (no ``vf`` and no target copy).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import (
    TARGET_NETWORK_ACTION_DIST_INPUTS,
    InferenceOnlyAPI,
    TargetNetworkAPI,
    ValueFunctionAPI,
)
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from exposure_env import filters as filter_registry
from exposure_env.style_features import feature_dim, style_features
from rewards.networks import ConvEncoder, mlp, with_state_planes

from .action_dist import filter_params_distribution, param_mask
from .rllib_deprecations import silence as _silence_rllib_internal_deprecations

_silence_rllib_internal_deprecations()  # RLModule.__init__'s own RLModuleConfig notice (see there)

#: The paper's sizes (SPEC §5).
PAPER_MODEL = {
    "encoder_channels": (32, 64, 128),
    "feature_channels": 256,
    "hidden": 128,
    "dropout": 0.0,
    "log_std_init": -1.0,
    "filter_epsilon": 0.05,
    "downsample": 1,
    "state_planes": True,
    "encoder": "conv",
    "policy_average": 0.0,
}

#: Presets selectable with ``model_config["preset"]``; explicit keys override them.
#: ``small`` (CPU demo runs) sees a 2x average-pooled 32x32 image and appends the state vector
#: to the image feature instead of as constant planes: ~10x cheaper, same decisions available.
PRESETS = {
    "paper": {},
    "small": {
        "encoder_channels": (16, 32),
        "feature_channels": 32,
        "hidden": 64,
        "downsample": 2,
        "state_planes": False,
    },
    # Decisions from the photo's global colour / tone statistics
    # (exposure_env.style_features) through an MLP: no convolutions, cheaper than
    # ``small``, and blind to scene content, so it transfers to photos never seen in training.
    "stats": {
        "encoder": "stats",
        "hidden": 128,
        "feature_channels": 128,
        "state_planes": False,
    },
}


def resolve_model_config(model_config: dict | None) -> dict:
    """Defaults, then the preset, then explicit keys; validates the preset name."""
    cfg = dict(model_config or {})
    preset = cfg.pop("preset", "paper") or "paper"
    if preset not in PRESETS:
        raise ValueError(f"model_config preset {preset!r} unknown; known: {', '.join(PRESETS)}")
    out = {**PAPER_MODEL, **PRESETS[preset], **cfg, "preset": preset}
    out["encoder_channels"] = tuple(int(c) for c in out["encoder_channels"])
    if out["encoder"] not in ENCODERS:
        raise ValueError(f"model_config encoder {out['encoder']!r} unknown; known: {', '.join(ENCODERS)}")
    if int(out["downsample"]) < 1:
        raise ValueError(f"model_config downsample must be >= 1, got {out['downsample']}")
    if not 0.0 <= float(out["policy_average"]) < 1.0:
        raise ValueError(f"model_config policy_average must be in [0, 1), got {out['policy_average']}")
    return out


#: ``model_config["encoder"]``: the paper's convolutions, or the photo's statistics + an MLP.
ENCODERS = ("conv", "stats")


class StatsEncoder(nn.Module):
    """``(image (N, S, S, 3), state (N, d)) -> (N, C)``: :func:`exposure_env.style_features.style_features`
    of the image and the state vector through ``Linear -> LeakyReLU -> Linear -> LeakyReLU``
    (width ``hidden``, output ``feature_channels``), optional dropout on the output."""

    def __init__(self, state_dim: int, hidden: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim() + state_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, out_dim), nn.LeakyReLU(0.2),
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.feature_dim = out_dim

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.net(torch.cat([style_features(image), state.to(image.dtype)], dim=-1)))


class Trunk(nn.Module):
    """``(image (N, S, S, 3), state (N, d)) -> feature (N, D)``. ``encoder="conv"``: optional
    ``downsample``x average pooling, then the ConvEncoder on the image with the state as constant
    planes (``state_planes=True``, the paper's way) or with the state appended to the image
    feature. ``encoder="stats"``: :class:`StatsEncoder`."""

    def __init__(self, state_dim: int, size: int, cfg: dict, dropout: float = 0.0):
        super().__init__()
        self.stats = None
        if cfg.get("encoder", "conv") == "stats":
            self.stats = StatsEncoder(state_dim, int(cfg["hidden"]), int(cfg["feature_channels"]), dropout)
            self.feature_dim = self.stats.feature_dim
            return
        self.pool = int(cfg["downsample"])
        self.planes = bool(cfg["state_planes"])
        if size % self.pool:
            raise ValueError(f"model_config downsample {self.pool} does not divide the {size}px thumbnail")
        in_size = size // self.pool
        layers = len(cfg["encoder_channels"]) + 1
        if in_size % (2**layers):
            raise ValueError(f"a {in_size}px encoder input cannot be halved {layers} times (model_config encoder_channels)")
        in_channels = 3 + (state_dim if self.planes else 0)
        self.encoder = ConvEncoder(
            in_channels, cfg["encoder_channels"], cfg["feature_channels"], in_size, dropout=dropout
        )
        self.feature_dim = self.encoder.feature_dim + (0 if self.planes else state_dim)

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        if self.stats is not None:
            return self.stats(image, state)
        x = image
        if self.pool > 1:
            x = nn.functional.avg_pool2d(x.permute(0, 3, 1, 2), self.pool).permute(0, 2, 3, 1)
        if self.planes:
            return self.encoder(with_state_planes(x, state))
        return torch.cat([self.encoder(x), state.to(x.dtype)], dim=-1)


class PerFilterHeads(nn.Module):
    """F independent MLP(H) heads on one feature, filter ``f`` writing only ``k_f`` outputs.

    ``(N, D)`` -> ``(N, F, P)`` with zeros beyond each filter's ``k_f`` parameters.
    """

    def __init__(self, in_dim: int, hidden: int, num_params: tuple[int, ...], width: int):
        super().__init__()
        n_f = len(num_params)
        self.num_filters, self.hidden = n_f, hidden
        self.first = nn.Linear(in_dim, n_f * hidden)
        bound = 1.0 / math.sqrt(hidden)
        self.weight = nn.Parameter(torch.empty(n_f, hidden, width).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_f, width))
        self.register_buffer("mask", torch.as_tensor(param_mask(num_params, width)), persistent=False)
        with torch.no_grad():  # start near the identity action (0) with small outputs
            self.weight.mul_(0.1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.first(feature), 0.2)
        h = h.reshape(feature.shape[0], self.num_filters, self.hidden)
        return (torch.einsum("nfh,fhp->nfp", h, self.weight) + self.bias) * self.mask


class PolicyNet(nn.Module):
    """``(image, state) -> (filter logits (N, F), param means (N, F, P), log-std (F, P))``."""

    def __init__(self, state_dim: int, size: int, num_params: tuple[int, ...], width: int, cfg: dict):
        super().__init__()
        self.param_encoder = Trunk(state_dim, size, cfg, dropout=float(cfg["dropout"]))
        self.param_heads = PerFilterHeads(self.param_encoder.feature_dim, cfg["hidden"], num_params, width)
        self.filter_encoder = Trunk(state_dim, size, cfg)
        self.filter_head = mlp(self.filter_encoder.feature_dim, len(num_params), cfg["hidden"])
        self.log_std = nn.Parameter(torch.full((len(num_params), width), float(cfg["log_std_init"])))

    def forward(self, image: torch.Tensor, state: torch.Tensor):
        logits = self.filter_head(self.filter_encoder(image, state))
        means = self.param_heads(self.param_encoder(image, state))
        return logits, means, self.log_std


class ValueNet(nn.Module):
    """``(image, state) -> V (N,)``: encoder + MLP(H) + scalar."""

    def __init__(self, state_dim: int, size: int, cfg: dict):
        super().__init__()
        self.encoder = Trunk(state_dim, size, cfg)
        self.head = mlp(self.encoder.feature_dim, 1, cfg["hidden"])

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(image, state)).squeeze(-1)


class ExposureRLModule(TorchRLModule, ValueFunctionAPI, TargetNetworkAPI, InferenceOnlyAPI):
    """Policy + value for the Exposure env (PPO and APPO; see module docstring)."""

    def setup(self):
        obs, act = self.observation_space, self.action_space
        if not (isinstance(obs, gym.spaces.Dict) and {"image", "state"} <= set(obs.spaces)):
            raise ValueError(f"ExposureRLModule needs a Dict observation with image and state, got {obs}")
        if not (isinstance(act, gym.spaces.Dict) and set(act.spaces) == {"filter", "params"}):
            raise ValueError(f"ExposureRLModule needs a Dict action {{filter, params}}, got {act}")
        cfg = resolve_model_config(self.model_config)
        names = cfg.get("filters")
        flist = filter_registry.resolve(names)
        num_filters, width = int(act["filter"].n), int(act["params"].shape[0])
        if len(flist) != num_filters:
            raise ValueError(f"model_config filters has {len(flist)} entries but the action space has {num_filters}")
        size, state_dim = int(obs["image"].shape[0]), int(obs["state"].shape[0])
        cfg["filters"] = [f.short_name for f in flist]
        cfg["thumb_size"] = int(cfg.get("thumb_size") or size)
        self.resolved_config = cfg
        self.num_params = tuple(f.num_params for f in flist)
        self.width = width
        self.filter_epsilon = float(cfg["filter_epsilon"])
        self.action_dist_cls = filter_params_distribution(self.num_params, width)

        self.pi = PolicyNet(state_dim, size, self.num_params, width, cfg)
        self.vf = ValueNet(state_dim, size, cfg)
        if float(cfg["policy_average"]) and not self.averages_policy:
            raise ValueError(f"model_config policy_average: only the exposure algorithm keeps an averaged policy ({type(self).__name__})")

    #: Whether the module keeps an averaged copy of ``pi`` (``model_config["policy_average"]``).
    averages_policy = False

    # --- policy ------------------------------------------------------------------------
    def policy_heads(self, image: torch.Tensor, state: torch.Tensor, net: nn.Module | None = None):
        """Raw outputs: ``(logits (N, F), means (N, F, P), log_std (F, P))`` in action units."""
        return (net or self.pi)(image, state)

    def policy_outputs(self, image: torch.Tensor, state: torch.Tensor):
        """``(filter_logits (N, F), param_mean (N, P))`` for the greedy (most likely) filter.

        ``param_mean`` is the chosen filter's mean in action units (unclamped; its first
        ``k_f`` entries matter, the tail is 0). Traceable with ``torch.jit.trace``.
        """
        logits, means, _ = self.policy_heads(image, state)
        f = logits.argmax(-1)
        idx = f[:, None, None].expand(-1, 1, means.shape[-1])
        return logits, means.gather(1, idx).squeeze(1)

    def _dist_inputs(self, logits: torch.Tensor, means: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0]
        if self.filter_epsilon > 0:
            mixed = torch.logaddexp(
                torch.log_softmax(logits, -1) + math.log(1.0 - self.filter_epsilon),
                torch.full_like(logits, math.log(self.filter_epsilon / logits.shape[-1])),
            )
        else:
            mixed = logits
        return torch.cat([mixed, means.reshape(n, -1), log_std.reshape(1, -1).expand(n, -1)], dim=-1)

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        logits, means, log_std = self.pi(obs["image"], obs["state"])
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(logits, means, log_std)}

    # --- value -------------------------------------------------------------------------
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        obs = batch[Columns.OBS]
        return self.vf(obs["image"], obs["state"])

    # --- APPO target network -------------------------------------------------------------
    def make_target_networks(self) -> None:
        self._old_pi = make_target_network(self.pi)

    def get_target_network_pairs(self):
        return [(self.pi, self._old_pi)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        logits, means, log_std = self._old_pi(obs["image"], obs["state"])
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: self._dist_inputs(logits, means, log_std)}

    # --- inference-only variant (env runners) -----------------------------------------------
    def get_non_inference_attributes(self) -> list[str]:
        return ["vf", "_old_pi"]
