"""Run a policy on a batch of thumbnails for a few steps: the white-box edit sequences.

Used for validation during training (histogram intersection, step strips) and by the
retoucher. The policy is either an :class:`policies.rl_module.ExposureRLModule` or a callable
``fn(image (N, S, S, 3), state (N, 3 + F)) -> (logits (N, F), params)`` on torch tensors
(e.g. a traced exported policy), with ``params`` either ``(N, P)`` -- the greedy filter's
parameters -- or ``(N, F, P)`` -- every filter's; all in action units [-1, 1].

Each step mirrors the environment: the policy sees :func:`exposure_env.spaces.observe` of the
images (clipped to [0, OBS_MAX]) and the state vector of :func:`exposure_env.state.make_state`;
one filter per image, its parameters clipped to [-1, 1] and mapped by
``Filter.params_from_action``, applied with ``Filter.apply`` (images stay linear RGB and are
not clipped between steps).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from exposure_env import filters as filter_registry
from exposure_env.edits import Edit
from exposure_env.spaces import observe
from exposure_env.state import make_state


def _policy_call(policy, image: np.ndarray, state: np.ndarray):
    """``(logits (N, F), means (N, P) or (N, F, P), log_std (F, P) or None)`` as torch tensors."""
    if hasattr(policy, "policy_heads"):
        device = next(policy.parameters()).device
        logits, means, log_std = policy.policy_heads(
            torch.from_numpy(image).to(device), torch.from_numpy(state).to(device)
        )
        return logits, means, log_std
    device = torch.device("cpu")
    params = getattr(policy, "parameters", None)
    if callable(params):
        first = next(iter(params()), None)
        device = first.device if first is not None else device
    logits, means = policy(torch.from_numpy(image).to(device), torch.from_numpy(state).to(device))
    return logits, means, None


def pool_views(logits: torch.Tensor, means: torch.Tensor, views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One decision from ``views`` consecutive rows per photo: ``(logits (N, F), means (N, F, P))``
    from ``(N * views, F)`` and ``(N * views, F, P)``.

    The filter's log-probabilities are averaged over the views (a normalised geometric mean of
    the views' softmax, returned as logits) and so is every filter's mean parameters.
    """
    if views == 1:
        return logits, means
    if means.dim() != 3:
        raise ValueError("deciding on several views needs every filter's parameters: the policy returns only the greedy ones")
    n = logits.shape[0] // views
    if n * views != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} rows are not a whole number of photos of {views} views")
    log_p = torch.log_softmax(logits.float(), -1).reshape(n, views, -1).mean(1)
    return log_p, means.float().reshape(n, views, *means.shape[1:]).mean(1)


