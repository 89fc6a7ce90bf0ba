"""RLlib algorithm configs (new API stack) for the Exposure environment: PPO and APPO.

:func:`build_config` returns an ``AlgorithmConfig`` that trains
:class:`policies.rl_module.ExposureRLModule` on :class:`exposure_env.vector_env.ExposureVectorEnv`.
The env is registered with :func:`ray.tune.registry.register_env` under :data:`ENV_NAME`; its
factory builds the vector env from a plain, serialisable ``env_config``:

``inputs``       path of the input :class:`ImagePack` ``.npz`` (what the agent edits)
``scorer``       ``{"kind": "discriminator", "name": actor name, "feed": "all" | "final"}`` (the
                 WGAN critic actor; the reward is computed inside the vector env, one actor call
                 per vector step, which with ``feed="all"`` also feeds the critic's fake pool;
                 ``"final"`` sends only episodes' final images, once per sample), ``{"kind": "statistics",
                 "targets": pack path}`` or ``{"kind": "paired"}`` (see ``exposure_env.scorers``)
``filters``      short names (None: the paper's eight); ``max_steps`` (5); ``thumb_size`` (64)
``reward_scale`` / ``overexposure_weight`` / ``reuse_penalty``: SPEC §4 weights

Resources: env runners on CPU (one torch thread each), the learner on ``num_gpus`` GPUs
(``num_gpus_per_learner``; 0 = CPU in the driver process). Fault tolerance: failed env runners
are restarted, failed sub-environments recreated.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
from gymnasium.vector import VectorWrapper

#: Name under which the vector env factory is registered with Ray Tune.
ENV_NAME = "exposure-vector-v0"
#: Algorithms this module builds; more (the paper's actor-critic ``exposure``) join with
#: :func:`register_algorithm`.
ALGORITHMS = ["ppo", "appo"]
#: Keys an ``env_config`` may carry.
ENV_KEYS = {"inputs", "scorer", "filters", "max_steps", "thumb_size", "reward_scale", "overexposure_weight", "reuse_penalty"}
SCORER_KINDS = ("discriminator", "statistics", "paired")
#: What reaches the critic's fake pool: every scored image (SPEC §6) or episodes' final images.
FAKE_FEEDS = ("all", "final")

#: Per-algorithm training defaults (tuned for this env; recipes override them).
PPO_DEFAULTS: dict[str, Any] = {
    "lr": 3e-4,
    "gamma": 1.0,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 1.0,
    "vf_clip_param": 10.0,
    "num_epochs": 4,
    "train_batch_size_per_learner": 1000,
    "minibatch_size": 250,
    "grad_clip": 1.0,
}
APPO_DEFAULTS: dict[str, Any] = {
    "lr": 3e-4,
    "gamma": 1.0,
    "lambda_": 0.95,
    "clip_param": 0.3,
    "entropy_coeff": 0.01,
    "vf_loss_coeff": 1.0,
    "train_batch_size_per_learner": 500,
    "grad_clip": 1.0,
    "circular_buffer_num_batches": 4,
    "circular_buffer_iterations_per_batch": 2,
    "target_network_update_freq": 2,
}


#: Training keys that do not apply to an algorithm and are dropped when a recipe written for
#: another one carries them (APPO learns from its circular buffer: PPO's minibatching and
#: epochs have no meaning there, and RLlib's APPO validation rejects them).
IGNORED_TRAINING_KEYS: dict[str, frozenset[str]] = {"appo": frozenset({"minibatch_size", "num_epochs"})}

#: name -> (module path, config class name, training defaults, customize(config) or None).
_REGISTRY: dict[str, tuple[str, str, dict[str, Any], Callable | None]] = {
    "ppo": ("ray.rllib.algorithms.ppo", "PPOConfig", PPO_DEFAULTS, None),
    "appo": ("ray.rllib.algorithms.appo", "APPOConfig", APPO_DEFAULTS, None),
}


def register_algorithm(
    name: str, module: str, config_class_name: str, defaults: Mapping[str, Any], customize: Callable | None = None
) -> None:
    """Make ``name`` buildable by :func:`build_config`: its ``AlgorithmConfig`` subclass lives at
    ``module.config_class_name``; ``defaults`` are its ``.training(...)`` defaults; ``customize``
    (optional) receives the finished config and returns it changed (learner class, connectors...)."""
    _REGISTRY[name.lower()] = (module, config_class_name, dict(defaults), customize)
    if name.lower() not in ALGORITHMS:
        ALGORITHMS.append(name.lower())


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


class CriticTrigger:
    """Starts the discriminator's per-iteration training at the start of the learner update.

    PPO's iteration is: sample (env runners call the critic actor) -> learner update (driver)
    -> weight sync. Training the critic between iterations would add its time to every
    iteration; started when the learner update begins it runs on the actor's core while the
    learner works. The driver loop :meth:`arm` s the call before ``algo.train()``; the learner
    (:class:`CriticOverlapPPOLearner`, local to the driver process) fires it; the driver then
    :meth:`take` s the result ref (None if it never fired, e.g. remote learners: the driver
    trains the critic itself).
    """

    def __init__(self):
        self._args = None
        self._ref = None

    def arm(self, handle, iteration: int, total: int) -> None:
        self._args, self._ref = (handle, int(iteration), int(total)), None

    def fire(self) -> None:
        if self._args is not None:
            handle, it, total = self._args
            self._args, self._ref = None, handle.train.remote(it, total)

    def take(self):
        ref, self._args, self._ref = self._ref, None, None
        return ref


#: The process-wide trigger (the local learner and the driver loop share the process).
CRITIC_TRIGGER = CriticTrigger()


def _ppo_overlap_learner():
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    class CriticOverlapPPOLearner(PPOTorchLearner):
        """PPO's torch learner that fires :data:`CRITIC_TRIGGER` when an update starts."""

        def before_gradient_based_update(self, *, timesteps):
            super().before_gradient_based_update(timesteps=timesteps)
            CRITIC_TRIGGER.fire()

    CriticOverlapPPOLearner.__module__ = __name__
    CriticOverlapPPOLearner.__qualname__ = "CriticOverlapPPOLearner"
    return CriticOverlapPPOLearner


