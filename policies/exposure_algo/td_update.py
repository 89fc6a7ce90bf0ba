"""The Exposure paper's own one-step TD actor-critic update (SPEC §4, §6), pure torch.

One update takes a batch of image states ``s = (image (N, S, S, 3) linear RGB, state (N, 3 + F))``
and, entirely in torch on one device:

1. samples a filter ``a ~ pi_mix(.|s)`` (``pi`` mixed with ``epsilon`` uniform, SPEC §3),
2. applies that filter with the policy's deterministic parameters, differentiably:
   ``s' = filter_a(image, params_a(s))`` (the white-box filters of :mod:`exposure_env.filters`),
3. scores both images with a *frozen* critic ``D`` (no gradient reaches its weights) and pays
   ``r = 0.05 (D(s') - D(s)) - over-exposure(s') - reuse - entropy term`` (SPEC §4),
4. forms ``Q = r + gamma (1 - done) V(s')`` with ``V``'s weights detached, and returns three losses:

* ``actor``  ``-mean(Q)``: the deterministic policy gradient of the parameter heads, through the
  filter, ``D`` and ``V`` (plus a small penalty keeping actions in [-1, 1],
  :func:`~.update_parts.bound_penalty`);
* ``choice`` ``-mean(log pi_mix(a|s) (Q - V(s)))`` plus the entropy term
  ``w (1 - progress) (ln F - H(pi))``; ``Q`` and ``V(s)`` detached, so the choice head learns
  only through ``log pi`` (no gradient through the filters);
* ``value``  ``mean((r + gamma (1 - done) V(s') - V(s))^2)``: TD(0) with a detached target.

Each loss reaches only its own parameters, so their sum can be back-propagated at once.

Actions, their straight-through clamp and the shared pieces: :mod:`.update_parts`.

The log-probability is that of the mixed distribution the filter was sampled from, which makes
the choice gradient the exact on-policy gradient of the behaviour policy. The entropy term is
part of the reward (detached, SPEC §4) and, differentiable, of the choice loss.

``UpdateSettings.all_filters`` (off by default) is a lower-variance variant of the same
objective: every filter is stepped from every state, each parameter head is trained by its own
``-Q(s, f)``, the choice by the expected policy gradient and the value towards ``E_f[Q(s, f)]``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from exposure_env.filters import Filter
from exposure_env.penalties import entropy as entropy_penalty
from exposure_env.penalties import overexposure, reuse
from exposure_env.state import NUM_FIXED, STEP

from .update_parts import PolicyFn, ScoreFn, UpdateOutput, UpdateSettings
from .update_parts import advance_state, apply_chosen, bound_penalty, choice_entropy, detached_call
from .update_parts import mixed_log_probs, sample_choice, width_mask


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


def exposure_losses(
    policy_fn: PolicyFn, value_net: nn.Module, score_fn: ScoreFn, filters: Sequence[Filter],
    image: torch.Tensor, state: torch.Tensor, *, progress: float, settings: UpdateSettings = UpdateSettings(),
    refs: torch.Tensor | None = None, choice: torch.Tensor | None = None, generator: torch.Generator | None = None,
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
        mask = width_mask(filters, choice, width, raw_actions)
        next_image, next_state, done, score_gain, over, reused, reward, q = _transition(
            score_fn, value_net, filters, image, state, refs, choice, raw_actions, settings
        )
        reward, q = reward - ent_pen.detach(), q - ent_pen.detach()
        # 3. the three losses
        bound = bound_penalty(raw_actions, mask)
        actor = -q.mean() + settings.bound_weight * bound.mean()
        choice_loss = -(log_mix_all[rows, choice] * (q - v).detach()).mean() + ent_pen.mean()
        value_loss = ((q.detach() - v) ** 2).mean()
    else:
        # 2. every filter from every state: rows (state n, filter f) in state-major order
        all_f = torch.arange(n_filters, device=image.device).repeat(n)
        rep = torch.arange(n, device=image.device).repeat_interleave(n_filters)
        raw_all = means.reshape(n * n_filters, width)
        mask_all = width_mask(filters, all_f, width, raw_all)
        trans = _transition(
            score_fn, value_net, filters, image[rep], state[rep], None if refs is None else refs[rep],
            all_f, raw_all, settings,
        )
        q_all = trans[7].reshape(n, n_filters) - ent_pen.detach()[:, None]
        pick = rows * n_filters + choice
        next_image, next_state, done, score_gain, over, reused, reward = (t[pick] for t in trans[:7])
        reward, q = reward - ent_pen.detach(), q_all[rows, choice]
        # 3. the losses: every head by its own Q; the choice by the expected policy gradient
        bound = bound_penalty(raw_all, mask_all)
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


