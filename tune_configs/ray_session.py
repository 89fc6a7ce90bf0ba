"""Ray start-up for a training run (or a Tune sweep): local, quiet, dashboard only on request."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from exposure_env.system import usable_cpus

#: Ray's object store for a run (bytes): the packs travel through it once per env runner.
OBJECT_STORE_BYTES = 2 << 30


def init_ray(s, temp_dir: str | None = None) -> bool:
    """Start Ray for the run settings ``s`` (:class:`tune_configs.settings.TrainSettings`: CPUs,
    GPUs, dashboard on 127.0.0.1) unless it is running already; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    kwargs: dict[str, Any] = dict(
        num_cpus=s.num_cpus or usable_cpus(),
        num_gpus=int(math.ceil(s.num_gpus)) if s.num_gpus else 0,
        object_store_memory=OBJECT_STORE_BYTES,
        logging_level=logging.ERROR,
        log_to_driver=False,
        include_dashboard=bool(s.dashboard),
    )
    if s.dashboard:
        kwargs["dashboard_host"] = "127.0.0.1"
    if temp_dir:
        kwargs["_temp_dir"] = temp_dir
    ray.init(**kwargs)
    return True


def quiet_rllib() -> None:
    """Only errors from RLlib's, Tune's and Ray's Python loggers."""
    for name in ("ray.rllib", "ray.tune", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
