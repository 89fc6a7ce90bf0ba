"""The discriminator as a named Ray actor: one copy of the critic shared by every env runner
and learner of a run, which owns its weights, Adam state and fake-image pool.

The actor body is :class:`rewards.critic_trainer.LocalDiscriminator` (same methods); this module
only adds Ray placement and restart behaviour. Created with ``max_restarts=-1`` and
``max_task_retries=-1``: when its process dies, Ray re-runs ``__init__`` with the same arguments,
which restores the last periodic checkpoint in ``state_dir`` (weights, optimiser, counters, RNG).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import ray
import torch

from exposure_env.datasets.pack import ImagePack

from .critic_trainer import LocalDiscriminator
from .discriminator import DiscriminatorConfig

#: Default actor name (one discriminator per Ray namespace).
DEFAULT_NAME = "exposure_discriminator"


class _DiscriminatorActorBody(LocalDiscriminator):
    """:class:`LocalDiscriminator` in an actor process: one torch thread on CPU."""

    def __init__(self, target_pack=None, config=None, state_dir=None, device: str = "cpu"):
        if torch.device(device).type == "cpu":
            torch.set_num_threads(1)
        super().__init__(target_pack, config, state_dir, device)

    def ready(self) -> dict[str, Any]:
        """Where the actor runs and whether it resumed from a checkpoint."""
        return {"device": str(self.device), "restored_from": self.restored_from, "pid": os.getpid(),
                "train_calls": self.train_calls, "total_updates": self.total_updates}


#: The Ray actor class (methods of :class:`LocalDiscriminator` plus ``ready()``).
DiscriminatorActor = ray.remote(_DiscriminatorActorBody)


def get_or_create_discriminator(
    name: str = DEFAULT_NAME,
    target_pack: ImagePack | str | os.PathLike | None = None,
    config: DiscriminatorConfig | Mapping[str, Any] | None = None,
    *,
    state_dir: str | os.PathLike | None = None,
    num_gpus: float = 0,
    num_cpus: float = 0,
    namespace: str | None = None,
    lifetime: str | None = None,
    max_restarts: int = -1,
    max_task_retries: int = -1,
    wait: bool = True,
):
    """Handle to the named discriminator actor, created if it does not exist yet.

    ``target_pack``: the target-style :class:`ImagePack` or (better for large packs: nothing
    is copied into Ray's object store) the path of its ``.npz``; required to create. ``state_dir``:
    where the actor checkpoints itself and resumes from after a restart (None: a restarted actor
    starts fresh). ``num_gpus > 0`` puts it on CUDA, else CPU with one thread. ``lifetime``:
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
    handle = DiscriminatorActor.options(
        name=name,
        namespace=namespace,
        lifetime=lifetime,
        get_if_exists=True,
        max_restarts=max_restarts,
        max_task_retries=max_task_retries,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    ).remote(target_pack, cfg, state_dir, "cuda" if num_gpus > 0 else "cpu")
    if wait:
        ray.get(handle.ready.remote())
    return handle


def kill_discriminator(name: str = DEFAULT_NAME, namespace: str | None = None) -> bool:
    """Kill the named actor for good (no restart); False when it did not exist."""
    try:
        handle = ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    ray.kill(handle, no_restart=True)
    return True
