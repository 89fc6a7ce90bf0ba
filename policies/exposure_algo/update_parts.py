"""What the Exposure actor-critic's two updates share (SPEC §3, §4, §6), pure torch.

:class:`UpdateSettings` (the constants of one update), :class:`UpdateOutput` (its losses and
per-sample results) and the differentiable pieces of a step: the filter choice from ``pi``
mixed with ``epsilon`` uniform (:func:`mixed_log_probs`, :func:`sample_choice`), the chosen
filter applied with the policy's deterministic parameters (:func:`apply_chosen`) and the state
vector advanced (:func:`advance_state`). The updates themselves: :mod:`.episode_update` (this
project's default) and :mod:`.td_update` (the paper's one-step TD update).

Actions are the policy module's action units (``[-1, 1]``, mapped by
``Filter.params_from_action``), the same units PPO's module is trained in, so a policy trained
here exports and retouches exactly like a PPO one. Inside an update, the clamp of the actions
to [-1, 1] is a straight-through one (the env sees the clamped action; the gradient passes),
``bound_weight * mean(relu(|a| - 1)^2)`` (:func:`bound_penalty`) keeps the unclamped means from
drifting away, and the flat "off" half of the blend filters passes gradients too
(:func:`action_params`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from exposure_env.filters import Filter
from exposure_env.penalties import (
    ENTROPY_WEIGHT,
    OVEREXPOSURE_WEIGHT,
    REUSE_WEIGHT,
    REWARD_SCALE,
)
from exposure_env.state import NUM_FIXED, REWARD_GIVEN, STEP

#: ``score_fn(images (N, S, S, 3), refs or None) -> (N,)``: differentiable in ``images``.
ScoreFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
#: ``policy_fn(image, state) -> (filter_logits (N, F), param_means (N, F, P), ...)``.
PolicyFn = Callable[[torch.Tensor, torch.Tensor], tuple]


@dataclass(frozen=True)
class UpdateSettings:
    """Constants of one update (defaults: SPEC §4, §6)."""

    gamma: float = 1.0
    reward_scale: float = REWARD_SCALE
    overexposure_weight: float = OVEREXPOSURE_WEIGHT
    reuse_weight: float = REUSE_WEIGHT
    entropy_weight: float = ENTROPY_WEIGHT
    #: Uniform mixing of the filter choice during training (SPEC §3).
    filter_epsilon: float = 0.05
    #: Trajectory length: the step that reaches it is terminal (no bootstrap).
    max_steps: int = 5
    #: Weight of ``mean(relu(|a| - 1)^2)`` on the chosen filter's action means.
    bound_weight: float = 1.0
    #: Off (the paper): one sampled filter per state. On: every filter is stepped from every
    #: state (F x the filter / critic / value work), every parameter head is trained by its
    #: own ``-Q``, the choice by the expected policy gradient ``-sum_a pi_mix(a|s) (Q(s, a) - V(s))``
    #: and the value towards ``sum_a pi_mix(a|s) Q(s, a)``: the same objective with far less
    #: variance, for short runs where the learner would otherwise wait for the critic.
    all_filters: bool = False

    def __post_init__(self):
        if not 0.0 <= self.filter_epsilon < 1.0:
            raise ValueError(f"filter_epsilon must be in [0, 1), got {self.filter_epsilon}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")


@dataclass
class UpdateOutput:
    """Losses (scalars with graph) and detached per-sample results of one update."""

    actor: torch.Tensor
    choice: torch.Tensor
    value: torch.Tensor
    #: Detached ``(N,)`` / ``(N, ...)`` results, for logging and for writing states back.
    reward: torch.Tensor
    q: torch.Tensor
    v: torch.Tensor
    score_gain: torch.Tensor
    overexposure: torch.Tensor
    reused: torch.Tensor
    entropy: torch.Tensor
    filter_choice: torch.Tensor
    actions: torch.Tensor
    next_image: torch.Tensor
    next_state: torch.Tensor
    done: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.actor + self.choice + self.value

    def stats(self) -> dict[str, float]:
        """Scalar means for logging (Python floats)."""
        return {
            "actor_loss": float(self.actor.detach()),
            "choice_loss": float(self.choice.detach()),
            "value_loss": float(self.value.detach()),
            "reward_mean": float(self.reward.mean()),
            "q_mean": float(self.q.mean()),
            "v_mean": float(self.v.mean()),
            "score_gain_mean": float(self.score_gain.mean()),
            "overexposure_mean": float(self.overexposure.mean()),
            "reuse_rate": float(self.reused.float().mean()),
            "filter_entropy": float(self.entropy.mean()),
        }


def straight_through_clamp(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """``clamp(x, lo, hi)`` forward, identity gradient."""
    return x + (x.clamp(lo, hi) - x).detach()


def mixed_log_probs(logits: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``log((1 - eps) softmax(logits) + eps / F)`` ``(N, F)``, numerically stable."""
    logp = torch.log_softmax(logits, -1)
    if epsilon <= 0:
        return logp
    uniform = torch.full_like(logp, math.log(epsilon / logits.shape[-1]))
    return torch.logaddexp(logp + math.log(1.0 - epsilon), uniform)


