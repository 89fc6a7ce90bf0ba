"""``exposure`` joins the project's algorithms and recipes (``exposure train --algo exposure``).

:func:`register` (run on import, idempotent, no Ray needed) adds the algorithm to
:mod:`tune_configs.algorithms` (``register_algorithm``): its config class,
:data:`TRAINING_DEFAULTS` and :func:`customize`, which puts the deterministic-parameter module
(:class:`~policies.exposure_algo.module.ExposureAlgoRLModule`) in place and points the learner
at the env scorer's discriminator actor. Its recipes (``demo``, ``laptop``, ``fivek``: the
project's defaults) live with the others in :mod:`tune_configs.recipes`.
"""

from __future__ import annotations

from typing import Any

#: ``.training(...)`` defaults of ``--algo exposure`` under :func:`tune_configs.algorithms.build_config`.
TRAINING_DEFAULTS: dict[str, Any] = {
    "train_batch_size_per_learner": 64,
    "pool_size": 128,
    "gamma": 1.0,
}

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


def register() -> None:
    """Add ``exposure`` to the project's algorithm table (idempotent)."""
    from tune_configs import algorithms

    algorithms.register_algorithm(
        "exposure", "policies.exposure_algo.algorithm", "ExposureConfig", TRAINING_DEFAULTS, customize
    )


register()
