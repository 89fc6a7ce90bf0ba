"""The Exposure env as RLlib builds it: a serialisable ``env_config`` and the registered
vector-env factory (:func:`make_vector_env`, registered as :data:`ENV_NAME`).

``env_config`` keys (:data:`ENV_CONFIG_KEYS`):

``inputs``       the input :class:`ImagePack` (what the agent edits): an ``ObjectRef`` of it in
                 Ray's object store (what a training run passes: every env runner, on any node,
                 reads the one copy of its node, no file), the pack itself, or the path of its
                 ``.npz`` (a single machine; :func:`load_pack`)
``scorer``       ``{"kind": "discriminator", "name": actor name, "feed": "all" | "final"}`` (the
                 WGAN critic actor; the reward is computed inside the vector env, one actor call
                 per vector step, which with ``feed="all"`` also feeds the critic's fake pool;
                 ``"final"`` sends only episodes' final images, once per sample), ``{"kind": "statistics",
                 "targets": pack ObjectRef or path}`` or ``{"kind": "paired"}`` (see ``exposure_env.scorers``)
the task     :data:`TASK_KEYS`, the fields of :class:`exposure_env.env_config.EnvConfig` a run
             sets (``filters``, ``max_steps``, ``thumb_size``, ``reward_scale``,
             ``overexposure_weight``, ``reuse_penalty``): their defaults and checks are EnvConfig's.

A recipe's env group (``--config env.KEY=VALUE``) holds the same task keys plus the reward's
source, :class:`RewardSource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np
from gymnasium.vector import VectorWrapper

from exposure_env.env_config import EnvConfig

#: Name under which the vector env factory is registered with Ray Tune.
ENV_NAME = "exposure-vector-v0"
SCORER_KINDS = ("discriminator", "statistics", "paired")
#: What reaches the critic's fake pool: every scored image (SPEC §6) or episodes' final images.
FAKE_FEEDS = ("all", "final")
#: EnvConfig fields an ``env_config`` (and a recipe) sets; the env factory fills in the others.
TASK_KEYS = tuple(n for n in EnvConfig.names() if n not in ("source", "scorer", "targets"))
ENV_CONFIG_KEYS = ("inputs", "scorer", *TASK_KEYS)


@dataclass(frozen=True)
class RewardSource:
    """Where a run's reward comes from: a recipe's ``env.scorer`` and ``env.critic_fakes``."""

    scorer: Literal["discriminator", "statistics", "paired"] = field(
        default="discriminator", metadata={"help": "the reward's scorer: the critic actor, target statistics or paired truth"})
    critic_fakes: Literal["all", "final"] = field(
        default="all", metadata={"help": "the critic's fake images: every scored image (SPEC §6) or episodes' final ones"})


def task_config(settings: Mapping[str, Any]) -> EnvConfig:
    """The :class:`EnvConfig` of the :data:`TASK_KEYS` in ``settings`` (other keys ignored);
    ``ValueError`` (one line) on a bad value or an unknown filter."""
    try:
        return EnvConfig.from_mapping({k: settings[k] for k in TASK_KEYS if k in settings})
    except KeyError as exc:  # an unknown filter name
        raise ValueError(f"filters: {exc.args[0]}") from None


class _SpreadSeeds(VectorWrapper):
    """``reset(seed=s)`` seeds sub-env ``i`` with ``s * 4096 + i``.

    RLlib seeds env runner ``w`` with ``seed + w``; the plain vector env would give env
    ``i + 1`` of runner ``w`` the seed of env ``i`` of runner ``w + 1`` (identical photo streams).
    """

    def reset(self, *, seed=None, options=None):
        if isinstance(seed, (int, np.integer)):
            seed = [int(seed) * 4096 + i for i in range(self.num_envs)]
        return self.env.reset(seed=seed, options=options)


def load_pack(source):
    """The :class:`ImagePack` of an ``env_config`` entry: an ``ObjectRef`` (fetched from Ray's
    object store; its arrays are read-only views of the node's copy), a pack, or a ``.npz`` path."""
    from exposure_env.datasets.pack import ImagePack

    if isinstance(source, ImagePack):
        return source
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        return ImagePack.load(source)
    import ray

    if isinstance(source, ray.ObjectRef):
        pack = ray.get(source)
        if not isinstance(pack, ImagePack):
            raise ValueError(f"env_config: the object {source} is a {type(pack).__name__}, not an ImagePack")
        return pack
    raise ValueError(f"env_config: expected an ImagePack, its ObjectRef or a .npz path, got {type(source).__name__}")


def make_scorer(spec: Mapping[str, Any]):
    """Scorer from its ``env_config["scorer"]`` spec (see module docstring)."""
    kind = spec.get("kind")
    if kind == "discriminator":
        from rewards.scorer import DiscriminatorScorer

        feed = spec.get("feed", RewardSource.critic_fakes)
        if feed not in FAKE_FEEDS:
            raise ValueError(f"discriminator scorer: feed must be one of {FAKE_FEEDS}, got {feed!r}")
        # "all": the env's scoring call also fills the fake pool; "final": the callbacks send
        # only episodes' final images (policies.callbacks.ExposureCallbacks.on_sample_end)
        return DiscriminatorScorer(spec.get("name") or "exposure_discriminator", feed_fakes=feed == "all")
    if kind == "statistics":
        from exposure_env.scorers import StatisticsScorer

        return StatisticsScorer(load_pack(spec["targets"]))
    if kind == "paired":
        from exposure_env.scorers import PairedTargetScorer

        return PairedTargetScorer(spec.get("distance", "l1"))
    raise ValueError(f"scorer kind {kind!r} unknown; known: {', '.join(SCORER_KINDS)}")


def make_vector_env(cfg: Mapping[str, Any]):
    """The registered factory: ``ExposureVectorEnv`` with ``cfg["num_envs"]`` envs (see module docstring)."""
    import dataclasses

    import torch

    from exposure_env.vector_env import ExposureVectorEnv

    torch.set_num_threads(1)
    config = dataclasses.replace(task_config(cfg), source=load_pack(cfg["inputs"]), scorer=make_scorer(cfg["scorer"]))
    return _SpreadSeeds(ExposureVectorEnv(num_envs=int(cfg.get("num_envs", 1)), config=config, render_mode=None))


def register() -> str:
    """Register :func:`make_vector_env` as :data:`ENV_NAME` (idempotent); returns the name."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_vector_env)
    return ENV_NAME


def env_spaces(env_config: Mapping[str, Any]):
    """``(observation_space, action_space)`` of one env for ``env_config`` (no data loaded)."""
    from exposure_env import filters as filter_registry
    from exposure_env.spaces import action_space, observation_space

    task = task_config(env_config)
    flist = filter_registry.resolve(task.filters)
    return observation_space(len(flist), task.max_steps, task.thumb_size), action_space(flist)


def check_env_config(env_config: Mapping[str, Any]) -> None:
    """Fail fast (``ValueError``, one line) on an env_config the factory would reject."""
    unknown = sorted(set(env_config) - set(ENV_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"env_config: unknown key(s) {unknown}; known: {sorted(ENV_CONFIG_KEYS)}")
    if "inputs" not in env_config:
        raise ValueError("env_config: 'inputs' (the input image pack: ObjectRef or path) is required")
    scorer = env_config.get("scorer")
    if not isinstance(scorer, Mapping) or scorer.get("kind") not in SCORER_KINDS:
        raise ValueError(f"env_config: scorer must be a dict with kind in {SCORER_KINDS}, got {scorer!r}")
    if scorer["kind"] == "discriminator" and scorer.get("feed", RewardSource.critic_fakes) not in FAKE_FEEDS:
        raise ValueError(f"env_config: scorer feed must be one of {FAKE_FEEDS}, got {scorer.get('feed')!r}")
    if scorer["kind"] == "statistics" and "targets" not in scorer:
        raise ValueError("env_config: the statistics scorer needs 'targets' (the target pack: ObjectRef or path)")
    try:
        task_config(env_config)
    except ValueError as exc:
        raise ValueError(f"env_config: {exc}") from None