def choice_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``H(pi)`` in nats of the (unmixed) filter distribution, ``(N,)``."""
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def advance_state(state: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """State vector after one step with filter ``choice`` (``exposure_env.state`` layout)."""
    out = state.clone()
    out[:, REWARD_GIVEN] = 1.0
    out[:, STEP] = state[:, STEP] + 1.0
    rows = torch.arange(state.shape[0], device=state.device)
    out[rows, NUM_FIXED + choice] = 1.0
    return out


def action_params(flt: Filter, actions: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``flt.params_for`` of ``actions (n, k)`` on ``images`` for the update, with gradients everywhere.

    Forward: exactly what the env applies (actions clamped to [-1, 1]; an anchored filter's
    anchor from ``images``, a constant for the gradient). Backward: the clamp is
    straight-through, and where a one-parameter filter's map is flat (a blend filter's "off"
    half, ``clip(a, 0, 1)`` for ``a < 0``) the gradient passes with the map's mean slope over
    [-1, 1], so a deterministic head that switched a blend off can switch it back on.
    """
    a = straight_through_clamp(actions)
    params = flt.params_for(a, images)
    if flt.num_params == 1 and not flt.anchored:
        with torch.no_grad():
            ac, h = a.detach(), 1e-3
            flat = (flt.params_from_action(ac + h) - flt.params_from_action(ac - h)).abs() < 1e-9
            ends = flt.params_from_action(torch.tensor([[-1.0], [1.0]], dtype=a.dtype, device=a.device))
            slope = 0.5 * (ends[1] - ends[0])
        params = params + flat.to(a.dtype) * slope * (a - a.detach())
    return params


def apply_chosen(
    filters: Sequence[Filter], image: torch.Tensor, choice: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """Apply filter ``choice[n]`` with actions ``actions[n, :k]`` to image ``n`` (see
    :func:`action_params`). Differentiable in ``image`` and ``actions``; one call per distinct filter.
    """
    pieces, order = [], []
    for f, flt in enumerate(filters):
        idx = torch.nonzero(choice == f, as_tuple=False).squeeze(1)
        if idx.numel() == 0:
            continue
        params = action_params(flt, actions[idx, : flt.num_params], image[idx])
        pieces.append(flt.apply(image[idx], params))
        order.append(idx)
    out = torch.cat(pieces)
    perm = torch.cat(order)
    return out[torch.argsort(perm)]


def detached_call(module: nn.Module, *args) -> torch.Tensor:
    """``module(*args)`` with its weights detached: gradients reach the inputs only."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return functional_call(module, params, args)


def sample_choice(logits: torch.Tensor, epsilon: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Filters ``(N,)`` sampled from ``pi`` mixed with ``epsilon`` uniform."""
    probs = mixed_log_probs(logits.detach(), epsilon).exp()
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def bound_penalty(actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum_p relu(|a_p| - 1)^2`` over the parameters ``mask`` (0/1, same shape) keeps, ``(M,)``:
    how far unclamped action means stray outside [-1, 1]."""
    return (torch.relu(actions.abs() - 1.0) ** 2 * mask).sum(-1)


def width_mask(filters: Sequence[Filter], choice: torch.Tensor, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(M, P)``: 1 on the parameters row ``m``'s filter uses."""
    k = torch.tensor([f.num_params for f in filters], device=like.device)[choice]
    return (torch.arange(width, device=like.device)[None, :] < k[:, None]).to(like.dtype)


def frozen_copy(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with every parameter's ``requires_grad`` off (in place)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


