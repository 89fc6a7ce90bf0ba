"""Training recipes: every setting of a run in one place, plus typed ``KEY=VALUE`` overrides.

A :class:`Recipe` groups the algorithm's ``.training(...)`` settings, the RLModule's
``model_config``, the environment's reward weights, the discriminator's config
(:class:`rewards.discriminator.DiscriminatorConfig`), the sampling layout and the run's
stopping / checkpoint / validation cadence.

* ``demo``   -- the README's main job: the bundled demo set on a 2-CPU laptop in 5 minutes;
* ``laptop`` -- the same settings for a user's folders on a machine without a GPU;
* ``fivek``  -- the paper's FiveK recipe for a GPU (SPEC §5-7): paper-size networks, critic
  schedule and learning rates of §6;
* ``demo-ppo`` / ``fivek-ppo`` -- PPO variants (``--algo ppo``).

All default to the exposure algorithm (``policies.exposure_algo``) with the episode update;
:func:`default_recipe_name` picks one from the data source and the GPUs present.

Overrides (``exposure train --config KEY=VALUE``, repeatable): ``KEY`` is a training setting
(``lr``, ``num_epochs``, ``entropy_coeff``, ...; any ``AlgorithmConfig.training`` field) or a
dotted ``model.*`` / ``env.*`` / ``discriminator.*`` / ``run.*`` key. ``VALUE`` is a Python
literal (``1e-4``, ``8``, ``[16, 32]``, ``true``/``false``, ``"text"``); it must fit the type
of the existing setting. Bad keys or values raise ``ValueError`` naming the setting.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Run-level settings a recipe carries (``run.*`` overrides).
RUN_FIELDS = (
    "algo",
    "num_env_runners",
    "num_envs_per_env_runner",
    "stop_iters",
    "stop_time",
    "checkpoint_freq",
    "eval_every",
    "keep_checkpoints",
    "lr_final_fraction",
    "train_eval_crops",
)


@dataclass
class Recipe:
    """All settings of a training run (see module docstring)."""

    name: str
    algo: str = "ppo"
    training: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    discriminator: dict[str, Any] = field(default_factory=dict)
    num_env_runners: int = 1
    num_envs_per_env_runner: int = 16
    stop_iters: int | None = None
    stop_time: float | None = None  # seconds
    checkpoint_freq: int = 10
    eval_every: int = 5
    keep_checkpoints: int = 3
    #: Decay the policy lr exponentially to this fraction of ``training["lr"]`` by the end of the
    #: run (progress = share of ``stop_iters`` or ``stop_time`` used); None keeps it constant.
    lr_final_fraction: float | None = None
    #: Also validate on this many fixed training-input crops against the training targets
    #: (in-distribution HI, ``eval_train/*``); 0 turns it off.
    train_eval_crops: int = 64

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The CPU recipes' settings of the exposure algorithm (the defaults; chosen by
#: ``benchmarks/quality.py`` over seeds, see docs/benchmarks.md "Quality"): the episode update
#: (:func:`policies.exposure_algo.losses.episode_losses`), the filter choice at its own higher
#: rate, rates decaying 10x over the run (``lr * 0.1 ** (t / T)``; SPEC §6 decays 1000x over
#: 20,000 iterations, which leaves a run of a few hundred nothing to learn with), two learner
#: updates per iteration on 64 states each.
LAPTOP_TRAINING: dict[str, Any] = {
    "update": "episode",
    "policy_lr": 2e-4,
    "value_lr": 1e-3,
    "choice_lr": 1e-3,
    "lr_decay": True,
    "lr_decay_decades": 1.0,
    "entropy_weight": 0.05,
    "updates_per_iteration": 2,
    "pool_size": 256,
}
#: The CPU recipes' critic: WGAN-GP on the photos' colour / tone statistics
#: (``kind="features"``), fed with finished images only (``env.critic_fakes="final"``, as the
#: 2018 release does), 10 updates per iteration at a constant rate, 50 per iteration for the
#: first 5 (warm-up), a pool of the last ~20 iterations' finished images. The critic learns
#: 2.5x faster than the policy: with a slower critic the policy outran it and the validation
#: swung (22.5 -> 14.2 dB within 50 iterations at policy 5e-4 / critic 2e-4).
LAPTOP_DISCRIMINATOR: dict[str, Any] = {
    "kind": "features",
    "hidden": 128,
    "lr": 5e-4,
    "lr_decay": False,
    "n_critic": 10,
    "n_critic_warmup": 50,
    "warmup_iterations": 5,
    "warmup_every": 100000,
    "pool_size": 256,
}


def laptop_recipe(name: str = "laptop", stop_time: float = 15 * 60.0) -> Recipe:
    """CPU recipe for a folder of photos (``exposure train --inputs --targets`` without a GPU):
    the exposure algorithm with the ``stats`` policy and the feature critic (see
    :data:`LAPTOP_TRAINING`, :data:`LAPTOP_DISCRIMINATOR`); short iterations on 2 CPUs, so a
    ``--stop-time`` budget is kept to within a few seconds."""
    return Recipe(
        name=name,
        algo="exposure",
        training=dict(LAPTOP_TRAINING),
        model={"preset": "stats"},
        env={"reward_scale": 0.1, "critic_fakes": "final"},
        discriminator=dict(LAPTOP_DISCRIMINATOR),
        num_env_runners=0,
        num_envs_per_env_runner=64,
        stop_time=stop_time,
        checkpoint_freq=50,
        eval_every=25,
    )


def demo_recipe() -> Recipe:
    """The README's main job: :func:`laptop_recipe` on the bundled demo set, 5 minutes."""
    return laptop_recipe("demo", 5 * 60.0)


