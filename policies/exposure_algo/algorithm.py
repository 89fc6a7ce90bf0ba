"""``Exposure``: the paper's own actor-critic (SPEC §6) as an RLlib algorithm (new API stack).

One training iteration (:meth:`Exposure.training_step`):

1. the env runners take ``train_batch_size`` env steps with the current policy (deterministic
   parameters, filter choice mixed with 5 % uniform): every image state they act from goes into
   the :class:`~policies.exposure_algo.replay.StatePool` (the 128 most recent states) and, through
   the env's ``DiscriminatorScorer`` (``feed_fakes``), into the discriminator's fake pool;
2. the learner(s) load the discriminator actor's current weights (``get_weights()``) into their
   frozen copy; the actor starts its ``train(iteration, total)`` (the n_critic updates of SPEC §6,
   in its own process, concurrently with the learner; only with ``train_discriminator``); the
   learner(s) take one update (``updates_per_iteration``) on ``train_batch_size`` (64) states
   drawn from the pool (:mod:`~policies.exposure_algo.learner`);
3. the new weights go to the env runners; the discriminator's ``train`` is awaited, so the
   policy always learns against the critic of the previous iteration.

The discriminator actor (:func:`rewards.actor.get_or_create_discriminator`) must exist before
the algorithm is built: it stays the one owner of the discriminator's weights, optimiser, fake
pool and checkpoints; the learner builds its frozen copy from the actor's own config. The env
must score with that actor (scorer kind ``discriminator``): the learner recomputes the same
reward differentiably.

Checkpoints hold the same networks as PPO's (:class:`~policies.exposure_algo.module.ExposureAlgoRLModule`,
a subclass with identical ``policy_heads`` / ``policy_outputs``), so ``exposure export`` /
``retouch`` treat them alike. The state pool and its sampling RNG are part of the algorithm's
state (:meth:`Exposure.get_state`, so of every checkpoint): a restored run draws from the same
states as the run it continues.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rewards import schedule
from rewards.actor import DEFAULT_NAME

from .learner import ITERATION_KEY, TOTAL_KEY, UPDATES, ExposureTorchLearner
from .module import ExposureAlgoRLModule
from .replay import StatePool

#: Name under which the algorithm is registered (``--algo exposure``, Tune).
ALGO_NAME = "exposure"
#: Result keys: the discriminator's train metrics, the state pool's size.
DISCRIMINATOR_RESULTS = "discriminator"
POOL_RESULTS = "state_pool"
#: Key of the state pool and its RNG in the algorithm's state (checkpoints).
POOL_STATE = "exposure_state_pool"


class ExposureConfig(AlgorithmConfig):
    """Configuration of :class:`Exposure` (defaults = SPEC §4, §6).

    ``training(...)`` settings beyond RLlib's (``gamma`` 1.0, ``train_batch_size_per_learner``
    64): ``total_iterations`` (T of the lr schedule and of the entropy term's progress; 20,000;
    a run loop may set it per iteration with :meth:`Exposure.set_progress`),
    ``policy_lr`` / ``value_lr`` (base rates, :func:`rewards.schedule.base_lrs`), ``choice_lr``
    (the filter choice's own rate; None = ``policy_lr``, the paper's), ``update`` (``"episode"``,
    this project's default: every state played to the end of its episode differentiably,
    :func:`~policies.exposure_algo.episode_update.episode_losses`; ``"td"``: the paper's one-step
    update, :func:`~policies.exposure_algo.td_update.exposure_losses`), ``all_filters`` (``td``
    only; off = the paper's sampled update; see
    :class:`~policies.exposure_algo.update_parts.UpdateSettings`), ``lr_decay``
    (``lr * 0.1 ** (decades t / T)``, ``lr_decay_decades`` 3 as in the paper), ``lr_after_schedule``
    (1.0: from iteration T on the rates are ``lr(T)`` times this), ``adam_betas`` (0.5, 0.9), ``pool_size`` (128),
    ``updates_per_iteration`` (1, the paper's: learner updates per iteration, each on its own
    batch from the pool; they run while the discriminator trains, so on a CPU-bound machine
    a few more cost little wall-clock time),
    ``entropy_weight`` (0.05, SPEC §4), ``bound_weight`` (keeps action means in [-1, 1]),
    ``discriminator_actor`` / ``discriminator_namespace`` (the actor) and
    ``train_discriminator`` (call the actor's ``train`` inside each iteration). The reward's
    other weights are the env's (``env_config``).
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or Exposure)
        lrs = schedule.base_lrs()
        self.gamma = 1.0
        self.train_batch_size_per_learner = 64
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 64
        self.total_iterations = 20_000
        self.policy_lr = lrs["policy"]
        self.value_lr = lrs["value"]
        self.choice_lr = None
        self.all_filters = False
        self.update = "episode"
        self.lr_decay = True
        self.lr_decay_decades = schedule.DECADES
        self.lr_after_schedule = schedule.LR_AFTER_SCHEDULE
        self.adam_betas = schedule.ADAM_BETAS
        self.pool_size = 128
        self.updates_per_iteration = 1
        self.entropy_weight = 0.05
        self.bound_weight = 1.0
        self.discriminator_actor = DEFAULT_NAME
        self.discriminator_namespace = None
        self.train_discriminator = True

    def training(
        self,
        *,
        total_iterations: int = NotProvided,
        policy_lr: float = NotProvided,
        value_lr: float = NotProvided,
        choice_lr: float | None = NotProvided,
        all_filters: bool = NotProvided,
        update: str = NotProvided,
        lr_decay: bool = NotProvided,
        lr_decay_decades: float = NotProvided,
        lr_after_schedule: float = NotProvided,
        adam_betas: tuple[float, float] = NotProvided,
        pool_size: int = NotProvided,
        updates_per_iteration: int = NotProvided,
        entropy_weight: float = NotProvided,
        bound_weight: float = NotProvided,
        discriminator_actor: str = NotProvided,
        discriminator_namespace: str | None = NotProvided,
        train_discriminator: bool = NotProvided,
        **kwargs,
    ) -> "ExposureConfig":
        super().training(**kwargs)
        given = dict(
            total_iterations=total_iterations,
            policy_lr=policy_lr,
            value_lr=value_lr,
            choice_lr=choice_lr,
            all_filters=all_filters,
            update=update,
            lr_decay=lr_decay,
            lr_decay_decades=lr_decay_decades,
            lr_after_schedule=lr_after_schedule,
            adam_betas=adam_betas,
            pool_size=pool_size,
            updates_per_iteration=updates_per_iteration,
            entropy_weight=entropy_weight,
            bound_weight=bound_weight,
            discriminator_actor=discriminator_actor,
            discriminator_namespace=discriminator_namespace,
            train_discriminator=train_discriminator,
        )
        for key, value in given.items():
            if value is not NotProvided:
                setattr(self, key, value)
        return self

    def validate(self) -> None:
        super().validate()
        if int(self.total_iterations) < 1:
            raise ValueError(f"exposure config: total_iterations must be >= 1, got {self.total_iterations}")
        for key in ("policy_lr", "value_lr") + (("choice_lr",) if self.choice_lr is not None else ()):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f"exposure config: {key} must be > 0, got {getattr(self, key)}")
        schedule.check_lr_after_schedule(float(self.lr_after_schedule), "exposure")
        if self.update not in UPDATES:
            raise ValueError(f"exposure config: update must be one of {', '.join(UPDATES)}, got {self.update!r}")
        if int(self.pool_size) < int(self.train_batch_size_per_learner):
            raise ValueError(
                f"exposure config: pool_size {self.pool_size} is smaller than the batch "
                f"train_batch_size_per_learner {self.train_batch_size_per_learner}"
            )
        if int(self.updates_per_iteration) < 1:
            raise ValueError(f"exposure config: updates_per_iteration must be >= 1, got {self.updates_per_iteration}")
        if len(tuple(self.adam_betas)) != 2:
            raise ValueError(f"exposure config: adam_betas must be two numbers, got {self.adam_betas}")
        if not self.enable_rl_module_and_learner or not self.enable_env_runner_and_connector_v2:
            raise ValueError("exposure config: the exposure algorithm runs on RLlib's new API stack only")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=ExposureAlgoRLModule)

    def get_default_learner_class(self):
        return ExposureTorchLearner


