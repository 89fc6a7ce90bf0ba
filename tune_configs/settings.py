"""A training run's settings and every check that can fail before Ray starts.

:class:`TrainSettings` holds one run: the data (:class:`tune_configs.data.DataSpec`), the
recipe (:class:`tune_configs.recipes.Recipe`, every algorithm setting) and where / how to run.
:func:`check_settings` raises ``ValueError`` (one line) on anything that would make the run
fail later; the run loop turns it into :class:`ConfigError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exposure_env.system import usable_cpus, usable_gpus

from .algorithms import check_algo
from .checkpoints import resolve_checkpoint
from .data import DataSpec, check_data_spec
from .storage import open_storage

if TYPE_CHECKING:  # only a type: the recipes do not depend on the run settings
    from .recipes import Recipe


class ConfigError(ValueError):
    """A run that must not start: bad settings, data or resources (raised before Ray starts)."""


@dataclass
class TrainSettings:
    """One training run: data, recipe (all algorithm settings) and where/how to run."""

    data: DataSpec
    recipe: Recipe
    name: str | None = None
    results_dir: str | Path = "results"
    num_gpus: float = 0
    seed: int | None = 0
    resume: str | Path | None = None
    dashboard: bool = False
    num_cpus: int | None = None  # CPUs given to a private Ray (default: this machine's; a joined cluster has its own)
    progress: bool = True  # print one line per iteration
    tensorboard: bool = True
    data_dir: str | Path | None = None  # where the packs go (default: <run>/data)
    #: Where checkpoints, logs and the summary are kept besides the run folder: a local folder
    #: or a pyarrow filesystem URI (s3://, gs://, file://; tune_configs.storage); None: only locally.
    storage: str | Path | Any | None = None
    #: The Ray cluster to join (``auto`` or ``HOST:PORT``; None: ``RAY_ADDRESS``, else a private
    #: Ray on this machine); see :func:`cluster_address` and :mod:`tune_configs.ray_session`.
    address: str | None = None
    dashboard_host: str = "127.0.0.1"  # where a private Ray's dashboard listens (--dashboard-host)

    @property
    def joins_cluster(self) -> bool:
        """True when the run joins an existing Ray cluster instead of starting its own."""
        return cluster_address(self.address) is not None

    @property
    def run_name(self) -> str:
        return self.name or f"{self.recipe.name}-{self.recipe.algo}"

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.run_name


def cluster_address(address: str | None) -> str | None:
    """The cluster a run joins: ``address``, else ``RAY_ADDRESS``; None (a private Ray) when
    neither is set or the value is ``local``."""
    value = (address if address is not None else os.environ.get("RAY_ADDRESS", "")).strip()
    return None if value in ("", "local") else value


def parse_duration(text: str | float | int | None) -> float | None:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds (> 0); None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    t = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], None)
    num = t[:-1] if scale else t
    try:
        value = float(num) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"--stop-time {text!r}: expected seconds or a duration like 10m / 1h") from None
    if value <= 0:
        raise ValueError(f"--stop-time {text!r}: must be positive")
    return value


def check_settings(s: TrainSettings) -> None:
    """Every check that can fail before Ray starts (``ValueError``, one line)."""
    r = s.recipe
    check_algo(r.algo)
    check_data_spec(s.data)
    if r.stop_iters is None and r.stop_time is None:
        raise ValueError("give a stopping rule: --stop-iters N and/or --stop-time DURATION")
    if r.stop_iters is not None and r.stop_iters < 1:
        raise ValueError(f"--stop-iters must be >= 1, got {r.stop_iters}")
    if r.stop_time is not None and r.stop_time <= 0:
        raise ValueError(f"--stop-time must be positive, got {r.stop_time}")
    for name in ("checkpoint_freq", "eval_every", "keep_checkpoints", "num_envs_per_env_runner"):
        if getattr(r, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(r, name)}")
    if r.num_env_runners < 0:
        raise ValueError(f"--num-env-runners must be >= 0, got {r.num_env_runners}")
    if r.schedule_iterations is not None and r.schedule_iterations < 1:
        raise ValueError(f"run.schedule_iterations must be >= 1 (or None: the whole run), got {r.schedule_iterations}")
    if s.num_gpus < 0:
        raise ValueError(f"--num-gpus must be >= 0, got {s.num_gpus}")
    if s.joins_cluster:  # the cluster's CPUs and GPUs count, not this machine's (checked once joined)
        if s.dashboard:
            raise ValueError("--dashboard starts a private Ray's dashboard; a cluster has its own (on its head node)")
    else:
        cpus = s.num_cpus or usable_cpus()
        if r.num_env_runners > cpus:
            raise ValueError(f"--num-env-runners {r.num_env_runners} needs {r.num_env_runners} CPUs; this machine has {cpus} "
                             "(join a cluster with --address for more)")
        gpus = usable_gpus()
        if s.num_gpus > gpus:
            raise ValueError(f"--num-gpus {s.num_gpus:g} requested but {gpus} CUDA GPU(s) are visible")
    if s.storage is not None:
        open_storage(s.storage)
    if s.resume is not None:
        resolve_checkpoint(s.resume)
    if s.dashboard:
        try:
            import ray.dashboard.optional_deps  # noqa: F401  (aiohttp & co. of ray[default])
        except ImportError:
            raise ValueError("--dashboard needs Ray's dashboard packages: pip install 'exposure-rl[dashboard]'") from None
