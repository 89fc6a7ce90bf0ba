"""``LocalDiscriminator``: the critic's in-process trainer (no Ray here).

It owns the :class:`~rewards.discriminator.Discriminator`'s weights, Adam, a bounded
:class:`~rewards.fake_pool.FakePool` of generated images and the real target pack, runs the
n_critic schedule of SPEC §6 and checkpoints itself. The Ray actor in :mod:`rewards.actor` is a
thin wrapper around it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from exposure_env.atomic import atomic_write
from exposure_env.backend import is_torch
from exposure_env.datasets.pack import ImagePack

from . import schedule
from .discriminator import ARCHITECTURE_FIELDS, Discriminator, DiscriminatorConfig, critic_loss, load_weights
from .fake_pool import FakePool

#: File written in ``state_dir`` by periodic checkpoints.
CHECKPOINT_NAME = "discriminator.pt"


def _to_cpu(obj):
    if is_torch(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` / ``"auto"``: CUDA when visible, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LocalDiscriminator:
    """In-process critic trainer: weights, Adam, fake pool, real target crops, n_critic schedule.

    ``target_pack``: an :class:`ImagePack` (or the path of its ``.npz``) of target-style
    photos; may be None for a scoring-only instance. ``state_dir``: when given, the full state
    (pool optional) is written to ``state_dir/discriminator.pt`` every ``checkpoint_every``
    train calls (atomically) and restored from there on construction if the file exists.
    The live network is ``.model`` (a :class:`Discriminator`).
    """

    def __init__(
        self,
        target_pack: ImagePack | str | os.PathLike | None = None,
        config: DiscriminatorConfig | Mapping[str, Any] | None = None,
        state_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ):
        self.config = cfg = DiscriminatorConfig.from_any(config)
        self.device = resolve_device(device)
        if isinstance(target_pack, (str, os.PathLike)):
            target_pack = ImagePack.load(target_pack)
        if target_pack is not None and target_pack.crop_size < cfg.input_size:
            raise ValueError(f"target pack crops are {target_pack.crop_size}px, the discriminator needs {cfg.input_size}")
        self.pack = target_pack
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = Discriminator(cfg).to(self.device)
        if target_pack is not None:  # descriptor kinds learn the targets' statistics once
            s, o = cfg.input_size, (target_pack.crop_size - cfg.input_size) // 2
            crops = np.ascontiguousarray(target_pack.images[:, o : o + s, o : o + s])
            self.model.fit_targets(torch.from_numpy(crops).to(self.device))
        params = list(self.model.parameters())
        #: None for ``kind="gaussian"``: nothing to train.
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas) if params else None
        self.pool = FakePool(cfg.pool_size)
        self.rng = np.random.default_rng(cfg.seed)
        self.train_calls = 0
        self.total_updates = 0
        self.iteration = -1
        self.counters = {"score_calls": 0, "images_scored": 0, "fakes_added": 0}
        self.last_metrics: dict[str, float] = {}
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.restored_from: str | None = None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if self.checkpoint_path.exists():
                self.restore(self.checkpoint_path, _checkpoint=False)
                self.restored_from = str(self.checkpoint_path)

    # ---- scoring -------------------------------------------------------------------------
    def _check_images(self, images) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        s = self.config.input_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"discriminator: expected images of shape (N, {s}, {s}, 3), got {images.shape}")
        return images

    @torch.no_grad()
    def score(self, images: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` float32 -> ``(N,)`` float32 critic scores (eval mode, no grad)."""
        images = self._check_images(images)
        self.counters["score_calls"] += 1
        self.counters["images_scored"] += len(images)
        self.model.eval()
        out = np.empty(len(images), np.float32)
        b = self.config.score_batch
        for i in range(0, len(images), b):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + b])).to(self.device)
            out[i : i + b] = self.model(x).float().cpu().numpy()
        return out

    def add_fake(self, images: np.ndarray) -> int:
        """Append generated images to the fake pool; returns the pool size."""
        images = self._check_images(images)
        self.pool.add(images)
        self.counters["fakes_added"] += len(images)
        return len(self.pool)

    def score_and_add(self, images: np.ndarray) -> np.ndarray:
        """:meth:`score`, then :meth:`add_fake` of the same images (one call for the env)."""
        scores = self.score(images)
        self.add_fake(images)
        return scores

    # ---- training ------------------------------------------------------------------------
    def lr_at(self, iteration: int, total_iterations: int) -> float:
        """The lr of ``iteration`` of a schedule of ``total_iterations`` (``lr_decay``), times
        ``lr_after_schedule`` once the schedule has ended (a run longer than its schedules)."""
        cfg = self.config
        return schedule.run_learning_rate(cfg.lr, iteration, total_iterations, decay=cfg.lr_decay, after=cfg.lr_after_schedule)

    def update(self, alpha: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """One Adam step on ``batch_size`` real crops and ``batch_size`` pooled fakes."""
        if self.pack is None:
            raise ValueError("discriminator: no target pack, cannot train")
        n = self.config.batch_size
        real, _ = self.pack.sample(self.rng, n, self.config.input_size)
        fake = self.pool.sample(self.rng, n)
        if alpha is None:
            alpha = self.rng.random(n, dtype=np.float32)
        dev = self.device
        self.model.train()
        loss, metrics = critic_loss(
            self.model,
            torch.from_numpy(real).to(dev),
            torch.from_numpy(np.ascontiguousarray(fake)).to(dev),
            self.config.gp_weight,
            torch.from_numpy(np.asarray(alpha, np.float32)).to(dev),
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.total_updates += 1
        return metrics

    def train(self, iteration: int, total_iterations: int) -> dict[str, float]:
        """Run the n_critic updates of training iteration ``iteration`` (0-based) of
        ``total_iterations``, at ``lr(iteration)``; returns the mean metrics of the call.
        With an empty fake pool nothing is trained (``updates == 0``)."""
        iteration, total_iterations = int(iteration), int(total_iterations)
        if total_iterations <= 0:
            raise ValueError(f"discriminator.train: total_iterations must be > 0, got {total_iterations}")
        lr = self.lr_at(iteration, total_iterations)
        for group in self.optimizer.param_groups if self.optimizer else ():
            group["lr"] = lr
        n_updates = self.config.critic_updates(iteration) if len(self.pool) and self.optimizer else 0
        sums: dict[str, torch.Tensor] = {}
        for _ in range(n_updates):
            for k, v in self.update().items():
                sums[k] = sums[k] + v if k in sums else v
        metrics = {k: float(v) / n_updates for k, v in sums.items()}
        self.train_calls += 1
        self.iteration = iteration
        metrics.update(iteration=iteration, updates=n_updates, total_updates=self.total_updates,
                       lr=lr, pool_size=len(self.pool), train_calls=self.train_calls)
        self.last_metrics = metrics
        if self.state_dir is not None and self.train_calls % self.config.checkpoint_every == 0:
            self.checkpoint()
        return dict(metrics)

    def metrics(self) -> dict[str, float]:
        """Last train metrics plus call counters (score_calls, images_scored, fakes_added)."""
        return {**self.last_metrics, **self.counters, "pool_size": len(self.pool),
                "train_calls": self.train_calls, "total_updates": self.total_updates}

    # ---- state ---------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The critic's ``state_dict`` as CPU numpy arrays (load with :func:`load_weights`)."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        load_weights(self.model, weights)

    def get_state(self, include_pool: bool = False) -> dict[str, Any]:
        """Weights, optimiser, counters, RNG, config (and the fake pool) on CPU."""
        state = {
            "config": self.config.to_dict(),
            "model": _to_cpu(self.model.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()) if self.optimizer else None,
            "rng": self.rng.bit_generator.state,
            "train_calls": self.train_calls,
            "total_updates": self.total_updates,
            "iteration": self.iteration,
            "counters": dict(self.counters),
            "last_metrics": dict(self.last_metrics),
        }
        if include_pool:
            state["pool"] = self.pool.state()
        return state

    def set_state(self, state: Mapping[str, Any], _source: str = "state") -> None:
        """Inverse of :meth:`get_state`; the pool is replaced only when ``state`` has one."""
        saved = state.get("config", {})
        for name in ARCHITECTURE_FIELDS:
            want = getattr(self.config, name)
            got = tuple(saved[name]) if name == "channels" and name in saved else saved.get(name, want)
            if got != want:
                raise ValueError(f"{_source}: discriminator {name} is {got}, this one has {want}")
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.train_calls = int(state["train_calls"])
        self.total_updates = int(state["total_updates"])
        self.iteration = int(state["iteration"])
        self.counters.update(state.get("counters", {}))
        self.last_metrics = dict(state.get("last_metrics", {}))
        if state.get("pool") is not None:
            self.pool.load_state(state["pool"])

    def save(self, path: str | os.PathLike, include_pool: bool = True) -> str:
        """Atomically write the state to ``path`` (``torch.save``); returns the path."""
        path = Path(path)
        with atomic_write(path) as tmp:
            torch.save(self.get_state(include_pool=include_pool), tmp)
        return str(path)

    def restore(self, path: str | os.PathLike, _checkpoint: bool = True) -> None:
        """Load a file written by :meth:`save` (then re-checkpoint to ``state_dir`` if set)."""
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: not a discriminator checkpoint ({first})") from exc
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{path}: not a discriminator checkpoint (no 'model' entry)")
        self.set_state(state, _source=str(path))
        if _checkpoint and self.state_dir is not None:
            self.checkpoint()

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / CHECKPOINT_NAME

    def checkpoint(self) -> str | None:
        """Write the periodic checkpoint to ``state_dir`` (no-op without one)."""
        if self.state_dir is None:
            return None
        return self.save(self.checkpoint_path, include_pool=self.config.checkpoint_pool)
