"""The episode update (this project's default; not the paper's), pure torch.

Every state of the batch is played to the end of its episode *differentiably* (see
:func:`episode_losses`): the parameter heads get the exact gradient of the final image's score
through the later filters, with no learned ``V(s')`` in the way. The paper's one-step TD update
is :mod:`.td_update`; the shared pieces are in :mod:`.update_parts`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from exposure_env.filters import Filter
from exposure_env.penalties import entropy as entropy_penalty
from exposure_env.penalties import overexposure
from exposure_env.spaces import OBS_MAX
from exposure_env.state import NUM_FIXED, STEP

from .update_parts import PolicyFn, ScoreFn, UpdateOutput, UpdateSettings
from .update_parts import advance_state, apply_chosen, bound_penalty, choice_entropy, width_mask


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
    policy_fn: PolicyFn, value_net: nn.Module, score_fn: ScoreFn, filters: Sequence[Filter],
    image: torch.Tensor, state: torch.Tensor, *, progress: float, settings: UpdateSettings = UpdateSettings(),
    refs: torch.Tensor | None = None, generator: torch.Generator | None = None,
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
        obs = img.detach().clamp(0.0, OBS_MAX)  # what the env shows the policy (exposure_env.spaces.observe)
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
        mask = width_mask(filters, choice, means.shape[-1], raw)
        bound = bound + active.to(raw.dtype) * bound_penalty(raw, mask)
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
