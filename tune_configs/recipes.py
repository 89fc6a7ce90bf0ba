"""Training recipes: every setting of a run in one place.

A :class:`Recipe` groups the algorithm's ``.training(...)`` settings, the RLModule's
``model_config``, the environment's task and reward settings, the discriminator's config
(:class:`rewards.discriminator.DiscriminatorConfig`), the sampling layout and the run's
stopping / checkpoint / validation cadence. Each group holds only what the recipe changes: the
defaults live with the typed config of each group (see :mod:`tune_configs.overrides`, which
also applies ``--config KEY=VALUE`` overrides).

* ``demo``   -- the README's main job: the bundled demo set on a 2-CPU laptop in 10 minutes;
* ``laptop`` -- the same settings for a user's folders on a machine without a GPU;
* ``fivek``  -- the paper's FiveK recipe for a GPU (SPEC §5-7): paper-size networks, critic
  schedule and learning rates of §6;
* ``demo-ppo`` / ``fivek-ppo`` -- PPO variants (``--algo ppo``).

All default to the exposure algorithm (``policies.exposure_algo``) with the episode update;
:func:`default_recipe_name` picks one from the data source and the GPUs present.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recipe:
    """All settings of a training run (see module docstring); the run fields are ``run.*``."""

    name: str
    algo: str = "ppo"
    #: ``.training(...)`` settings over the algorithm's defaults (:func:`tune_configs.algorithms.training_defaults`).
    training: dict[str, Any] = field(default_factory=dict)
    #: ``model_config`` over the preset's (:func:`policies.rl_module.resolve_model_config`).
    model: dict[str, Any] = field(default_factory=dict)
    #: Task (:class:`exposure_env.env_config.EnvConfig`) and reward source (:class:`tune_configs.rllib_env.RewardSource`).
    env: dict[str, Any] = field(default_factory=dict)
    #: Over :class:`rewards.discriminator.DiscriminatorConfig`'s defaults.
    discriminator: dict[str, Any] = field(default_factory=dict)
    num_env_runners: int = field(default=1, metadata={"help": "sampling processes (0: sample in the driver)"})
    num_envs_per_env_runner: int = field(default=16, metadata={"help": "vectorised envs per runner"})
    stop_iters: int | None = field(default=None, metadata={"help": "stop after this many iterations"})
    stop_time: float | None = field(default=None, metadata={"help": "stop after this many seconds (10m, 1h)"})
    checkpoint_freq: int = field(default=10, metadata={"help": "iterations between checkpoints"})
    eval_every: int = field(default=5, metadata={"help": "iterations between validations"})
    keep_checkpoints: int = field(default=3, metadata={"help": "newest iter_* checkpoints kept"})
    #: Decay the policy lr exponentially to this fraction of ``training["lr"]`` by the end of the
    #: run (progress: :func:`tune_configs.run_loop.run_progress`, which also counts
    #: ``schedule_iterations``); None keeps it constant.
    lr_final_fraction: float | None = field(default=None, metadata={"help": "PPO/APPO: decay lr to this fraction by the end"})
    #: The lr decay and the entropy fade span at most this many iterations, then hold their final
    #: values for the rest of a longer run; None: they span the whole run. Without a cap a longer
    #: ``--stop-time`` stretches them and the policy wanders at a high rate (docs/benchmarks.md
    #: "Longer runs": 10-minute demo runs peaked at ~250 s, then lost ~1.5 dB of validation PSNR).
    schedule_iterations: int | None = field(default=None, metadata={"help": "lr / entropy schedules span at most this many iterations"})
    #: Also validate on this many fixed training-input crops against the training targets
    #: (in-distribution HI, ``eval_train/*``); 0 turns it off.
    train_eval_crops: int = field(default=64, metadata={"help": "training crops also validated (0: off)"})

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The CPU recipes' settings of the exposure algorithm (the defaults; chosen by
#: ``benchmarks/quality.py`` over seeds, see docs/benchmarks.md "Quality"): the episode update
#: (:func:`policies.exposure_algo.episode_update.episode_losses`), the filter choice at its own higher
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


#: The CPU recipes' schedules (``Recipe.schedule_iterations``): about 5 minutes on 2 CPUs
#: (~380 iterations), the schedule first measured; longer runs then train on at the final rate.
LAPTOP_SCHEDULE_ITERATIONS = 400


#: Every recipe's critic is fed the episodes' final images (as the 2018 release), not every
#: scored image (SPEC §6; ``RewardSource.critic_fakes`` default ``"all"``).
FINAL_FAKES = {"critic_fakes": "final"}


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
        env={"reward_scale": 0.1, **FINAL_FAKES},
        discriminator=dict(LAPTOP_DISCRIMINATOR),
        num_env_runners=0,
        num_envs_per_env_runner=64,
        stop_time=stop_time,
        schedule_iterations=LAPTOP_SCHEDULE_ITERATIONS,
        checkpoint_freq=50,
        eval_every=25,
    )


def demo_recipe() -> Recipe:
    """The README's main job: :func:`laptop_recipe` on the bundled demo set, 10 minutes: the
    schedules end at ~400 iterations (~5 minutes on 2 CPUs), and the second half gives
    ``checkpoints/best`` more chances (3 seeds: expert 24.15 / faded 28.60 dB held out, against
    23.67 / 28.20 dB for 5 minutes; docs/benchmarks.md "Longer runs")."""
    return laptop_recipe("demo", 10 * 60.0)


def demo_ppo_recipe(name: str = "demo-ppo", stop_time: float = 10 * 60.0) -> Recipe:
    """PPO on the demo set (``--algo ppo``): the earlier default, kept for comparison; also
    the paired (supervised) recipe on a CPU (``laptop-ppo``), whose reward is no critic's.
    The laptop recipe's reward and critic; PPO's rates and sampling on the ``small`` networks
    (the other PPO settings: ``tune_configs.algorithms.PPO_DEFAULTS``)."""
    return laptop_recipe(name, stop_time).replace(
        algo="ppo",
        training={"lr": 5e-4, "train_batch_size_per_learner": 640, "minibatch_size": 160, "num_epochs": 6, "entropy_coeff": 0.01},
        model={"preset": "small"},
        num_env_runners=1,
        num_envs_per_env_runner=32,
        eval_every=5,
        lr_final_fraction=0.2,
        schedule_iterations=None,
    )


def _default_runners(most: int = 8) -> int:
    """One env runner per CPU beyond the driver's, at most ``most``."""
    from exposure_env.system import usable_cpus

    return max(1, min(most, usable_cpus() - 1))


def fivek_recipe() -> Recipe:
    """The paper's recipe on FiveK for a GPU (SPEC §5-7): the exposure algorithm with its own
    defaults (the paper's rates and schedule over 20,000 iterations of 64 states, the episode
    update: ``ExposureConfig``), the paper-size networks and convolutional critic, the critic fed
    with finished images."""
    return Recipe(
        name="fivek",
        algo="exposure",
        model={"preset": "paper"},
        env=dict(FINAL_FAKES),
        num_env_runners=0,
        num_envs_per_env_runner=64,
        stop_iters=20_000,
        checkpoint_freq=500,
        eval_every=250,
    )


def fivek_ppo_recipe() -> Recipe:
    """PPO on the paper-size networks (``--fivek --algo ppo``)."""
    return fivek_recipe().replace(
        name="fivek-ppo",
        algo="ppo",
        training={"lr": 1.5e-5 * 10, "train_batch_size_per_learner": 4096, "minibatch_size": 512, "num_epochs": 4, "entropy_coeff": 0.05},
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