#: PPO settings shared by the PPO recipes (undiscounted 5-step episodes, SPEC §4).
PPO_COMMON: dict[str, Any] = {"gamma": 1.0, "lambda_": 0.95, "clip_param": 0.2, "vf_loss_coeff": 1.0, "grad_clip": 1.0}


def demo_ppo_recipe(name: str = "demo-ppo", stop_time: float = 10 * 60.0) -> Recipe:
    """PPO on the demo set (``--algo ppo``): the earlier default, kept for comparison; also
    the paired (supervised) recipe on a CPU (``laptop-ppo``), whose reward is no critic's."""
    return Recipe(
        name=name,
        algo="ppo",
        training={
            "lr": 5e-4,
            "train_batch_size_per_learner": 640,
            "minibatch_size": 160,
            "num_epochs": 6,
            "entropy_coeff": 0.01,
            **PPO_COMMON,
        },
        model={"preset": "small"},
        env={"reward_scale": 0.1, "critic_fakes": "final"},
        discriminator=dict(LAPTOP_DISCRIMINATOR),
        num_env_runners=1,
        num_envs_per_env_runner=32,
        stop_time=stop_time,
        checkpoint_freq=50,
        eval_every=5,
        lr_final_fraction=0.2,
    )


def _default_runners(most: int = 8) -> int:
    """One env runner per CPU beyond the driver's, at most ``most``."""
    from exposure_env.system import usable_cpus

    return max(1, min(most, usable_cpus() - 1))


def fivek_recipe() -> Recipe:
    """The paper's recipe on FiveK for a GPU (SPEC §5-7): the exposure algorithm on the
    paper-size networks and convolutional critic, the paper's rates, schedule and length
    (20,000 iterations of 64 states), the critic fed with finished images."""
    return Recipe(
        name="fivek",
        algo="exposure",
        training={"update": "episode", "lr_decay": True, "total_iterations": 20_000},
        model={"preset": "paper"},
        env={"reward_scale": 0.05, "critic_fakes": "final"},
        discriminator={},
        num_env_runners=0,
        num_envs_per_env_runner=64,
        stop_iters=20_000,
        checkpoint_freq=500,
        eval_every=250,
    )


