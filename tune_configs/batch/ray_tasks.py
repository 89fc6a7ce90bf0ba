"""Batch executor: one Ray task per photo; each worker process loads the policy once."""

from __future__ import annotations

import logging
import zlib

import torch

from policies.policy_file import load_policy_bytes
from policies.retoucher import Retoucher

from .jobs import Job, PhotoResult, RetouchError
from .options import Options
from .stages import process_job

_WORKER_CACHE: dict[tuple, Retoucher] = {}


def _ray_process(policy_bytes: bytes, job: Job, opts: Options) -> PhotoResult:
    """Ray task body: load (once per worker process) and process one job."""
    torch.set_num_threads(1)
    key = (zlib.crc32(policy_bytes), len(policy_bytes), opts.backend)
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = Retoucher(load_policy_bytes(policy_bytes, opts.policy_file), opts.backend, workers=1)
    return process_job(_WORKER_CACHE[key], job, opts)


def run_ray_tasks(retoucher: Retoucher, jobs: list[Job], opts: Options, workers: int, bar) -> list[PhotoResult]:
    """One :class:`PhotoResult` per job (completion order); starts Ray with ``workers`` CPUs
    unless it runs already. A crashed worker fails its photo, not the run."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    data = retoucher.policy.raw
    if data is None:
        raise RetouchError("--ray needs a policy loaded from a .exposure file")
    task = ray.remote(num_cpus=1)(_ray_process)
    ref = ray.put(data)
    pending = {task.remote(ref, job, opts): job for job in jobs}
    out: list[PhotoResult] = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for r in ready:
            job = pending.pop(r)
            try:
                out.append(ray.get(r))
            except Exception as exc:  # a worker crash is one failed photo, not a failed run
                out.append(PhotoResult(job.input, "failed", f"{job.input}: worker error ({type(exc).__name__})"))
            bar.update(1)
    return out
