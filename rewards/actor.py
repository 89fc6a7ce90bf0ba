"""The discriminator as a named Ray actor: one copy of the critic shared by every env runner
and learner of a run, which owns its weights, Adam state and fake-image pool.

The actor body is :class:`rewards.critic_trainer.LocalDiscriminator` (same methods); this module
only adds Ray placement and restart behaviour. Created with ``max_restarts=-1`` and
``max_task_retries=-1``: when its process dies (or its node is lost), Ray re-runs ``__init__``
with the same arguments on any node that has the resources, and the actor restores its last
periodic state (weights, optimiser, counters, RNG) from one of two places:

* ``state_dir``: a folder it checkpoints itself into (one machine, or a disk every node shares);
* a **keeper** (``keeper=True``): a small actor pinned to the creating process's node (the
  driver's) that holds the latest state in memory, sent after every periodic checkpoint; a
  restart anywhere in the cluster asks it, no shared disk needed. It lives as long as its creator.

The target pack may be passed as an ``ObjectRef`` (Ray's object store; resolved again on a
restart), an :class:`ImagePack` or a ``.npz`` path (one machine).
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping

import ray
import torch

from exposure_env.datasets.pack import ImagePack

from .critic_trainer import LocalDiscriminator
from .discriminator import DiscriminatorConfig

#: Default actor name (one discriminator per Ray namespace).
DEFAULT_NAME = "exposure_discriminator"
#: ``restored_from`` of an actor that restored its state from its keeper.
FROM_KEEPER = "keeper"


def keeper_name(name: str) -> str:
    """Name of the state keeper of the discriminator actor ``name``."""
    return f"{name}.state"


class _StateKeeperBody:
    """The newest state a discriminator sent (``torch.save`` bytes; never unpickled here)."""

    def __init__(self):
        self.train_calls, self.blob = -1, None

    def put(self, train_calls: int, blob: bytes) -> None:
        if int(train_calls) >= self.train_calls:
            self.train_calls, self.blob = int(train_calls), blob

    def get(self) -> bytes | None:
        return self.blob


StateKeeper = ray.remote(num_cpus=0, max_restarts=0)(_StateKeeperBody)
#: What the creating process holds for each critic it made, so that a restart finds it: the
#: keeper's handle (a keeper lives while a handle to it does; the critic's borrowed one dies with
#: the critic) and the target pack's ObjectRef (Ray keeps a creation argument only while its
#: owner holds a reference). Dropped by :func:`kill_discriminator`.
_HELD: dict[tuple[str, str | None], tuple] = {}


class _DiscriminatorActorBody(LocalDiscriminator):
    """:class:`LocalDiscriminator` in an actor process: one torch thread on CPU; with a
    ``keeper`` its periodic state also goes there, and a (re)start restores the keeper's if newer."""

    def __init__(self, target_pack=None, config=None, state_dir=None, device: str = "cpu", keeper=None):
        if torch.device(device).type == "cpu":
            torch.set_num_threads(1)
        self._keeper = None  # restoring from state_dir (inside super().__init__) sends nothing
        super().__init__(target_pack, config, state_dir, device)
        self._keeper = keeper
        blob = None
        if keeper is not None:
            try:
                blob = ray.get(keeper.get.remote())
            except ray.exceptions.RayActorError:  # keeper gone (its node, i.e. the driver's, is lost): start fresh
                self._keeper = None
        if blob is not None:
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            if int(state["train_calls"]) > self.train_calls:
                self.set_state(state, _source="the critic's keeper")
                self.restored_from = FROM_KEEPER

    def _send_state(self) -> None:
        buf = io.BytesIO()
        torch.save(self.get_state(include_pool=self.config.checkpoint_pool), buf)
        ray.get(self._keeper.put.remote(self.train_calls, buf.getvalue()))  # kept before train() returns

    def train(self, iteration: int, total_iterations: int) -> dict[str, float]:
        metrics = super().train(iteration, total_iterations)
        if self._keeper is not None and self.train_calls % self.config.checkpoint_every == 0:
            self._send_state()
        return metrics

    def restore(self, path, _checkpoint: bool = True) -> None:
        super().restore(path, _checkpoint)
        if self._keeper is not None:
            self._send_state()

    def ready(self) -> dict[str, Any]:
        """Where the actor runs (device, pid, Ray node id) and whether it resumed from a checkpoint."""
        return {"device": str(self.device), "restored_from": self.restored_from, "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id(),
                "train_calls": self.train_calls, "total_updates": self.total_updates}


#: The Ray actor class (methods of :class:`LocalDiscriminator` plus ``ready()``).
DiscriminatorActor = ray.remote(_DiscriminatorActorBody)


def get_or_create_discriminator(
    name: str = DEFAULT_NAME,
    target_pack: ImagePack | str | os.PathLike | None = None,
    config: DiscriminatorConfig | Mapping[str, Any] | None = None,
    *,
    state_dir: str | os.PathLike | None = None,
    keeper: bool = False,
    num_gpus: float = 0,
    num_cpus: float = 0,
    namespace: str | None = None,
    lifetime: str | None = None,
    max_restarts: int = -1,
    max_task_retries: int = -1,
    wait: bool = True,
):
    """Handle to the named discriminator actor, created if it does not exist yet.

    ``target_pack``: the target-style :class:`ImagePack`, an ``ObjectRef`` of one (a cluster: the
    actor may start on any node) or the path of its ``.npz`` (one machine); required to create.
    ``state_dir``: where the actor checkpoints itself and resumes from after a restart;
    ``keeper``: also keep that state in a keeper actor on this process's node (module docstring);
    neither: a restarted actor starts fresh. ``num_gpus > 0`` puts it on CUDA, else CPU with
    one thread; ``num_cpus`` / ``num_gpus`` are Ray resources (Ray picks the node). ``lifetime``:
    None (dies with the creating job/worker) or ``"detached"``. With ``wait`` the call returns
    once the actor is constructed (construction errors surface here).
    """
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        pass
    if target_pack is None:
        raise ValueError(f"discriminator actor {name!r} does not exist and no target_pack was given to create it")
    if isinstance(target_pack, (str, os.PathLike)) and not os.path.isfile(target_pack):
        raise ValueError(f"{target_pack}: target image pack not found")
    if lifetime not in (None, "detached"):
        raise ValueError(f"discriminator actor: lifetime must be None or 'detached', got {lifetime!r}")
    cfg = DiscriminatorConfig.from_any(config)  # bad settings fail here, not inside the actor
    state_dir = None if state_dir is None else os.fspath(os.path.abspath(state_dir))
    keeper_handle = None
    if keeper:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        keeper_handle = StateKeeper.options(
            name=keeper_name(name), namespace=namespace, lifetime=lifetime, get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        ).remote()

    _HELD[(name, namespace)] = (keeper_handle, target_pack if isinstance(target_pack, ray.ObjectRef) else None)
    handle = DiscriminatorActor.options(
        name=name,
        namespace=namespace,
        lifetime=lifetime,
        get_if_exists=True,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    ).remote(target_pack, cfg, state_dir, "cuda" if num_gpus > 0 else "cpu", keeper_handle)
    if wait:
        ray.get(handle.ready.remote())
    return handle


def kill_discriminator(name: str = DEFAULT_NAME, namespace: str | None = None) -> bool:
    """Kill the named actor (and its keeper) for good (no restart); False when it did not exist."""
    _HELD.pop((name, namespace), None)
    try:
        ray.kill(ray.get_actor(keeper_name(name), namespace=namespace), no_restart=True)
    except ValueError:
        pass
    try:
        handle = ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    ray.kill(handle, no_restart=True)
    return True
