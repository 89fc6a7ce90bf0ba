"""Which jobs of a batch run: outputs never replace inputs, nor existing files unless asked."""

from __future__ import annotations

from pathlib import Path

from .jobs import Job, PhotoResult, RetouchError
from .options import Options


def complete(job: Job, opts: Options) -> bool:
    """All outputs of ``job`` exist (the JSON record is written last, so it was not interrupted)."""
    return all(Path(p).exists() for triple in opts.output_paths(job.base) for p in triple if p)


def plan_jobs(jobs: list[Job], opts: Options, *, overwrite: bool, skip_existing: bool) -> tuple[list[Job], list[PhotoResult]]:
    """``(jobs to run, skipped results)``. Raises :class:`RetouchError` when an output would
    overwrite an input, or when outputs exist and neither ``overwrite`` nor ``skip_existing``
    is set; ``skip_existing`` skips the jobs whose outputs are all present (:func:`complete`)."""
    input_paths = {Path(j.input) for j in jobs}
    planned = [Path(p) for j in jobs for triple in opts.output_paths(j.base) for p in triple if p]
    clash = [p for p in planned if p in input_paths]
    if clash:
        raise RetouchError(f"{clash[0]}: an output would overwrite an input; choose another output folder")
    existing = [p for p in planned if p.exists()]
    if existing and not (overwrite or skip_existing):
        raise RetouchError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; "
            "pass --overwrite to replace them or --skip-existing to keep them"
        )
    todo: list[Job] = []
    skipped: list[PhotoResult] = []
    for job in jobs:
        if skip_existing and complete(job, opts):
            skipped.append(PhotoResult(job.input, "skipped", "outputs exist"))
        else:
            todo.append(job)
    return todo, skipped