def fivek_ppo_recipe() -> Recipe:
    """PPO on the paper-size networks (``--fivek --algo ppo``)."""
    return Recipe(
        name="fivek-ppo",
        algo="ppo",
        training={
            "lr": 1.5e-5 * 10,
            "train_batch_size_per_learner": 4096,
            "minibatch_size": 512,
            "num_epochs": 4,
            "entropy_coeff": 0.05,
            **PPO_COMMON,
        },
        model={"preset": "paper"},
        env={"reward_scale": 0.05, "critic_fakes": "final"},
        discriminator={},
        num_env_runners=_default_runners(),
        num_envs_per_env_runner=32,
        stop_iters=2000,
        checkpoint_freq=50,
        eval_every=10,
    )


#: Reward scale of paired (supervised) training: the step reward is this times the decrease of
#: the L1 distance to the truth (~0.03 per episode at 0.1, too small against the 1.0 reuse
#: penalty for PPO to learn in a short run; 2.0 learned in the data engineer's 4-minute check).
PAIRED_REWARD_SCALE = 2.0


def with_data_reward(recipe: Recipe, scorer: str | None) -> Recipe:
    """``recipe`` with the reward a data source calls for (``DataSpec.scorer``): for paired data
    the paired scorer at :data:`PAIRED_REWARD_SCALE`, unless the recipe already names a scorer."""
    if scorer is None or "scorer" in recipe.env:
        return recipe
    env = {**recipe.env, "scorer": scorer}
    if scorer == "paired":
        env["reward_scale"] = PAIRED_REWARD_SCALE
    return recipe.replace(env=env)

RECIPES = {
    "demo": demo_recipe,
    "demo-ppo": demo_ppo_recipe,
    "laptop": laptop_recipe,
    "laptop-ppo": lambda: demo_ppo_recipe("laptop-ppo", 15 * 60.0),
    "fivek": fivek_recipe,
    "fivek-ppo": fivek_ppo_recipe,
}


def default_recipe_name(source: str, gpus: int, algo: str | None = None, paired: bool = False) -> str:
    """The recipe a run gets when none is named: ``demo`` for the demo set, ``fivek`` for
    FiveK, and for a user's folders ``fivek`` (paper-size) with a GPU, else ``laptop``;
    ``algo`` picks that recipe's variant for another algorithm (``demo-ppo``) when one exists.
    Paired training (``paired=True``: the reward is the distance to each photo's truth, not
    a critic's) takes the PPO variant unless another algorithm is named."""
    base = {"demo": "demo", "fivek": "fivek"}.get(source) or ("fivek" if gpus else "laptop")
    if paired and algo is None:
        algo = "ppo"
    algo = None if algo is None else algo.lower()
    if algo == "appo":  # APPO takes PPO's recipe (the keys it does not know are dropped)
        algo = "ppo"
    if algo is not None and f"{base}-{algo}" in RECIPES:
        return f"{base}-{algo}"
    return base


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]()
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def parse_value(text: str) -> Any:
    """A ``--config`` value: a Python literal, ``true``/``false``/``none``, else the plain string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def _coerce(key: str, value: Any, current: Any) -> Any:
    """``value`` converted to the type of ``current`` where that is unambiguous."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"--config {key}: expected true or false, got {value!r}")
        return value
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--config {key}: expected a number, got {value!r}")
        if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"--config {key}: expected an integer, got {value!r}")
        return type(current)(value) if isinstance(current, int) and float(value).is_integer() else value
    if isinstance(current, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"--config {key}: expected a list, got {value!r}")
        return type(current)(value)
    if isinstance(current, str) and not isinstance(value, str):
        raise ValueError(f"--config {key}: expected text, got {value!r}")
    return value


