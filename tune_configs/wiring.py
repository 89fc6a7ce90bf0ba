"""From settings to the pieces of a run, before Ray starts: data packs, validators, the env's
``env_config``, the ``AlgorithmConfig`` and the discriminator's config.

:func:`prepare_run` runs the checks (:func:`tune_configs.settings.check_settings`), prepares the
data packs (:mod:`tune_configs.data`) and builds everything else; every configuration error
surfaces here as one ``ValueError``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .algorithms import build_config
from .data import PreparedData, prepare_data, validation_targets
from .recipes import Recipe, with_data_reward
from .rllib_env import RewardSource, task_config
from .run_layout import DATA_DIR
from .settings import TrainSettings, check_settings
from .validation import Validator

#: Training target crops the in-distribution validator compares against (at most).
TRAIN_EVAL_TARGETS = 256


def env_config_for(recipe: Recipe, data: PreparedData, discriminator_name: str) -> dict:
    """The ``env_config`` (:mod:`tune_configs.rllib_env`) of a recipe on prepared data: the
    recipe's task keys as they are, its :class:`RewardSource` as the scorer spec."""
    env = dict(recipe.env)
    kind = env.pop("scorer", RewardSource.scorer)
    feed = env.pop("critic_fakes", RewardSource.critic_fakes)
    if kind == "discriminator":
        scorer = {"kind": "discriminator", "name": discriminator_name, "feed": feed}
    elif kind == "statistics":
        scorer = {"kind": "statistics", "targets": str(data.targets)}
    else:
        scorer = {"kind": kind}
    return {"inputs": str(data.inputs), "scorer": scorer, **env}


def build_algorithm_config(s: TrainSettings, env_config: dict):
    """The ``AlgorithmConfig`` of the run settings ``s`` on ``env_config``."""
    r = s.recipe
    return build_config(r.algo, env_config, model_config=r.model, training=r.training, num_env_runners=r.num_env_runners,
                        num_envs_per_env_runner=r.num_envs_per_env_runner, num_gpus=s.num_gpus, seed=s.seed)


def make_validator(s: TrainSettings, data: PreparedData) -> Validator:
    """The fixed validation set's validator; with ``recipe.train_eval_crops`` its
    ``train_validator`` scores that many fixed training crops against the training targets."""
    from exposure_env.datasets.pack import ImagePack

    task = task_config(s.recipe.env)
    val = data.val_pack
    validator = Validator(
        val.images,
        validation_targets(val, ImagePack.load(data.targets)),
        paired=val.paired,
        filters=None if task.filters is None else list(task.filters),
        steps=task.max_steps,
        thumb_size=task.thumb_size,
    )
    if s.recipe.train_eval_crops:
        inputs, targets = ImagePack.load(data.inputs), ImagePack.load(data.targets)
        rng = np.random.default_rng(s.seed or 0)
        idx = np.sort(rng.choice(len(inputs), size=min(s.recipe.train_eval_crops, len(inputs)), replace=False))
        tidx = np.sort(rng.choice(len(targets), size=min(TRAIN_EVAL_TARGETS, len(targets)), replace=False))
        validator.train_validator = Validator(
            inputs.images[idx],
            targets.images[tidx],
            filters=validator.filters,
            steps=validator.steps,
            thumb_size=validator.thumb_size,
            strips=0,
        )
    return validator


@dataclass
class PreparedRun:
    """Everything a run needs before Ray starts."""

    data: PreparedData
    validator: Validator
    discriminator_name: str  # the run's own critic actor
    env_config: dict[str, Any]
    algorithm_config: Any  # ray.rllib AlgorithmConfig
    discriminator_config: Any  # rewards.discriminator.DiscriminatorConfig


def prepare_run(s: TrainSettings) -> PreparedRun:
    """Checks, data packs, validator, env_config, AlgorithmConfig and discriminator config
    (``ValueError`` on any bad setting)."""
    from rewards.discriminator import DiscriminatorConfig

    check_settings(s)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(s.data, Path(s.data_dir) if s.data_dir else s.run_dir / DATA_DIR)
    validator = make_validator(s, data)
    disc_name = f"exposure_discriminator_{s.run_name}_{uuid.uuid4().hex[:8]}"
    env_config = env_config_for(with_data_reward(s.recipe, s.data.scorer), data, disc_name)
    config = build_algorithm_config(s, env_config)
    try:
        disc_config = DiscriminatorConfig.from_any(s.recipe.discriminator)
    except TypeError as exc:
        raise ValueError(f"discriminator config: {exc}") from None
    return PreparedRun(data, validator, disc_name, env_config, config, disc_config)