def __getattr__(name: str):  # lazy: importing this module must not import RLlib's learners
    if name == "CriticOverlapPPOLearner":
        cls = _ppo_overlap_learner()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


class _SpreadSeeds(VectorWrapper):
    """``reset(seed=s)`` seeds sub-env ``i`` with ``s * 4096 + i``.

    RLlib seeds env runner ``w`` with ``seed + w``; the plain vector env would give env
    ``i + 1`` of runner ``w`` the seed of env ``i`` of runner ``w + 1`` (identical photo streams).
    """

    def reset(self, *, seed=None, options=None):
        if isinstance(seed, (int, np.integer)):
            seed = [int(seed) * 4096 + i for i in range(self.num_envs)]
        return self.env.reset(seed=seed, options=options)


def make_scorer(spec: Mapping[str, Any]):
    """Scorer from its ``env_config["scorer"]`` spec (see module docstring)."""
    kind = spec.get("kind")
    if kind == "discriminator":
        from rewards.scorer import DiscriminatorScorer

        feed = spec.get("feed", "all")
        if feed not in FAKE_FEEDS:
            raise ValueError(f"discriminator scorer: feed must be one of {FAKE_FEEDS}, got {feed!r}")
        # "all": the env's scoring call also fills the fake pool; "final": the callbacks send
        # only episodes' final images (policies.callbacks.ExposureCallbacks.on_sample_end)
        return DiscriminatorScorer(spec.get("name") or "exposure_discriminator", feed_fakes=feed == "all")
    if kind == "statistics":
        from exposure_env.datasets.pack import ImagePack
        from exposure_env.scorers import StatisticsScorer

        return StatisticsScorer(ImagePack.load(spec["targets"]))
    if kind == "paired":
        from exposure_env.scorers import PairedTargetScorer

        return PairedTargetScorer(spec.get("distance", "l1"))
    raise ValueError(f"scorer kind {kind!r} unknown; known: {', '.join(SCORER_KINDS)}")


