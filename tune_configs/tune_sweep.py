"""``exposure train --tune``: a small Ray Tune grid over the learning rate and the critic's pace.

Each trial is the full :func:`tune_configs.run_loop.run_training` loop (reporting once per
iteration) on data prepared once for all trials. The learning-rate axis scales every rate the
chosen algorithm actually uses (:func:`tune_configs.algorithms.learning_rate_keys`: ``lr`` for
PPO / APPO; ``policy_lr``, ``value_lr``, ``choice_lr`` for ``exposure``); the other axis is the
discriminator's updates per iteration (``discriminator.n_critic``). Tune's own TensorBoard files
(tensorboardX, tags ``ray/tune/...``) go to ``<run>/tune/``; each trial writes its run folder
under ``<run>/trials/``. With ``--storage`` Tune gets ``<storage>/<run>`` as its ``storage_path``
(experiment state, ``tune/``) and each trial mirrors its run folder to ``<storage>/<run>/trials/``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from .algorithms import learning_rate_keys, training_defaults
from .data import prepare_data
from .overrides import apply_overrides
from .ray_session import init_ray, quiet_rllib
from .recipes import Recipe
from .run_layout import DATA_DIR, TRIALS_DIR
from .run_loop import run_training
from .settings import ConfigError, TrainSettings, check_settings
from .storage import open_storage
from .wiring import trial_bundles

#: The search: the algorithm's learning rates x 0.5, 1, 2 of the recipe's; critic updates per iteration.
TUNE_LR_FACTORS = (0.5, 1.0, 2.0)
TUNE_N_CRITIC = (2, 5)
#: Tune's name for the run (its folder ``<run>/tune``) and the metric it maximises.
TUNE_NAME = "tune"
TUNE_METRIC = "hi"


def scaled_rates(recipe: Recipe, factor: float) -> dict[str, float]:
    """The recipe's learning rates (those its algorithm uses; unset ones at the algorithm's
    default, ``None`` ones left out) times ``factor``."""
    defaults = training_defaults(recipe.algo)
    rates = {key: recipe.training.get(key, defaults.get(key)) for key in learning_rate_keys(recipe.algo)}
    return {key: float(rate) * float(factor) for key, rate in rates.items() if rate is not None}


def trial_recipe(recipe: Recipe, lr_scale: float, n_critic: int) -> Recipe:
    """``recipe`` with its learning rates scaled by ``lr_scale`` and ``n_critic`` critic updates."""
    rates = [f"{key}={rate!r}" for key, rate in scaled_rates(recipe, lr_scale).items()]
    return apply_overrides(recipe, [*rates, f"discriminator.n_critic={int(n_critic)}"])


def tune_storage(s: TrainSettings) -> dict:
    """``RunConfig`` keywords of where Tune keeps the sweep: ``<storage>/<run>`` on the run's
    storage filesystem, else the local run folder."""
    if s.storage is None:
        return {"storage_path": str(s.run_dir.resolve())}
    target = open_storage(s.storage).child(s.run_name)
    return {"storage_path": target.path, "storage_filesystem": target.fs}


def trial_storage(s: TrainSettings):
    """The storage root of the sweep's trials (``<storage>/<run>/trials``; None without storage)."""
    return None if s.storage is None else open_storage(s.storage).child(s.run_name, TRIALS_DIR)


def run_tune(s: TrainSettings, *, lr_factors: Sequence[float] = TUNE_LR_FACTORS, n_critic: Sequence[int] = TUNE_N_CRITIC,
             ray_temp_dir: str | None = None):
    """The grid ``lr_factors x n_critic``, one trial at a time. Returns ``(best config, best
    trial's last metrics)``; the config holds ``lr_scale``, ``n_critic`` and the scaled rates."""
    import ray
    from ray import tune

    run_dir = s.run_dir.resolve()
    data_dir = run_dir / DATA_DIR
    try:
        check_settings(s)
        if s.resume is not None:
            raise ValueError("--tune and --resume cannot be combined")
        prepare_data(s.data, data_dir)  # once, before Ray; trials reuse the packs
        trial_recipe(s.recipe, lr_factors[0], n_critic[0])  # validates the keys
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    trials_storage = trial_storage(s)

    def trainable(config):
        recipe = trial_recipe(s.recipe, config["lr_scale"], config["n_critic"])
        trial = dataclasses.replace(
            s, recipe=recipe, name=tune.get_context().get_trial_name(), results_dir=run_dir / TRIALS_DIR,
            progress=False, data_dir=data_dir, storage=trials_storage,
        )
        run_training(trial, report=lambda m: tune.report(m))

    started = init_ray(s, ray_temp_dir)
    quiet_rllib()
    try:
        bundles = trial_bundles(s)  # driver (+ local learner) and critic, learner actors, env runners
        tuner = tune.Tuner(
            tune.with_resources(trainable, tune.PlacementGroupFactory(bundles)),
            param_space={"lr_scale": tune.grid_search(list(lr_factors)), "n_critic": tune.grid_search(list(n_critic))},
            tune_config=tune.TuneConfig(metric=TUNE_METRIC, mode="max", max_concurrent_trials=1),
            run_config=tune.RunConfig(name=TUNE_NAME, verbose=1, **tune_storage(s)),
        )
        results = tuner.fit()
        best = results.get_best_result(metric=TUNE_METRIC, mode="max", filter_nan_and_inf=True)
        return {**best.config, **scaled_rates(s.recipe, best.config["lr_scale"])}, best.metrics
    finally:
        if started:
            ray.shutdown()