def finish_config(config: ExposureConfig) -> ExposureConfig:
    """Finish a config built by :func:`tune_configs.algorithms.build_config` (``--algo exposure``):
    the deterministic-parameter module (:class:`ExposureAlgoRLModule`, same ``model_config``) in
    place of the generic one, and the learner pointed at the env scorer's discriminator actor.
    ``ValueError`` unless the env scores with the discriminator (the learner recomputes that reward)."""
    scorer = dict((config.env_config or {}).get("scorer") or {})
    if scorer.get("kind") != "discriminator":
        raise ValueError(
            "the exposure algorithm needs the discriminator reward (env scorer kind 'discriminator', "
            f"--config env.scorer=discriminator), got {scorer.get('kind')!r}"
        )
    model = dict(getattr(config.rl_module_spec, "model_config", None) or {})
    config.rl_module(rl_module_spec=RLModuleSpec(module_class=ExposureAlgoRLModule, model_config=model))
    if scorer.get("name"):
        config.training(discriminator_actor=scorer["name"])
    return config


class Exposure(Algorithm):
    """The Exposure actor-critic (see the module docstring)."""

    @classmethod
    def get_default_config(cls) -> ExposureConfig:
        return ExposureConfig()

    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        self._pool = StatePool(self.config.pool_size)
        self._pool_rng = np.random.default_rng(self.config.seed)
        self._progress: tuple[int, int] | None = None
        actor = self.discriminator()
        d_config = ray.get(actor.get_state.remote())["config"]
        self.learner_group.foreach_learner(lambda learner: learner.build_critic(d_config))

    # --- checkpoint state: RLlib's plus the state pool and its RNG ---------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if components is None:  # the algorithm's own state (not one component's)
            state[POOL_STATE] = {"pool": self._pool.get_state(), "rng": self._pool_rng.bit_generator.state}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if POOL_STATE in state:
            self._pool.set_state(state[POOL_STATE]["pool"])
            self._pool_rng.bit_generator.state = state[POOL_STATE]["rng"]

    # --- what a run loop needs to know ----------------------------------------------------
    @property
    def trains_discriminator(self) -> bool:
        """True when :meth:`training_step` calls the actor's ``train`` itself (a run loop must not)."""
        return bool(self.config.train_discriminator)

    def set_progress(self, iteration: int, total: int) -> None:
        """Tell the next :meth:`train` its 0-based iteration and the run's length T (lr schedule,
        entropy fade, discriminator schedule); without it: ``self.iteration`` and ``total_iterations``."""
        self._progress = (int(iteration), max(1, int(total)))

    def discriminator(self):
        """Handle of the named discriminator actor (clear error when it does not exist)."""
        name, ns = self.config.discriminator_actor, self.config.discriminator_namespace
        try:
            return ray.get_actor(name, namespace=ns)
        except ValueError:
            raise ValueError(
                f"exposure algorithm: discriminator actor {name!r} not found; create it with "
                f"rewards.actor.get_or_create_discriminator before building the algorithm"
            ) from None

    # --- one iteration ----------------------------------------------------------------------
    def training_step(self) -> None:
        cfg = self.config
        iteration, total = self._progress or (int(self.iteration), int(cfg.total_iterations))
        self._progress = None
        actor = self.discriminator()

        # 1. env runners step the trajectories in flight: fresh image states for the pool
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=cfg.total_train_batch_size,
                sample_timeout_s=cfg.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
            self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        added = self._pool.add_episodes(episodes)
        if len(self._pool) == 0:
            return
        self.metrics.log_dict({"size": len(self._pool), "added": added}, key=POOL_RESULTS, window=1)

        # 2. the critic's weights to the learners; the actor trains while they update
        n, k = cfg.total_train_batch_size, int(cfg.updates_per_iteration)
        draws = [self._pool.sample(self._pool_rng, n) for _ in range(k)]
        states = {key: np.concatenate([d[key] for d in draws]) for key in ("image", "state")}
        weights = ray.get(actor.get_weights.remote())
        # (the actor serves the env runners' scores one call at a time: it trains only now)
        train_ref = actor.train.remote(iteration, total) if cfg.train_discriminator else None
        self.learner_group.foreach_learner(lambda learner: learner.set_critic_weights(weights))
        batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch({"obs": states})}, env_steps=len(states["image"]))
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=batch,
                minibatch_size=cfg.train_batch_size_per_learner if k > 1 else None,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                    ),
                    ITERATION_KEY: iteration,
                    TOTAL_KEY: total,
                },
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        # 3. new weights to the env runners; wait for the critic's n_critic updates
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies={DEFAULT_MODULE_ID},
                inference_only=True,
            )
        if train_ref is not None:
            d_metrics: dict[str, Any] = ray.get(train_ref)
            numeric = {k: float(v) for k, v in d_metrics.items() if isinstance(v, (int, float))}
            self.metrics.log_dict(numeric, key=DISCRIMINATOR_RESULTS, window=1)


def register() -> None:
    """Register the algorithm with Tune under :data:`ALGO_NAME` (idempotent)."""
    from ray.tune.registry import register_trainable

    register_trainable(ALGO_NAME, Exposure)
