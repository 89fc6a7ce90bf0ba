"""``exposure`` joins the project's algorithms and recipes (``exposure train --algo exposure``).

:func:`register` (run on import, idempotent, no Ray needed) adds

* the algorithm to :mod:`tune_configs.algorithms` (``register_algorithm``): its config class,
  :data:`TRAINING_DEFAULTS` and :func:`customize`, which puts the deterministic-parameter module
  (:class:`~policies.exposure_algo.module.ExposureAlgoRLModule`) in place and points the learner
  at the env scorer's discriminator actor;
* two recipes to :mod:`tune_configs.recipes`: ``demo-exposure`` and ``fivek-exposure`` -- the
  ``demo`` / ``fivek`` recipes (same data, networks, reward weights, discriminator architecture
  and stopping rule) with this algorithm's own training settings, sampling layout (the driver's
  env runner with 64 trajectories in flight: one vector step per iteration gives the batch of
  64 states), ``algo = "exposure"`` and, for the demo, the fake-image feed of SPEC §6. ``exposure train --algo exposure`` picks them when no recipe is named.
"""

from __future__ import annotations

from typing import Any

#: ``.training(...)`` defaults of ``--algo exposure`` under :func:`tune_configs.algorithms.build_config`.
TRAINING_DEFAULTS: dict[str, Any] = {
    "train_batch_size_per_learner": 64,
    "pool_size": 128,
    "gamma": 1.0,
}

#: Training settings of the ``demo-exposure`` recipe (short CPU runs, a few hundred iterations
#: instead of the paper's 20,000): the paper's schedule ``lr * 0.1 ** (3 t / T)`` over the run's
#: budget with 10x its base rates, value 10x the policy's (SPEC §6 ratio), and the filter choice
#: at its own, higher rate -- a policy-gradient head needs many more steps than a few hundred at
#: the parameter heads' rate to learn, e.g., not to repeat a filter.
DEMO_TRAINING: dict[str, Any] = {
    "policy_lr": 1.5e-4,
    "value_lr": 1.5e-3,
    "choice_lr": 2e-3,
    "lr_decay": True,
    "entropy_weight": 0.05,
}
#: Env / discriminator changes of ``demo-exposure`` against ``demo``: the critic's fakes are all
#: scored images, from a pool of 8 iterations' states (SPEC §6; the PPO demo feeds only the
#: episodes' final images, a stale pool for 64 states per iteration).
DEMO_ENV: dict[str, Any] = {"critic_fakes": "all"}
DEMO_DISCRIMINATOR: dict[str, Any] = {"pool_size": 512}

#: Training settings of the ``fivek-exposure`` recipe: the paper's rates, schedule and length.
FIVEK_TRAINING: dict[str, Any] = {"lr_decay": True, "total_iterations": 20_000}


def customize(config):
    """Finish an ``ExposureConfig`` built by :func:`tune_configs.algorithms.build_config`."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from .module import ExposureAlgoRLModule

    scorer = dict((config.env_config or {}).get("scorer") or {})
    if scorer.get("kind") != "discriminator":
        raise ValueError(
            "the exposure algorithm needs the discriminator reward (env scorer kind 'discriminator', "
            f"--config env.scorer=discriminator), got {scorer.get('kind')!r}"
        )
    spec = config.rl_module_spec
    model = dict(getattr(spec, "model_config", None) or {})
    config.rl_module(rl_module_spec=RLModuleSpec(module_class=ExposureAlgoRLModule, model_config=model))
    if scorer.get("name"):
        config.training(discriminator_actor=scorer["name"])
    return config


def _recipe(base_name: str, training: dict[str, Any], env: dict | None = None, discriminator: dict | None = None, **changes):
    from tune_configs import recipes

    def make():
        base = recipes.RECIPES[base_name]()
        return base.replace(
            name=f"{base_name}-exposure",
            algo="exposure",
            training=dict(training),
            env={**base.env, **(env or {})},
            discriminator={**base.discriminator, **(discriminator or {})},
            num_env_runners=0,
            num_envs_per_env_runner=64,
            **changes,
        )

    make.__doc__ = f"The ``{base_name}`` recipe with the Exposure actor-critic (``--algo exposure``)."
    return make


def register() -> None:
    """Add ``exposure`` and its recipes to the project's registries (idempotent)."""
    from tune_configs import algorithms, recipes

    algorithms.register_algorithm(
        "exposure", "policies.exposure_algo.algorithm", "ExposureConfig", TRAINING_DEFAULTS, customize
    )
    recipes.RECIPES.setdefault("demo-exposure", _recipe("demo", DEMO_TRAINING, DEMO_ENV, DEMO_DISCRIMINATOR))
    recipes.RECIPES.setdefault("fivek-exposure", _recipe("fivek", FIVEK_TRAINING, stop_iters=20_000))


register()
