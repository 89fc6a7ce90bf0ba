"""From settings to the pieces of a run: before Ray starts, data packs, validators, the env's
``env_config``, the ``AlgorithmConfig`` and the discriminator's config; once Ray is up, the data
in Ray's object store, the critic actor and where everything was placed.

:func:`prepare_run` runs the checks (:func:`tune_configs.settings.check_settings`), prepares the
data packs (:mod:`tune_configs.data`) and builds everything else; every configuration error
surfaces here as one ``ValueError``.

:func:`start_critic` (Ray up) puts the input and target packs into Ray's object store once, from
the driver (:func:`share_data`): the env runners get ``ObjectRef`` s in their ``env_config`` and the
critic actor one as its argument, so no process outside the driver reads a file and no node
needs the run folder; then it starts the critic as :func:`placement_for` says. On a cluster
(``--address``) the critic takes a CPU (and, with ``--num-gpus``, :data:`CRITIC_GPU_SHARE` of a
GPU, the learner the rest in a learner actor on a GPU node) and keeps its restart state in a
small actor on the driver's node instead of a folder (:mod:`rewards.actor`); on a private Ray
both stay as before (critic with no reserved CPU, learner in the driver). Env runners take one
CPU each anywhere in the cluster: their number is bounded by the cluster's CPUs, not this machine's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .algorithms import build_config
from .data import PreparedData, prepare_data, validation_targets
from .recipes import Recipe, with_data_reward
from .rllib_env import RewardSource, task_config
from .ray_session import check_reachable, cluster_totals, resolve_address
from .run_layout import DATA_DIR, DISCRIMINATOR_STATE_DIR
from .settings import TrainSettings, check_settings, cluster_address
from .validation import Validator

#: Training target crops the in-distribution validator compares against (at most).
TRAIN_EVAL_TARGETS = 256
#: On a cluster with ``--num-gpus g``: the critic actor's share of a GPU (at most ``g / 2``).
CRITIC_GPU_SHARE = 0.2
#: CPUs the critic actor reserves on a cluster (0 on a private Ray, whose cores go to env runners).
CRITIC_CPUS_ON_CLUSTER = 1.0


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


@dataclass(frozen=True)
class Placement:
    """Ray resources of a run's learner(s) and critic actor (Ray picks the nodes that have them)."""

    num_learners: int  # 0: one learner in the driver process
    learner_gpus: float  # per learner
    learner_cpus: float  # per learner actor
    critic_cpus: float
    critic_gpus: float
    critic_keeper: bool  # restart state kept on the driver's node (True) or in the run folder


def placement_for(s: TrainSettings) -> Placement:
    """Where the run ``s`` puts its learner and critic (module docstring): on a cluster with
    ``num_gpus = g > 0`` the critic gets ``min(CRITIC_GPU_SHARE, g / 2)`` GPU and one learner actor
    the rest, at most one GPU (one learner: a single GPU's worth is what it uses)."""
    if not s.joins_cluster:
        return Placement(0, float(s.num_gpus), 0.0, 0.0, 0.0, False)
    if s.num_gpus > 0:
        critic = min(CRITIC_GPU_SHARE, s.num_gpus / 2)
        return Placement(1, min(1.0, s.num_gpus - critic), 1.0, CRITIC_CPUS_ON_CLUSTER, critic, True)
    return Placement(0, 0.0, 0.0, CRITIC_CPUS_ON_CLUSTER, 0.0, True)


def trial_bundles(s: TrainSettings) -> list[dict[str, float]]:
    """Ray resources one run of ``s`` reserves, as placement-group bundles (a Tune trial): the
    driver with its learner (when local) and the critic, each learner actor, each env runner."""
    p = placement_for(s)
    head = {"CPU": 1.0 + p.critic_cpus, "GPU": p.critic_gpus + (0.0 if p.num_learners else p.learner_gpus)}
    learners = [{"CPU": p.learner_cpus, "GPU": p.learner_gpus}] * p.num_learners
    bundles = [head, *learners, *([{"CPU": 1.0}] * s.recipe.num_env_runners)]
    return [{k: v for k, v in b.items() if v} or {"CPU": 0.0} for b in bundles]