def choose_actions(
    policy,
    image: np.ndarray,
    state: np.ndarray,
    *,
    deterministic: bool = True,
    used: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    views: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """One decision for a batch: ``(filter indices (N,) int64, actions (N, P) float32 in [-1, 1])``.

    ``deterministic``: the most likely filter and its mean parameters. Otherwise the filter is
    drawn from ``softmax(logits)`` and, for a module, the parameters from its Gaussian.
    ``used`` ``(N, F)`` bools: when given, filters already used are excluded from the choice.
    ``views``: ``image`` and ``state`` hold ``N * views`` rows, each photo's views consecutive;
    one decision per photo (:func:`pool_views`).
    """
    with torch.no_grad():
        logits, means, log_std = _policy_call(policy, image, state)
        logits, means = pool_views(logits.float().cpu(), means.float().cpu(), views)
        if used is not None:
            logits = logits.masked_fill(torch.from_numpy(np.asarray(used, bool)), float("-inf"))
        if deterministic:
            f = logits.argmax(-1)
        else:
            if means.dim() == 2 and log_std is None:
                raise ValueError("sampling needs every filter's parameters: the policy returns only the greedy ones")
            f = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        if means.dim() == 3:
            a = means[torch.arange(len(f)), f]
            if not deterministic and log_std is not None:
                std = log_std.float().cpu().exp()[f]
                a = a + std * torch.randn(a.shape, generator=generator)
        else:
            a = means
    return f.numpy().astype(np.int64), np.clip(a.numpy(), -1.0, 1.0).astype(np.float32)


def apply_actions(images: np.ndarray, choice: np.ndarray, actions: np.ndarray, filter_list, views: int = 1) -> tuple[np.ndarray, list[Edit]]:
    """Apply filter ``choice[i]`` with ``actions[i]`` (action units) to each image ``(N, S, S, 3)``
    as the env does (:meth:`Filter.params_for`); returns the edited images and each one's edit.

    ``views``: ``images`` holds ``len(choice) * views`` rows, each photo's views consecutive; a
    photo's parameters come from its first view (the centre square; it matters only for the
    anchored filters) and edit all its views alike."""
    out = np.array(images, dtype=np.float32, copy=True)
    edits: list[Edit | None] = [None] * len(choice)
    for f in np.unique(choice):
        idx = np.flatnonzero(choice == f)
        filt = filter_list[int(f)]
        params = np.asarray(filt.params_for(actions[idx, : filt.num_params], out[idx * views]), np.float32)
        rows = (idx[:, None] * views + np.arange(views)).ravel()
        out[rows] = np.asarray(filt.apply(out[rows], np.repeat(params, views, axis=0)), dtype=np.float32)
        for i, p in zip(idx, params):
            edits[i] = Edit(filt.short_name, tuple(p))
    return out, edits


def rollout(
    module_or_fn: Callable | torch.nn.Module,
    images: np.ndarray,
    filters=None,
    steps: int = 5,
    deterministic: bool = True,
    *,
    mask_used: bool = False,
    seed: int | None = None,
    views: int = 1,
) -> tuple[np.ndarray, list[list[Edit]], list[np.ndarray]]:
    """Let the policy edit ``images`` ``(N, S, S, 3)`` (linear RGB) for ``steps`` steps.

    ``filters``: the policy's filter list (short names or Filter objects; ``None`` = the
    default eight). Returns ``(final images (N, S, S, 3), edits per image (N lists of
    :class:`Edit`), per-step images)`` where per-step images is a list of ``steps + 1``
    arrays: the input, then the batch after each step. ``mask_used`` forbids choosing a
    filter twice (the environment allows it but penalises it). ``seed`` makes sampling
    (``deterministic=False``) reproducible.

    ``views``: ``images`` holds ``views`` thumbnails of each photo, consecutive (e.g.
    :func:`exposure_env.resample.decision_views`); every step makes one decision per photo from
    all of them (:func:`pool_views`) and applies it to each. Edits are per photo (``N / views``
    lists); the final and per-step images keep every row.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"rollout: expected (N, S, S, 3) images, got shape {images.shape}")
    views = int(views)
    if views < 1 or len(images) % views:
        raise ValueError(f"rollout: {len(images)} images are not a whole number of photos of {views} views")
    filter_list = filter_registry.resolve(filters)
    n, num_filters = len(images) // views, len(filter_list)
    if mask_used and steps > num_filters:
        raise ValueError(f"rollout: mask_used allows at most {num_filters} steps, asked for {steps}")
    used = np.zeros((n, num_filters), bool)
    edits: list[list[Edit]] = [[] for _ in range(n)]
    frames = [images]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    was_training = getattr(module_or_fn, "training", None)
    if was_training:
        module_or_fn.eval()
    try:
        current = images
        for step in range(steps):
            state = np.repeat(make_state(np.full(n, step), used), views, axis=0)
            choice, actions = choose_actions(
                module_or_fn,
                observe(current),
                state,
                deterministic=deterministic,
                used=used if mask_used else None,
                generator=generator,
                views=views,
            )
            current, step_edits = apply_actions(current, choice, actions, filter_list, views)
            for i in range(n):
                edits[i].append(step_edits[i])
            used[np.arange(n), choice] = True
            frames.append(current)
    finally:
        if was_training:
            module_or_fn.train()
    return current, edits, frames
