"""The learning-rate schedule of SPEC §6, one definition for every learner of the project.

``lr(t) = base * 0.1 ** (3 t / T)``: every rate decays by 10x over each third of training
(1000x in all), ``t`` and ``T`` in the same unit (training iterations, or env steps for
RLlib's timestep-keyed schedules). Base rates: the discriminator 5e-5, the policy 0.3x that,
the value function 10x the policy's. All learners use Adam with betas (0.5, 0.9).
"""

from __future__ import annotations

from typing import Callable

#: Base learning rate of the discriminator (SPEC §6).
DISCRIMINATOR_LR = 5e-5
#: Policy lr = ``POLICY_LR_SCALE * DISCRIMINATOR_LR`` (1.5e-5).
POLICY_LR_SCALE = 0.3
#: Value lr = ``VALUE_LR_SCALE * policy lr`` (1.5e-4).
VALUE_LR_SCALE = 10.0
#: Adam (beta1, beta2) of every learner.
ADAM_BETAS = (0.5, 0.9)
#: Number of 10x decays over the whole run.
DECADES = 3.0
#: Rate multiplier past the schedule's end (``lr_after_schedule``); 1.0 holds ``lr(T)``.
LR_AFTER_SCHEDULE = 1.0


def lr_factor(step: float, total_steps: float, decades: float = DECADES) -> float:
    """Multiplier ``0.1 ** (decades t / T)`` in (``0.1 ** decades``, 1]; ``t`` is clamped to
    ``[0, T]``. SPEC §6: 3 decades (1000x); short CPU runs decay less (see the recipes)."""
    if total_steps <= 0:
        raise ValueError(f"lr schedule: total_steps must be > 0, got {total_steps}")
    t = min(max(float(step), 0.0), float(total_steps))
    return 0.1 ** (float(decades) * t / float(total_steps))


def learning_rate(base: float, step: float, total_steps: float, decades: float = DECADES) -> float:
    """``base * 0.1 ** (decades t / T)`` (SPEC §6: 3 decades)."""
    return base * lr_factor(step, total_steps, decades)


def run_learning_rate(base: float, step: float, total_steps: float, *, decay: bool = True,
                      decades: float = DECADES, after: float = LR_AFTER_SCHEDULE) -> float:
    """The rate of ``step`` in a run whose schedules span ``total_steps``: :func:`learning_rate`
    (or ``base`` without ``decay``), times ``after`` from ``step >= total_steps`` on (a run
    longer than its schedules; ``lr_after_schedule`` of the critic and the exposure learner)."""
    lr = learning_rate(base, step, total_steps, decades) if decay else base
    return lr * after if step >= total_steps else lr


def check_lr_after_schedule(value: float, owner: str) -> None:
    """``ValueError`` naming ``owner``'s config unless ``lr_after_schedule`` is in (0, 1]."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{owner} config: lr_after_schedule must be in (0, 1], got {value}")


def base_lrs(discriminator_lr: float = DISCRIMINATOR_LR) -> dict[str, float]:
    """The three base rates derived from the discriminator's: ``{discriminator, policy, value}``."""
    policy = POLICY_LR_SCALE * discriminator_lr
    return {"discriminator": discriminator_lr, "policy": policy, "value": VALUE_LR_SCALE * policy}


def lr_lambda(total_steps: float) -> Callable[[int], float]:
    """Factor function for ``torch.optim.lr_scheduler.LambdaLR`` (stepped once per iteration)."""
    if total_steps <= 0:
        raise ValueError(f"lr schedule: total_steps must be > 0, got {total_steps}")
    return lambda step: lr_factor(step, total_steps)


def piecewise_schedule(base: float, total_steps: int, points: int = 31) -> list[list[float]]:
    """``[[t, lr], ...]`` at ``points`` evenly spaced steps, for RLlib's ``lr=`` schedules
    (which interpolate linearly between points; 31 points keep the error under 1%)."""
    if points < 2:
        raise ValueError(f"lr schedule: need at least 2 points, got {points}")
    if total_steps <= 0:
        raise ValueError(f"lr schedule: total_steps must be > 0, got {total_steps}")
    out = []
    for i in range(points):
        t = round(total_steps * i / (points - 1))
        out.append([int(t), learning_rate(base, t, total_steps)])
    return out