def build_algorithm_config(s: TrainSettings, env_config: dict):
    """The ``AlgorithmConfig`` of the run settings ``s`` on ``env_config`` (learners per :func:`placement_for`)."""
    r = s.recipe
    p = placement_for(s)
    config = build_config(r.algo, env_config, model_config=r.model, training=r.training, num_env_runners=r.num_env_runners,
                          num_envs_per_env_runner=r.num_envs_per_env_runner, num_gpus=p.learner_gpus, seed=s.seed)
    if p.num_learners:
        config.learners(num_learners=p.num_learners, num_gpus_per_learner=p.learner_gpus, num_cpus_per_learner=p.learner_cpus)
    return config


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
    if s.joins_cluster:  # an address that does not answer fails now, not after the data is prepared
        check_reachable(resolve_address(cluster_address(s.address)))
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


# --------------------------------------------------------------------------- once Ray is up
def shared_env_config(env_config: Mapping[str, Any], inputs, targets) -> dict:
    """``env_config`` with its pack paths replaced by ``inputs`` / ``targets`` (ObjectRefs)."""
    shared = {**env_config, "inputs": inputs}
    if shared.get("scorer", {}).get("kind") == "statistics":
        shared["scorer"] = {**shared["scorer"], "targets": targets}
    return shared


def share_data(run: PreparedRun) -> tuple[Any, Any]:
    """Put the run's input and target packs into Ray's object store (from the driver, once) and
    point its ``AlgorithmConfig`` at them; returns ``(inputs_ref, targets_ref)``. The packs stay
    there while the driver lives (it owns them); ``run.env_config`` keeps the paths (the record)."""
    import ray

    from exposure_env.datasets.pack import ImagePack

    inputs = ray.put(ImagePack.load(run.data.inputs))
    targets = ray.put(ImagePack.load(run.data.targets))
    run.algorithm_config.environment(env_config=shared_env_config(run.env_config, inputs, targets))
    return inputs, targets


def cluster_shortfall(s: TrainSettings) -> str | None:
    """One line when the Ray this run joined has fewer CPUs / GPUs than the run reserves
    (Ray then waits for nodes, e.g. from an autoscaler); None when they fit."""
    if not s.joins_cluster:
        return None
    p, have = placement_for(s), cluster_totals()
    cpus = s.recipe.num_env_runners + p.critic_cpus + p.num_learners * p.learner_cpus
    gpus = p.critic_gpus + p.num_learners * p.learner_gpus
    if have["CPU"] >= cpus and have["GPU"] >= gpus:
        return None
    return (f"the cluster has {have['CPU']:g} CPU(s), {have['GPU']:g} GPU(s) on {have['nodes']} node(s); this run reserves "
            f"{cpus:g} CPU(s) ({s.recipe.num_env_runners} env runner(s) + critic) and {gpus:g} GPU(s): Ray waits for more nodes")


def start_critic(s: TrainSettings, run: PreparedRun):
    """With Ray up: the run's data into the object store (:func:`share_data`) and its critic
    actor per :func:`placement_for`; returns the actor's handle. A restarted critic (killed, node
    lost) comes back with its last weights and optimiser state: from ``<run>/discriminator_state``
    on a private Ray, from its keeper on the driver's node on a cluster."""
    from rewards.actor import get_or_create_discriminator

    short = cluster_shortfall(s)
    if short and s.progress:
        print(f"note: {short}", flush=True)
    _, targets = share_data(run)
    p = placement_for(s)
    return get_or_create_discriminator(
        run.discriminator_name,
        targets,
        run.discriminator_config,
        state_dir=None if p.critic_keeper else str(s.run_dir / DISCRIMINATOR_STATE_DIR / run.discriminator_name),
        keeper=p.critic_keeper,
        num_gpus=p.critic_gpus,
        num_cpus=p.critic_cpus,
    )


def where_actors_run(algo, disc) -> dict[str, Any]:
    """Node ids of the driver, env runners, learner(s) and critic, and each node's address."""
    import ray

    def node(*_) -> str:
        return ray.get_runtime_context().get_node_id()

    group = algo.env_runner_group
    runners = group.foreach_env_runner(node, local_env_runner=False) if group.num_remote_env_runners() else []
    learners = [r.get() for r in algo.learner_group.foreach_learner(node)]
    critic = ray.get(disc.ready.remote())["node_id"]
    used = {node(), critic, *runners, *learners}
    return {
        "driver": node(), "env_runners": list(runners), "learners": learners, "critic": critic,
        "nodes": {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] in used},
    }
