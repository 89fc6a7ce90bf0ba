"""The policy's action distribution: pick a filter, then that filter's own parameters.

Actions follow the contract ``{"filter": Discrete(F), "params": Box(-1, 1, (P,))}``; filter ``f``
reads ``params[:k_f]``. The distribution is the chain rule of SPEC §3's "one filter and that
filter's parameters":

    pi(f, x) = Cat(f | logits) * N(x[:k_f] | mean_f, std_f)

so each filter has its own Gaussian (mean and log-std, ``(F, P)`` with the tail beyond ``k_f``
masked out) and the unused tail of ``params`` carries no likelihood (samples put 0 there).
KL is exact: ``KL = KL(Cat) + sum_f p_f KL(N_f)``. ``entropy()`` -- what RLlib's entropy bonus
uses -- is the filter choice's ``H(Cat)`` (SPEC §4); ``joint_entropy()`` adds ``sum_f p_f H(N_f)``.

Inputs (``ACTION_DIST_INPUTS``) are one flat tensor ``(N, F + 2 F P)``: filter logits, then the
per-filter means ``(F, P)`` flattened, then the per-filter log-stds ``(F, P)`` flattened.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.distribution.distribution import Distribution

_HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def dist_input_dim(num_filters: int, width: int) -> int:
    """Width of the flat distribution inputs: ``F + 2 F P``."""
    return num_filters + 2 * num_filters * width


def param_mask(num_params: Sequence[int], width: int) -> np.ndarray:
    """``(F, P)`` float32 mask: 1 where filter ``f`` uses parameter ``j`` (``j < k_f``)."""
    mask = np.zeros((len(num_params), width), np.float32)
    for f, k in enumerate(num_params):
        mask[f, :k] = 1.0
    return mask


def _split_action(value, width: int):
    """Dict ``{filter, params}`` or flat ``(N, 1 + P)`` tensor -> ``(filter (N,) long, params (N, P))``."""
    if isinstance(value, dict):
        f, x = value["filter"], value["params"]
    else:  # dm-tree order of the Dict: filter, then params
        f, x = value[..., 0], value[..., 1 : 1 + width]
    f = torch.as_tensor(f)
    if f.dim() > 1 and f.shape[-1] == 1:
        f = f.squeeze(-1)
    return f.long(), torch.as_tensor(x)


class FilterParamsDistribution(Distribution):
    """Filter choice then per-filter Gaussian parameters (see module docstring).

    Use :func:`filter_params_distribution` to get the class for a filter set; ``num_params``
    (the ``k_f``) is a class attribute so RLlib's ``from_logits(logits)`` needs nothing else.
    """

    num_params: tuple[int, ...] = ()
    width: int = 0

    def __init__(self, logits: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor):
        super().__init__()
        self.logits = logits  # (N, F), any normalisation
        self.mean = mean  # (N, F, P)
        self.log_std = log_std  # (N, F, P)
        self.mask = torch.as_tensor(param_mask(self.num_params, self.width), device=mean.device, dtype=mean.dtype)
        self.cat = torch.distributions.Categorical(logits=logits, validate_args=False)

    # --- construction ------------------------------------------------------------------
    @classmethod
    def required_input_dim(cls, space: gym.Space = None, **kwargs) -> int:
        return dist_input_dim(len(cls.num_params), cls.width)

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs) -> "FilterParamsDistribution":
        n_f, width = len(cls.num_params), cls.width
        lead = logits.shape[:-1]
        f_logits = logits[..., :n_f]
        mean = logits[..., n_f : n_f + n_f * width].reshape(*lead, n_f, width)
        log_std = logits[..., n_f + n_f * width :].reshape(*lead, n_f, width)
        return cls(f_logits, mean, log_std)

    def to_deterministic(self) -> "DeterministicFilterParams":
        return DeterministicFilterParams(self.logits, self.mean)

    # --- per-filter helpers -------------------------------------------------------------
    def _gather(self, t: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Row ``f`` of ``t (N, F, P)`` -> ``(N, P)``."""
        idx = f.reshape(*f.shape, 1, 1).expand(*f.shape, 1, t.shape[-1])
        return t.gather(-2, idx).squeeze(-2)

    def _gauss_entropy(self) -> torch.Tensor:
        """Entropy of each filter's Gaussian ``(N, F)`` over its own ``k_f`` parameters."""
        return ((_HALF_LOG_2PI_E + self.log_std) * self.mask).sum(-1)

    # --- Distribution API ---------------------------------------------------------------
    def sample(self, *, sample_shape=None, **kwargs):
        with torch.no_grad():
            return self.rsample(sample_shape=sample_shape)

    def rsample(self, *, sample_shape=None, **kwargs):
        if sample_shape not in (None, (), torch.Size()):
            raise NotImplementedError("FilterParamsDistribution samples one action per row")
        f = self.cat.sample()
        mean, log_std = self._gather(self.mean, f), self._gather(self.log_std, f)
        x = (mean + log_std.exp() * torch.randn_like(mean)) * self._gather(self.mask.expand_as(self.mean), f)
        return {"filter": f, "params": x}

    def logp(self, value, **kwargs) -> torch.Tensor:
        f, x = _split_action(value, self.width)
        f = f.to(self.logits.device)
        x = x.to(self.mean.dtype).to(self.mean.device)
        mean, log_std = self._gather(self.mean, f), self._gather(self.log_std, f)
        mask = self._gather(self.mask.expand_as(self.mean), f)
        z = (x - mean) * torch.exp(-log_std)
        gauss = ((-0.5 * z * z - log_std - 0.5 * math.log(2.0 * math.pi)) * mask).sum(-1)
        return self.cat.log_prob(f) + gauss

    def entropy(self, **kwargs) -> torch.Tensor:
        """The filter choice's entropy ``H(Cat)`` in nats: the term SPEC §4's entropy bonus acts on.

        (A bonus on the joint entropy would keep widening the Gaussians of many-parameter
        filters -- 24 for the colour curves -- whose spread the policy gradient alone sets.)
        """
        return self.cat.entropy()

    def joint_entropy(self) -> torch.Tensor:
        """Entropy of the whole action: ``H(Cat) + sum_f p_f H(N_f)`` in nats."""
        return self.cat.entropy() + (self.cat.probs * self._gauss_entropy()).sum(-1)

    def kl(self, other: "FilterParamsDistribution", **kwargs) -> torch.Tensor:
        kl_cat = torch.distributions.kl_divergence(self.cat, other.cat)
        var_ratio = torch.exp(2.0 * (self.log_std - other.log_std))
        t = (self.mean - other.mean) * torch.exp(-other.log_std)
        kl_gauss = (0.5 * (var_ratio + t * t - 1.0) - (self.log_std - other.log_std)) * self.mask
        return kl_cat + (self.cat.probs * kl_gauss.sum(-1)).sum(-1)


