"""A run's checkpoints: write, find, restore, and keep the best one by validation.

Names from :mod:`tune_configs.run_layout`. ``<run>/checkpoints/iter_NNNNNN/`` holds RLlib's ``save_to_path`` tree, the discriminator
(weights, optimiser, fake pool: ``discriminator.pt``) and the run info (``exposure_run.json``:
iteration, elapsed seconds, algorithm, recipe, data, seed, name). Only the newest
``keep_checkpoints`` ``iter_*`` folders are kept. ``checkpoints/best/`` is the checkpoint of the
best validation so far (:func:`selection_score`), replaced in place and never pruned: the one
to export.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .run_layout import BEST_CHECKPOINT, CHECKPOINT_PREFIX, CHECKPOINTS_DIR, DISCRIMINATOR_FILE, RUN_INFO_FILE, checkpoint_path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its newest checkpoint). ``ValueError`` otherwise."""
    p = Path(path)
    if (p / RUN_INFO_FILE).exists():
        return p
    ckpts = sorted((p / CHECKPOINTS_DIR).glob(CHECKPOINT_PREFIX + "*")) if p.is_dir() else []
    ckpts = [c for c in ckpts if (c / RUN_INFO_FILE).exists()]
    if ckpts:
        return ckpts[-1]
    raise ValueError(f"{path}: not a checkpoint (no {RUN_INFO_FILE}) nor a run folder with checkpoints")


def save_checkpoint(algo, disc, run_dir: Path, iteration: int, elapsed: float, settings, keep: int, name: str | None = None) -> Path:
    """``<run>/checkpoints/iter_NNNNNN`` (or ``checkpoints/<name>``, replaced in place):
    algorithm + discriminator actor ``disc`` (with its fake pool) + run info of ``settings``
    (a :class:`tune_configs.settings.TrainSettings`). Only the newest ``keep`` ``iter_*``
    checkpoints are kept; a named one is never pruned."""
    import ray

    path = checkpoint_path(run_dir, iteration, name).resolve()
    if path.exists():
        shutil.rmtree(path)
    algo.save_to_path(str(path))
    ray.get(disc.save.remote(str(path / DISCRIMINATOR_FILE), True))
    info = {
        "iteration": iteration,
        "elapsed_s": elapsed,
        "algo": settings.recipe.algo,
        "recipe": settings.recipe.to_dict(),
        "data": settings.data.to_dict(),
        "seed": settings.seed,
        "name": settings.run_name,
    }
    (path / RUN_INFO_FILE).write_text(json.dumps(info, indent=1, default=str))
    old = sorted((Path(run_dir) / CHECKPOINTS_DIR).glob(CHECKPOINT_PREFIX + "*"))
    for stale in old[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return path


def load_run_info(checkpoint: str | Path) -> dict:
    """The run info (``exposure_run.json``) of a checkpoint folder."""
    return json.loads((Path(checkpoint) / RUN_INFO_FILE).read_text())


def restore_checkpoint(algo, disc, checkpoint: Path) -> dict:
    """Restore the algorithm and the discriminator (weights, optimiser, pool) from ``checkpoint``;
    returns its run info."""
    import ray

    algo.restore_from_path(str(Path(checkpoint).resolve()))
    ray.get(disc.restore.remote(str(Path(checkpoint).resolve() / DISCRIMINATOR_FILE)))
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
        self.path = save(BEST_CHECKPOINT)
        self.value, self.iteration, self.scores = value, iteration, dict(scores)
        return True
