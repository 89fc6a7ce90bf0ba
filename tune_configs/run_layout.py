"""The folder layout of a training run: every file and folder name, defined once.

``<results_dir>/<name>/`` (the run folder) holds::

    data/                      the image packs the env runners read (DATA_DIR)
    checkpoints/iter_NNNNNN/   RLlib's save_to_path tree + discriminator.pt + exposure_run.json
    checkpoints/best/          the checkpoint of the best validation (the one to export)
    discriminator_state/       the discriminator actor's own state, for restarts
    tb/                        TensorBoard event files
    strips/                    PNG step strips of the last validation
    trials/                    Ray Tune trials (``--tune``), each a run folder
    run.json                   the run's settings (recipe, data, env_config, seed)
    progress.csv, hi_curve.csv one row per iteration; validation HI vs wall-clock seconds
    summary.json               the closing summary (names the final checkpoint, its scores)

With ``--storage`` the same layout (less ``data/``, ``discriminator_state/`` and ``trials/``)
is copied to ``<storage>/<name>/`` (:mod:`tune_configs.storage`).

:func:`checkpoint_info` reads what a run left beside one of its checkpoints (the training
metadata that ``exposure export`` puts into a policy file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA_DIR = "data"
CHECKPOINTS_DIR = "checkpoints"
#: Periodic checkpoints are ``checkpoints/iter_NNNNNN`` (iteration, 6 digits).
CHECKPOINT_PREFIX = "iter_"
#: The checkpoint of the best validation so far, replaced in place.
BEST_CHECKPOINT = "best"
#: Run info inside each checkpoint: iteration, elapsed_s, algo, recipe, data, seed, name.
RUN_INFO_FILE = "exposure_run.json"
#: The discriminator (weights, optimiser, fake pool) inside each checkpoint.
DISCRIMINATOR_FILE = "discriminator.pt"
DISCRIMINATOR_STATE_DIR = "discriminator_state"
TENSORBOARD_DIR = "tb"
STRIPS_DIR = "strips"
TRIALS_DIR = "trials"
RUN_SETTINGS_FILE = "run.json"
PROGRESS_FILE = "progress.csv"
HI_CURVE_FILE = "hi_curve.csv"
SUMMARY_FILE = "summary.json"


def checkpoint_path(run_dir: str | Path, iteration: int | None = None, name: str | None = None) -> Path:
    """``<run>/checkpoints/<name>``, or ``<run>/checkpoints/iter_NNNNNN`` for ``iteration``."""
    if name is None and iteration is None:
        raise ValueError("checkpoint_path needs an iteration or a name")
    return Path(run_dir) / CHECKPOINTS_DIR / (name or f"{CHECKPOINT_PREFIX}{int(iteration):06d}")


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint of this layout lives in (``<run>/checkpoints/<ckpt>``)."""
    return Path(checkpoint).resolve().parent.parent


def _read_json(path: Path) -> dict:
    from policies.policy_file import PolicyFileError

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path}: expected a JSON object")
    return data


def checkpoint_info(checkpoint: str | Path) -> dict[str, Any]:
    """Training metadata a run wrote beside ``checkpoint`` ({} for a foreign checkpoint).

    The checkpoint's :data:`RUN_INFO_FILE` (``iteration`` becomes ``iterations``; elapsed
    time, algorithm, recipe, data, seed) and, when the run's :data:`SUMMARY_FILE` names this
    checkpoint, its final validation and baseline scores as ``metrics``. Unreadable JSON raises
    :class:`~policies.policy_file.PolicyFileError` (one line naming the file).
    """
    checkpoint = Path(checkpoint)
    info: dict[str, Any] = {}
    run_file = checkpoint / RUN_INFO_FILE
    if run_file.is_file():
        run = _read_json(run_file)
        if "iteration" in run:
            info["iterations"] = run.pop("iteration")
        info.update(run)
    summary_file = run_dir_of(checkpoint) / SUMMARY_FILE
    if summary_file.is_file():
        summary = _read_json(summary_file)
        named = summary.get("checkpoint")  # by name: the run folder may have moved (copied from --storage)
        if named and Path(str(named)).name == checkpoint.resolve().name:
            info["metrics"] = {"validation": summary.get("final_scores"), "baselines": summary.get("baseline_scores")}
    return info
