"""The Exposure paper's own actor-critic update (SPEC §4, §6) as pure torch functions.

One update takes a batch of image states ``s = (image (N, S, S, 3) linear RGB, state (N, 3 + F))``
and, entirely in torch on one device:

1. samples a filter ``a ~ pi_mix(.|s)`` (``pi`` mixed with ``epsilon`` uniform, SPEC §3),
2. applies that filter with the policy's deterministic parameters, differentiably:
   ``s' = filter_a(image, params_a(s))`` (the white-box filters of :mod:`exposure_env.filters`),
3. scores both images with a *frozen* critic ``D`` (no gradient reaches its weights) and pays
   ``r = 0.05 (D(s') - D(s)) - over-exposure(s') - reuse - entropy term`` (SPEC §4),
4. forms ``Q = r + gamma (1 - done) V(s')`` with ``V``'s weights detached, and returns three losses:

* ``actor``  ``-mean(Q)``: the deterministic policy gradient of the parameter heads, through the
  filter, ``D`` and ``V`` (plus a small penalty keeping actions in [-1, 1], see below);
* ``choice`` ``-mean(log pi_mix(a|s) (Q - V(s)))`` plus the entropy term
  ``w (1 - progress) (ln F - H(pi))``; ``Q`` and ``V(s)`` detached, so the choice head learns
  only through ``log pi`` (no gradient through the filters);
* ``value``  ``mean((r + gamma (1 - done) V(s') - V(s))^2)``: TD(0) with a detached target.

Each loss reaches only its own parameters, so their sum can be back-propagated at once.

Actions are the policy module's action units (``[-1, 1]``, mapped by
``Filter.params_from_action``), the same units PPO's module is trained in, so a policy trained
here exports and retouches exactly like a PPO one. Inside the update, the clamp of the actions
to [-1, 1] is a straight-through one (the env sees the clamped action; the gradient passes),
``bound_weight * mean(relu(|a| - 1)^2)`` keeps the unclamped means from drifting away, and
the flat "off" half of the blend filters passes gradients too (:func:`action_params`).

The log-probability is that of the mixed distribution the filter was sampled from, which makes
the choice gradient the exact on-policy gradient of the behaviour policy. The entropy term is
part of the reward (detached, SPEC §4) and, differentiable, of the choice loss.

``UpdateSettings.all_filters`` (off by default) is a lower-variance variant of the same
objective: every filter is stepped from every state, each parameter head is trained by its own
``-Q(s, f)``, the choice by the expected policy gradient and the value towards ``E_f[Q(s, f)]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call

from exposure_env.env import OBS_MAX
from exposure_env.filters import Filter
from exposure_env.state import NUM_FIXED, REWARD_GIVEN, STEP
from rewards.penalties import (
    ENTROPY_WEIGHT,
    OVEREXPOSURE_WEIGHT,
    REUSE_WEIGHT,
    REWARD_SCALE,
)
from rewards.penalties import entropy as entropy_penalty
from rewards.penalties import overexposure, reuse

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


# --- small pieces ------------------------------------------------------------------------
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


def action_params(flt: Filter, actions: torch.Tensor) -> torch.Tensor:
    """``flt.params_from_action`` of ``actions (n, k)`` for the update, with gradients everywhere.

    Forward: exactly what the env applies (actions clamped to [-1, 1]). Backward: the clamp is
    straight-through, and where a one-parameter filter's map is flat (a blend filter's "off"
    half, ``clip(a, 0, 1)`` for ``a < 0``) the gradient passes with the map's mean slope over
    [-1, 1], so a deterministic head that switched a blend off can switch it back on.
    """
    a = straight_through_clamp(actions)
    params = flt.params_from_action(a)
    if flt.num_params == 1:
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
        params = action_params(flt, actions[idx, : flt.num_params])
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


# --- the update ---------------------------------------------------------------------------
def _transition(score_fn, value_net, filters, image, state, refs, choice, raw_actions, settings):
    """One differentiable step of each row: ``(next_image, next_state, done, score_gain,
    over, reused, reward without the entropy term, Q without it)``, all ``(M, ...)``."""
    rows = torch.arange(image.shape[0], device=image.device)
    next_image = apply_chosen(filters, image, choice, raw_actions)
    next_state = advance_state(state, choice)
    done = (next_state[:, STEP] >= settings.max_steps).to(image.dtype)
    with torch.no_grad():
        score_before = score_fn(image, refs)
    score_gain = score_fn(next_image, refs) - score_before
    over = overexposure(next_image)
    reused = state[rows, NUM_FIXED + choice] > 0.5
    reward = settings.reward_scale * score_gain - settings.overexposure_weight * over - reuse(reused, settings.reuse_weight)
    v_next = detached_call(value_net, next_image, next_state)
    q = reward + settings.gamma * (1.0 - done) * v_next
    return next_image, next_state, done, score_gain, over, reused, reward, q


def _width_mask(filters: Sequence[Filter], choice: torch.Tensor, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(M, P)``: 1 on the parameters row ``m``'s filter uses."""
    k = torch.tensor([f.num_params for f in filters], device=like.device)[choice]
    return (torch.arange(width, device=like.device)[None, :] < k[:, None]).to(like.dtype)