def _training_defaults(algo: str) -> dict[str, Any]:
    """Every ``.training(...)`` field of ``algo``'s config class with its default."""
    from .algorithms import config_class

    import inspect

    cfg = config_class(algo)()
    names: set[str] = set()
    for klass in type(cfg).__mro__:
        if "training" in vars(klass):
            names |= {p for p in inspect.signature(vars(klass)["training"]).parameters if p not in ("self", "kwargs")}
    return {n: getattr(cfg, n, None) for n in sorted(names)}


def _model_defaults(model: dict) -> dict[str, Any]:
    from policies.rl_module import resolve_model_config

    return resolve_model_config(model)


def _discriminator_defaults(overrides: dict) -> dict[str, Any]:
    from rewards.discriminator import DiscriminatorConfig

    return DiscriminatorConfig.from_any(overrides).to_dict()


ENV_DEFAULTS = {
    "scorer": "discriminator",  # or "statistics" / "paired" (exposure_env.scorers)
    "critic_fakes": "final",  # the critic's fake images: episodes' "final" ones (the 2018 release) or "all" scored images
    "reward_scale": 0.05,
    "overexposure_weight": 1.0,
    "reuse_penalty": 1.0,
    "max_steps": 5,
    "thumb_size": 64,
    "filters": None,
}


def apply_overrides(recipe: Recipe, items: list[str] | tuple[str, ...] | None) -> Recipe:
    """``recipe`` with ``KEY=VALUE`` overrides applied (module docstring); validates every key."""
    if not items:
        return recipe
    r = recipe.replace(
        training=dict(recipe.training), model=dict(recipe.model), env=dict(recipe.env), discriminator=dict(recipe.discriminator)
    )
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--config {item!r}: expected KEY=VALUE, e.g. lr=1e-4 or model.hidden=64")
        value = parse_value(raw)
        group, dot, sub = key.partition(".")
        if dot and group == "run":
            if sub not in RUN_FIELDS:
                raise ValueError(f"--config {key}: unknown run setting; known: {', '.join(RUN_FIELDS)}")
            current = getattr(r, sub)
            if sub == "algo":
                from .algorithms import check_algo

                value = check_algo(str(value))
            elif sub == "stop_time" and isinstance(value, str):
                from .training import parse_duration

                value = parse_duration(value)
            elif current is None and value is not None:
                current = 1.0 if sub in ("stop_time", "lr_final_fraction") else 1
            r = r.replace(**{sub: _coerce(key, value, current)})
        elif dot and group == "model":
            defaults = _model_defaults(r.model)
            if sub not in defaults:
                raise ValueError(f"--config {key}: unknown model setting; known: {', '.join(sorted(defaults))}")
            r.model[sub] = _coerce(key, value, defaults[sub])
            _model_defaults(r.model)
        elif dot and group == "env":
            if sub not in ENV_DEFAULTS:
                raise ValueError(f"--config {key}: unknown env setting; known: {', '.join(ENV_DEFAULTS)}")
            r.env[sub] = _coerce(key, value, r.env.get(sub, ENV_DEFAULTS[sub]))
        elif dot and group == "discriminator":
            defaults = _discriminator_defaults(r.discriminator)
            if sub not in defaults:
                raise ValueError(f"--config {key}: unknown discriminator setting; known: {', '.join(sorted(defaults))}")
            r.discriminator[sub] = _coerce(key, value, defaults[sub])
            try:
                _discriminator_defaults(r.discriminator)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"--config {key}: {exc}") from None
        elif not dot:
            defaults = _training_defaults(r.algo)
            if key not in defaults:
                raise ValueError(f"--config {key}: not a {r.algo.upper()} training setting (use model.*, env.*, discriminator.* or run.* for others)")
            current = r.training.get(key, defaults[key])
            r.training[key] = _coerce(key, value, current)
        else:
            raise ValueError(f"--config {key}: unknown group {group!r}; use model., env., discriminator. or run.")
    return r


# The paper's own actor-critic registers itself (--algo exposure, recipes demo-/fivek-exposure).
import policies.exposure_algo.registration  # noqa: E402,F401
