"""A run's checkpoints: write, find, restore, and keep the best one by validation.

Names from :mod:`tune_configs.run_layout`. ``<run>/checkpoints/iter_NNNNNN/`` holds RLlib's
``save_to_path`` tree (the policy and value networks, every learner's optimiser states, the
env runners' connector states, RLlib's metrics and counters, ``training_iteration``; for
``--algo exposure`` also its state pool and sampling RNG, and each learner's RNG), the
discriminator (weights, Adam, fake pool, RNG, counters: ``discriminator.pt``, fetched from the
critic actor by the driver, so it works when the actor runs on another node) and the run info
(``exposure_run.json``: iteration, elapsed seconds, env steps, the best validation so far,
timings, algorithm, recipe, data, seed, name). A checkpoint is written under a temporary name
and renamed into place, so an interrupted write never leaves a half checkpoint behind. Only the
newest ``keep_checkpoints`` ``iter_*`` folders are kept. ``checkpoints/best/`` is the
checkpoint of the best validation so far (:func:`selection_score`), replaced in place and never
pruned: the one to export. :func:`resolve_checkpoint` also takes a storage URI
(:mod:`tune_configs.storage`): the checkpoint is downloaded first.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .run_layout import BEST_CHECKPOINT, CHECKPOINT_PREFIX, CHECKPOINTS_DIR, DISCRIMINATOR_FILE, RUN_INFO_FILE, checkpoint_path
from .storage import Storage, download_checkpoint, is_uri


def resolve_checkpoint(path: str | Path | Storage) -> Path:
    """A checkpoint folder, or a run folder (its newest checkpoint); a storage URI (or
    :class:`~tune_configs.storage.Storage`) of either is downloaded first. ``ValueError`` otherwise."""
    if isinstance(path, Storage) or is_uri(path):
        return download_checkpoint(path)
    p = Path(path)
    if (p / RUN_INFO_FILE).exists():
        return p
    ckpts = sorted((p / CHECKPOINTS_DIR).glob(CHECKPOINT_PREFIX + "*")) if p.is_dir() else []
    ckpts = [c for c in ckpts if (c / RUN_INFO_FILE).exists()]
    if ckpts:
        return ckpts[-1]
    raise ValueError(f"{path}: not a checkpoint (no {RUN_INFO_FILE}) nor a run folder with checkpoints")


def save_checkpoint(algo, disc, run_dir: Path, iteration: int, elapsed: float, settings, keep: int, name: str | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """``<run>/checkpoints/iter_NNNNNN`` (or ``checkpoints/<name>``, replaced in place):
    algorithm + discriminator actor ``disc`` (with its fake pool) + run info of ``settings``
    (a :class:`tune_configs.settings.TrainSettings`) and ``extra`` (the run loop's counters).
    Written under a temporary name, then renamed. Only the newest ``keep`` ``iter_*``
    checkpoints are kept; a named one is never pruned."""
    import ray
    import torch

    path = checkpoint_path(run_dir, iteration, name).resolve()
    tmp = path.parent / f".partial-{path.name}-{uuid.uuid4().hex[:8]}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        algo.save_to_path(str(tmp))
        torch.save(ray.get(disc.get_state.remote(True)), tmp / DISCRIMINATOR_FILE)
        info = {
            **(extra or {}),
            "iteration": iteration,
            "elapsed_s": elapsed,
            "algo": settings.recipe.algo,
            "recipe": settings.recipe.to_dict(),
            "data": settings.data.to_dict(),
            "seed": settings.seed,
            "name": settings.run_name,
        }
        (tmp / RUN_INFO_FILE).write_text(json.dumps(info, indent=1, default=str))
        old = path.parent / f".partial-old-{path.name}-{uuid.uuid4().hex[:8]}"
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in sorted((Path(run_dir) / CHECKPOINTS_DIR).glob(CHECKPOINT_PREFIX + "*"))[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return path


def load_run_info(checkpoint: str | Path) -> dict:
    """The run info (``exposure_run.json``) of a checkpoint folder."""
    return json.loads((Path(checkpoint) / RUN_INFO_FILE).read_text())


def load_discriminator_state(path: str | Path) -> dict:
    """The discriminator state saved in a checkpoint (``ValueError`` naming the file otherwise)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path}: not a discriminator checkpoint ({first})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a discriminator checkpoint (no 'model' entry)")
    return state


def restore_checkpoint(algo, disc, checkpoint: Path) -> dict:
    """Restore the algorithm and the discriminator (weights, optimiser, pool, RNG, counters)
    from ``checkpoint``; the actor then re-checkpoints its own restart state. Returns the run info."""
    import ray

    checkpoint = Path(checkpoint).resolve()
    algo.restore_from_path(str(checkpoint))
    ray.get(disc.set_state.remote(load_discriminator_state(checkpoint / DISCRIMINATOR_FILE)))
    ray.get(disc.checkpoint.remote())
    return load_run_info(checkpoint)


def selection_score(scores: dict[str, float]) -> float:
    """What picks a run's best checkpoint: the paired PSNR (dB) when the validation set has
    ground truth, else the histogram intersection (%) against the target photos."""
    if scores.get("psnr") is not None and math.isfinite(float(scores["psnr"])):
        return float(scores["psnr"])
    return float(scores.get("hi", float("-inf")))


@dataclass
class BestCheckpoint:
    """The best validation of a run so far and its checkpoint (``checkpoints/best``)."""

    value: float = float("-inf")
    iteration: int | None = None
    scores: dict[str, float] | None = None
    path: Path | None = None

    def offer(self, iteration: int, scores: dict[str, float], save: Callable[[str], Path]) -> bool:
        """When ``scores`` beat the best so far, ``save(BEST_CHECKPOINT)`` and remember them."""
        value = selection_score(scores)
        if not value > self.value:
            return False
        self.value, self.iteration, self.scores = value, iteration, dict(scores)
        self.path = save(BEST_CHECKPOINT)
        return True

    def to_info(self) -> dict[str, Any] | None:
        """What a checkpoint's run info keeps of it (None before the first validation)."""
        if self.iteration is None:
            return None
        return {"value": self.value, "iteration": self.iteration, "scores": self.scores}

    @classmethod
    def from_info(cls, info: dict[str, Any] | None, run_dir: Path) -> "BestCheckpoint":
        """The best validation a resumed run had (``to_info``), its checkpoint in ``run_dir``."""
        if not info:
            return cls()
        path = checkpoint_path(run_dir, name=BEST_CHECKPOINT)
        return cls(float(info["value"]), int(info["iteration"]), dict(info.get("scores") or {}), path if path.exists() else None)
