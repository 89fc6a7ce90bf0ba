"""RLlib algorithm configs (new API stack) for the Exposure environment: PPO, APPO and ``exposure``.

:func:`build_config` returns an ``AlgorithmConfig`` that trains
:class:`policies.rl_module.ExposureRLModule` on :class:`exposure_env.vector_env.ExposureVectorEnv`,
built in every env runner from a plain, serialisable ``env_config`` by the factory of
:mod:`tune_configs.rllib_env` (registered with Ray Tune as ``ENV_NAME``).

Resources: env runners on CPU (one torch thread each), the learner on ``num_gpus`` GPUs
(``num_gpus_per_learner``; 0 = CPU in the driver process). Fault tolerance: failed env runners
are restarted, failed sub-environments recreated.
"""

from __future__ import annotations

from typing import Any, Mapping

from .rllib_env import ENV_NAME, check_env_config, register, task_config

#: Loss settings PPO and APPO share (tuned for this env: undiscounted 5-step episodes, SPEC §4).
#: APPO runs on the PPO recipes (``default_recipe_name``), so one value serves both.
PPO_LOSS_DEFAULTS: dict[str, Any] = {
    "lr": 3e-4,
    "gamma": 1.0,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 1.0,
    "grad_clip": 1.0,
}
#: Per-algorithm training defaults (recipes override them).
PPO_DEFAULTS: dict[str, Any] = {
    **PPO_LOSS_DEFAULTS,
    "vf_clip_param": 10.0,
    "num_epochs": 4,
    "train_batch_size_per_learner": 1000,
    "minibatch_size": 250,
}
APPO_DEFAULTS: dict[str, Any] = {
    **PPO_LOSS_DEFAULTS,
    "train_batch_size_per_learner": 500,
    "circular_buffer_num_batches": 4,
    "circular_buffer_iterations_per_batch": 2,
    "target_network_update_freq": 2,
}


#: Training keys that do not apply to an algorithm and are dropped when a recipe written for
#: another one carries them (APPO learns from its circular buffer: PPO's minibatching and
#: epochs have no meaning there, and RLlib's APPO validation rejects them).
IGNORED_TRAINING_KEYS: dict[str, frozenset[str]] = {"appo": frozenset({"minibatch_size", "num_epochs"})}

#: name -> (module path, config class name, training defaults, name of a ``finish(config) ->
#: config`` function in that module or None). Modules are imported on use: importing this
#: module imports no RLlib. ``exposure`` (the paper's actor-critic) keeps its config class's
#: own defaults; its finish step puts its RLModule in place and names the critic actor.
_REGISTRY: dict[str, tuple[str, str, dict[str, Any], str | None]] = {
    "ppo": ("ray.rllib.algorithms.ppo", "PPOConfig", PPO_DEFAULTS, None),
    "appo": ("ray.rllib.algorithms.appo", "APPOConfig", APPO_DEFAULTS, None),
    "exposure": ("policies.exposure_algo.algorithm", "ExposureConfig", {}, "finish_config"),
}
#: Algorithms :func:`build_config` builds (``--algo``).
ALGORITHMS = list(_REGISTRY)


def check_algo(algo: str) -> str:
    """Lower-cased ``algo`` if known, else ``ValueError`` naming the choices."""
    name = str(algo).lower()
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {algo!r}; choose from {', '.join(ALGORITHMS)}")
    return name


def config_class(algo: str):
    """The ``AlgorithmConfig`` subclass of ``algo`` (imports RLlib, starts nothing)."""
    import importlib

    module, cls, _, _ = _REGISTRY[check_algo(algo)]
    return getattr(importlib.import_module(module), cls)


def _finish(algo: str, config):
    """``config`` through ``algo``'s finish function (see :data:`_REGISTRY`), if it has one."""
    import importlib

    module, _, _, finish = _REGISTRY[algo]
    return config if finish is None else getattr(importlib.import_module(module), finish)(config)


def training_defaults(algo: str) -> dict[str, Any]:
    """Every ``.training(...)`` field of ``algo`` with the value :func:`build_config` uses when a
    recipe does not set it: the algorithm's defaults here, else its config class's."""
    import inspect

    cfg = config_class(algo)()
    names: set[str] = set()
    for klass in type(cfg).__mro__:
        if "training" in vars(klass):
            names |= {p for p in inspect.signature(vars(klass)["training"]).parameters if p not in ("self", "kwargs")}
    return {**{n: getattr(cfg, n, None) for n in sorted(names)}, **_REGISTRY[check_algo(algo)][2]}