def exposure_losses(
    policy_fn: PolicyFn,
    value_net: nn.Module,
    score_fn: ScoreFn,
    filters: Sequence[Filter],
    image: torch.Tensor,
    state: torch.Tensor,
    *,
    progress: float,
    settings: UpdateSettings = UpdateSettings(),
    refs: torch.Tensor | None = None,
    choice: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> UpdateOutput:
    """The three losses of one update on a batch of states (see the module docstring).

    ``policy_fn`` returns ``(logits (N, F), means (N, F, P), ...)`` in action units;
    ``value_net(image, state) -> (N,)`` is an ``nn.Module``; ``score_fn`` must be frozen (its
    weights are not updated; pass a critic whose parameters do not require grad).
    ``progress`` in [0, 1] fades the entropy term. ``choice`` forces the sampled filters (tests).
    With ``settings.all_filters`` every filter is stepped from every state (see
    :class:`UpdateSettings`); the per-sample results then describe the sampled filter.
    """
    n_filters = len(filters)
    logits, means = policy_fn(image, state)[:2]
    if logits.shape[-1] != n_filters:
        raise ValueError(f"policy has {logits.shape[-1]} filter logits but {n_filters} filters were given")
    n, width = image.shape[0], means.shape[-1]
    rows = torch.arange(n, device=image.device)

    # 1. filter choice from the mixed distribution; the entropy term of §4
    if choice is None:
        choice = sample_choice(logits, settings.filter_epsilon, generator)
    choice = choice.to(device=image.device, dtype=torch.long)
    log_mix_all = mixed_log_probs(logits, settings.filter_epsilon)
    entropy = choice_entropy(logits)
    ent_pen = entropy_penalty(entropy, n_filters, progress, settings.entropy_weight)
    v = value_net(image, state)

    if not settings.all_filters:
        # 2. the sampled filter's step, differentiable in its action means; reward; Q
        raw_actions = means[rows, choice]  # (N, P)
        mask = _width_mask(filters, choice, width, raw_actions)
        next_image, next_state, done, score_gain, over, reused, reward, q = _transition(
            score_fn, value_net, filters, image, state, refs, choice, raw_actions, settings
        )
        reward, q = reward - ent_pen.detach(), q - ent_pen.detach()
        # 3. the three losses
        bound = (torch.relu(raw_actions.abs() - 1.0) ** 2 * mask).sum(-1)
        actor = -q.mean() + settings.bound_weight * bound.mean()
        choice_loss = -(log_mix_all[rows, choice] * (q - v).detach()).mean() + ent_pen.mean()
        value_loss = ((q.detach() - v) ** 2).mean()
    else:
        # 2. every filter from every state: rows (state n, filter f) in state-major order
        all_f = torch.arange(n_filters, device=image.device).repeat(n)
        rep = torch.arange(n, device=image.device).repeat_interleave(n_filters)
        raw_all = means.reshape(n * n_filters, width)
        mask_all = _width_mask(filters, all_f, width, raw_all)
        trans = _transition(
            score_fn, value_net, filters, image[rep], state[rep], None if refs is None else refs[rep],
            all_f, raw_all, settings,
        )
        q_all = trans[7].reshape(n, n_filters) - ent_pen.detach()[:, None]
        pick = rows * n_filters + choice
        next_image, next_state, done, score_gain, over, reused, reward = (t[pick] for t in trans[:7])
        reward, q = reward - ent_pen.detach(), q_all[rows, choice]
        # 3. the losses: every head by its own Q; the choice by the expected policy gradient
        bound = (torch.relu(raw_all.abs() - 1.0) ** 2 * mask_all).sum(-1)
        actor = -q_all.mean() + settings.bound_weight * bound.mean()
        pi_mix = log_mix_all.exp()
        choice_loss = -(pi_mix * (q_all - v[:, None]).detach()).sum(-1).mean() + ent_pen.mean()
        target = (pi_mix.detach() * q_all.detach()).sum(-1)
        value_loss = ((target - v) ** 2).mean()
        raw_actions, mask = raw_all.reshape(n, n_filters, width)[rows, choice], mask_all[pick]

    return UpdateOutput(
        actor=actor,
        choice=choice_loss,
        value=value_loss,
        reward=reward.detach(),
        q=q.detach(),
        v=v.detach(),
        score_gain=score_gain.detach(),
        overexposure=over.detach(),
        reused=reused,
        entropy=entropy.detach(),
        filter_choice=choice,
        actions=(raw_actions.detach().clamp(-1.0, 1.0) * mask),
        next_image=next_image.detach(),
        next_state=next_state,
        done=done.bool(),
    )


def frozen_copy(module: nn.Module) -> nn.Module:
    """Put ``module`` in eval mode with every parameter's ``requires_grad`` off (in place)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# --- the episode update (this project's default; not the paper's) ---------------------------
def _unused_mixture_log_probs(logits: torch.Tensor, used: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``log((1 - eps) softmax(logits | unused) + eps * uniform(unused))`` ``(N, F)``; used
    filters get ``-1e9`` (probability 0: each filter once per episode, as the retoucher decides)."""
    # a large finite "minus infinity": -inf would make logaddexp's gradient NaN
    masked = logits.masked_fill(used, _MASKED)
    logp = torch.log_softmax(masked, -1)
    if epsilon > 0:
        free = (~used).sum(-1, keepdim=True).clamp_min(1).to(logits.dtype)
        uniform = torch.log(epsilon / free).expand_as(logp).masked_fill(used, _MASKED)
        logp = torch.logaddexp(logp + math.log(1.0 - epsilon), uniform)
    return logp


_MASKED = -1e9


def episode_losses(
    policy_fn: PolicyFn,
    value_net: nn.Module,
    score_fn: ScoreFn,
    filters: Sequence[Filter],
    image: torch.Tensor,
    state: torch.Tensor,
    *,
    progress: float,
    settings: UpdateSettings = UpdateSettings(),
    refs: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> UpdateOutput:
    """The episode update: every state is played to the end of its episode *differentiably*.

    From each state ``s_t`` (step ``t``) the policy takes the remaining ``max_steps - t`` steps
    (filters drawn from ``pi`` over the filters not used yet, mixed with ``epsilon`` uniform;
    deterministic parameters), all in torch. Because the critic part of the reward telescopes
    (``sum_k scale (D(s_{k+1}) - D(s_k)) = scale (D(s_T) - D(s_t))``), the return from every
    visited state ``s_k`` is exact and needs no value estimate:
    ``G_k = scale (D(s_T) - D(s_k)) - sum_{j >= k} (over-exposure_j + entropy term_j)``.

    * ``actor``  ``-mean(G_t)``: the parameter heads of *every* step get the exact gradient of
      the final image's score through the later filters (observations are detached: a decision
      is a function of what the policy saw, the gradient flows through the edits);
    * ``choice`` ``-mean(log pi(a_k|s_k) (G_k - V(s_k)))`` over the visited states, plus the
      entropy term (SPEC §4);
    * ``value``  ``mean((G_k - V(s_k))^2)``: the baseline of the choice gradient.

    Compared with the paper's one-step TD update (:func:`exposure_losses`), the parameter
    gradient does not go through a learned ``V(s')`` -- whose image gradient is noise until
    it has been trained -- which is what made the paper's update wander on short runs.
    Reuse is impossible by construction (used filters are masked), so that penalty is 0.
    """
    n_filters, n = len(filters), image.shape[0]
    rows = torch.arange(n, device=image.device)
    img, st = image, state
    active = st[:, STEP] < settings.max_steps
    logps, values, ent_pens, overs, masks, scores = [], [], [], [], [], []
    first: dict = {}
    bound = image.new_zeros(n)
    for _ in range(settings.max_steps):
        if not bool(active.any()):
            break
        obs = img.detach().clamp(0.0, OBS_MAX)  # what the env shows the policy (exposure_env.env.observe)
        logits, means = policy_fn(obs, st)[:2]
        used = st[:, NUM_FIXED:] > 0.5
        used = used & ~used.all(-1, keepdim=True)  # more steps than filters: allow reuse
        logp_all = _unused_mixture_log_probs(logits, used, settings.filter_epsilon)
        choice = torch.multinomial(logp_all.detach().exp(), 1, generator=generator).squeeze(1)
        entropy = choice_entropy(logits.masked_fill(used, _MASKED))
        with torch.no_grad():
            scores.append(score_fn(img.detach(), refs))
        values.append(value_net(obs, st))
        raw = means[rows, choice]
        mask = _width_mask(filters, choice, means.shape[-1], raw)
        bound = bound + active.to(raw.dtype) * (torch.relu(raw.abs() - 1.0) ** 2 * mask).sum(-1)
        stepped = apply_chosen(filters, img, choice, raw)
        keep = active[:, None, None, None]
        over = overexposure(stepped) * active.to(stepped.dtype)
        img = torch.where(keep, stepped, img)
        st = torch.where(active[:, None], advance_state(st, choice), st)
        if not first:
            first = dict(choice=choice, actions=raw.detach().clamp(-1.0, 1.0) * mask, entropy=entropy.detach())
        logps.append(logp_all[rows, choice])
        ent_pens.append(entropy_penalty(entropy, n_filters, progress, settings.entropy_weight) * active.to(img.dtype))
        overs.append(settings.overexposure_weight * over)
        masks.append(active.to(img.dtype))
        active = active & (st[:, STEP] < settings.max_steps)
    if not masks:
        raise ValueError("episode update: every state of the batch has already ended")
    final_score = score_fn(img, refs)
    logp, value = torch.stack(logps, 1), torch.stack(values, 1)
    ent_pen, over, mask = torch.stack(ent_pens, 1), torch.stack(overs, 1), torch.stack(masks, 1)
    score_k = torch.stack(scores, 1)
    # penalties still to come from step k on (inclusive)
    over_to_go = over.flip(1).cumsum(1).flip(1)
    ent_to_go = ent_pen.detach().flip(1).cumsum(1).flip(1)
    returns = settings.reward_scale * (final_score[:, None] - score_k) - over_to_go - ent_to_go  # (N, K)
    returns = returns * mask
    g = returns.detach()
    actor = -returns[:, 0].mean() + settings.bound_weight * bound.mean()
    denom = mask.sum().clamp_min(1.0)
    choice_loss = -(logp * (g - value.detach()) * mask).sum() / denom + ent_pen.sum() / denom
    value_loss = (((g - value) ** 2) * mask).sum() / denom
    score_gain = (final_score - score_k[:, 0]).detach()
    return UpdateOutput(
        actor=actor,
        choice=choice_loss,
        value=value_loss,
        reward=g[:, 0],
        q=g[:, 0],
        v=value[:, 0].detach(),
        score_gain=score_gain,
        overexposure=over.sum(1).detach(),
        reused=torch.zeros(n, dtype=torch.bool, device=image.device),
        entropy=first["entropy"],
        filter_choice=first["choice"],
        actions=first["actions"],
        next_image=img.detach(),
        next_state=st,
        done=torch.ones(n, dtype=torch.bool, device=image.device),
    )