class DeterministicFilterParams(Distribution):
    """Greedy action: the most likely filter and its mean parameters (tail 0)."""

    def __init__(self, logits: torch.Tensor, mean: torch.Tensor):
        super().__init__()
        self.logits, self.mean = logits, mean

    def sample(self, *, sample_shape=None, **kwargs):
        f = self.logits.argmax(-1)
        idx = f.reshape(*f.shape, 1, 1).expand(*f.shape, 1, self.mean.shape[-1])
        return {"filter": f, "params": self.mean.gather(-2, idx).squeeze(-2)}

    def rsample(self, *, sample_shape=None, **kwargs):
        return self.sample()

    def logp(self, value, **kwargs) -> torch.Tensor:
        return torch.zeros(self.logits.shape[:-1], device=self.logits.device)

    def kl(self, other, **kwargs):
        raise NotImplementedError("KL of a deterministic action")

    def entropy(self, **kwargs):
        return torch.zeros(self.logits.shape[:-1], device=self.logits.device)

    @staticmethod
    def required_input_dim(space: gym.Space, **kwargs) -> int:
        raise NotImplementedError

    @classmethod
    def from_logits(cls, logits, **kwargs):
        raise NotImplementedError


@functools.lru_cache(maxsize=None)
def filter_params_distribution(num_params: tuple[int, ...], width: int) -> type[FilterParamsDistribution]:
    """The distribution class for filters using ``num_params`` of a ``width``-wide params vector."""
    if any(k > width for k in num_params):
        raise ValueError(f"a filter needs {max(num_params)} params but the action has {width}")
    name = "FilterParamsDistribution_" + "_".join(map(str, num_params))
    return type(name, (FilterParamsDistribution,), {"num_params": tuple(num_params), "width": int(width)})