#: The ``.training(...)`` keys that are an algorithm's learning rates (``--tune`` scales them);
#: ``("lr",)`` for any algorithm not named here.
LEARNING_RATE_KEYS: dict[str, tuple[str, ...]] = {"exposure": ("policy_lr", "value_lr", "choice_lr")}


def learning_rate_keys(algo: str) -> tuple[str, ...]:
    """The training keys that set ``algo``'s learning rates (e.g. ``("lr",)`` for PPO)."""
    return LEARNING_RATE_KEYS.get(check_algo(algo), ("lr",))


def build_config(
    algo: str,
    env_config: Mapping[str, Any],
    *,
    model_config: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    num_env_runners: int = 1,
    num_envs_per_env_runner: int = 16,
    num_cpus_per_env_runner: float = 1,
    num_gpus: float = 0,
    seed: int | None = None,
    sample_timeout_s: float = 120.0,
    critic_overlap: bool = True,
):
    """An ``AlgorithmConfig`` for ``algo`` (:data:`ALGORITHMS`) on the Exposure vector env.

    ``training``: overrides of the algorithm's ``.training(...)`` settings on top of
    :data:`PPO_DEFAULTS` / :data:`APPO_DEFAULTS`. ``model_config``: the RLModule's (see
    :mod:`policies.rl_module`; ``filters`` and ``thumb_size`` are filled from ``env_config``).
    ``num_gpus``: GPUs for the (single, local) learner. ``critic_overlap`` (PPO): use
    :class:`policies.ppo_learner.CriticOverlapPPOLearner` so the critic trains during the
    learner update. Raises ``ValueError`` on bad settings.
    """
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from policies.callbacks import ExposureCallbacks
    from policies.rl_module import ExposureRLModule, resolve_model_config

    algo = check_algo(algo)
    check_env_config(env_config)
    if num_env_runners < 0 or num_envs_per_env_runner < 1:
        raise ValueError("num_env_runners must be >= 0 and num_envs_per_env_runner >= 1")
    if algo == "appo" and num_env_runners < 1:
        raise ValueError("APPO samples asynchronously: it needs num_env_runners >= 1")
    model = dict(model_config or {})
    model.setdefault("filters", env_config.get("filters"))
    model.setdefault("thumb_size", task_config(env_config).thumb_size)
    resolve_model_config(model)  # bad presets fail here, before Ray
    _, _, defaults, _ = _REGISTRY[algo]
    ignored = IGNORED_TRAINING_KEYS.get(algo, frozenset())
    train = {k: v for k, v in {**defaults, **dict(training or {})}.items() if k not in ignored}
    learner = {}
    if algo == "ppo" and critic_overlap:
        from policies.ppo_learner import CriticOverlapPPOLearner

        learner["learner_class"] = CriticOverlapPPOLearner

    register()
    config = (
        config_class(algo)()
        .environment(ENV_NAME, env_config=dict(env_config))
        .framework("torch")
        .env_runners(
            num_env_runners=int(num_env_runners),
            num_envs_per_env_runner=int(num_envs_per_env_runner),
            gym_env_vectorize_mode="vector_entry_point",
            num_cpus_per_env_runner=num_cpus_per_env_runner,
            num_gpus_per_env_runner=0,
            rollout_fragment_length="auto",
            sample_timeout_s=sample_timeout_s,
        )
        .learners(
            num_learners=0,
            num_gpus_per_learner=num_gpus,
            num_cpus_per_learner=0,  # the local learner lives in the driver process
            **learner,
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=ExposureRLModule, model_config=model))
        .training(**train)
        .callbacks(ExposureCallbacks)
        .fault_tolerance(
            restart_failed_env_runners=True,
            max_num_env_runner_restarts=100,
            delay_between_env_runner_restarts_s=5.0,
            restart_failed_sub_environments=True,
            num_consecutive_env_runner_failures_tolerance=20,
            env_runner_health_probe_timeout_s=60.0,
            env_runner_restore_timeout_s=600.0,
        )
        .reporting(metrics_num_episodes_for_smoothing=100)
        .debugging(seed=seed, log_level="ERROR")
    )
    return _finish(algo, config)