def make_vector_env(cfg: Mapping[str, Any]):
    """The registered factory: ``ExposureVectorEnv`` with ``cfg["num_envs"]`` envs (see module docstring)."""
    import torch

    from exposure_env.datasets.pack import ImagePack
    from exposure_env.vector_env import ExposureVectorEnv

    torch.set_num_threads(1)
    source = ImagePack.load(cfg["inputs"])
    env = ExposureVectorEnv(
        num_envs=int(cfg.get("num_envs", 1)),
        source=source,
        scorer=make_scorer(cfg["scorer"]),
        filters=cfg.get("filters"),
        max_steps=int(cfg.get("max_steps", 5)),
        thumb_size=int(cfg.get("thumb_size", 64)),
        reward_scale=float(cfg.get("reward_scale", 0.05)),
        overexposure_weight=float(cfg.get("overexposure_weight", 1.0)),
        reuse_penalty=float(cfg.get("reuse_penalty", 1.0)),
        render_mode=None,
    )
    return _SpreadSeeds(env)


def register() -> str:
    """Register :func:`make_vector_env` as :data:`ENV_NAME` (idempotent); returns the name."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_vector_env)
    return ENV_NAME


def env_spaces(env_config: Mapping[str, Any]):
    """``(observation_space, action_space)`` of one env for ``env_config`` (no data loaded)."""
    from exposure_env import filters as filter_registry
    from exposure_env.env import action_space, observation_space

    flist = filter_registry.resolve(env_config.get("filters"))
    obs = observation_space(len(flist), int(env_config.get("max_steps", 5)), int(env_config.get("thumb_size", 64)))
    return obs, action_space(flist)


def check_env_config(env_config: Mapping[str, Any]) -> None:
    """Fail fast (``ValueError``, one line) on an env_config the factory would reject."""
    from exposure_env import filters as filter_registry

    unknown = sorted(set(env_config) - ENV_KEYS)
    if unknown:
        raise ValueError(f"env_config: unknown key(s) {unknown}; known: {sorted(ENV_KEYS)}")
    if "inputs" not in env_config:
        raise ValueError("env_config: 'inputs' (path of the input image pack) is required")
    scorer = env_config.get("scorer")
    if not isinstance(scorer, Mapping) or scorer.get("kind") not in SCORER_KINDS:
        raise ValueError(f"env_config: scorer must be a dict with kind in {SCORER_KINDS}, got {scorer!r}")
    if scorer["kind"] == "discriminator" and scorer.get("feed", "all") not in FAKE_FEEDS:
        raise ValueError(f"env_config: scorer feed must be one of {FAKE_FEEDS}, got {scorer.get('feed')!r}")
    if scorer["kind"] == "statistics" and "targets" not in scorer:
        raise ValueError("env_config: the statistics scorer needs 'targets' (path of the target pack)")
    try:
        filter_registry.resolve(env_config.get("filters"))
    except KeyError as exc:
        raise ValueError(f"env_config filters: {exc.args[0]}") from None
    if int(env_config.get("max_steps", 5)) < 1:
        raise ValueError("env_config: max_steps must be >= 1")


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
    """An ``AlgorithmConfig`` for ``algo`` (``"ppo"`` / ``"appo"``) on the Exposure vector env.

    ``training``: overrides of the algorithm's ``.training(...)`` settings on top of
    :data:`PPO_DEFAULTS` / :data:`APPO_DEFAULTS`. ``model_config``: the RLModule's (see
    :mod:`policies.rl_module`; ``filters`` and ``thumb_size`` are filled from ``env_config``).
    ``num_gpus``: GPUs for the (single, local) learner. ``critic_overlap`` (PPO): use
    :class:`CriticOverlapPPOLearner` so the critic trains during the learner update (see
    :class:`CriticTrigger`). Raises ``ValueError`` on bad settings.
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
    model.setdefault("thumb_size", int(env_config.get("thumb_size", 64)))
    resolve_model_config(model)  # bad presets fail here, before Ray
    _, _, defaults, customize = _REGISTRY[algo]
    ignored = IGNORED_TRAINING_KEYS.get(algo, frozenset())
    train = {k: v for k, v in {**defaults, **dict(training or {})}.items() if k not in ignored}

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
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=ExposureRLModule, model_config=model))
        .training(**train, **({"learner_class": __getattr__("CriticOverlapPPOLearner")} if algo == "ppo" and critic_overlap else {}))
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
    return customize(config) if customize is not None else config


# The paper's own actor-critic registers itself (--algo exposure, recipes demo-/fivek-exposure).
import policies.exposure_algo.registration  # noqa: E402,F401
