"""Batch executor: ``workers`` photos at a time on threads, each photo start to end."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

from policies.retoucher import Retoucher

from .jobs import Job, PhotoResult
from .options import Options
from .stages import process_job


def run_threaded(retoucher: Retoucher, jobs: list[Job], opts: Options, workers: int, bar) -> list[PhotoResult]:
    """One :class:`PhotoResult` per job (completion order); ``workers > 1`` shares the cores
    among the photos in flight (``opts.apply_workers`` apply threads each). ``bar``: ``update(1)``."""
    retoucher.workers = opts.apply_workers if workers > 1 else retoucher.workers
    out: list[PhotoResult] = []
    if workers <= 1:
        for job in jobs:
            out.append(process_job(retoucher, job, opts))
            bar.update(1)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(process_job, retoucher, job, opts) for job in jobs]
        for fut in as_completed(futures):
            out.append(fut.result())
            bar.update(1)
    return out
