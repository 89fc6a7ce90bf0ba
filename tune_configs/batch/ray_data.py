"""Batch retouching on Ray Data: a folder streamed through a Ray cluster (``exposure retouch --ray/--address``).

Four streaming operators (:mod:`tune_configs.batch.ray_stages` has their code)::

    read (tasks on the driver's node: file -> bytes)
      -> thumbnails (tasks: decode the bytes, the S x S thumbnails of the decision views)
      -> decide (an actor pool holding the policy: thumbnails -> the photo's edit lists)
      -> render + encode (tasks: decode again, full-size apply, encode every output file)
      -> the driver writes the returned bytes into the output folder (atomic writes)

**Where files are read and written.** Only the driver's node touches the input and output
folders: the read tasks are pinned to it, and the driver itself writes. Photos travel to the
other nodes as their file bytes and come back as encoded output bytes, through Ray's object
store, so a cluster needs no shared disk (run ``exposure retouch`` on a cluster node: the head,
or the node holding the photos). Workers decode and encode in a private staging folder they
delete after each photo. The policy file's bytes reach the actors and tasks through the object
store too. A photo is decoded twice (thumbnail, full size): its file bytes are smaller than the
float32 image (12 bytes per pixel) that would travel otherwise.

**Memory.** Ray Data's streaming executor keeps every operator's queue within its share of the
object store and runs at most as many tasks as the cluster has resources (plus
``read_concurrency`` reads and ``actors`` actors); the driver consumes results as they come. So
the photos in flight are bounded by the cluster, not by the folder: a worker task holds one
decoded photo at a time.

**Same safety and files as the local run.** The driver plans the jobs first (inputs never
written, no overwrite without ``--overwrite``, ``--skip-existing``) and writes only planned
paths; each output is written atomically, the JSON record last, so ``--skip-existing`` resumes
an interrupted run. Bad photos fail with the local run's one-line reasons; a block lost to a
crashed worker fails its photos, not the run.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from typing import Callable

from exposure_env.atomic import atomic_write
from exposure_env.system import usable_cpus
from policies.retoucher import Retoucher

from .jobs import Job, PhotoResult, RetouchError
from .options import Options


@dataclass
class RayDataOptions:
    """How a Ray Data retouch uses the cluster (resources are Ray's logical CPUs / GPUs).

    ``address``: a running cluster (``auto``, ``HOST:PORT``); ``None`` = ``RAY_ADDRESS`` when
    set, else a private local Ray with ``cpus`` CPUs (default: every usable core, at least 2).
    ``actors``: the most policy actors (``actor_cpus`` 0 by default: deciding on a thumbnail
    is light, and 0 leaves whole CPUs to the tasks); ``actor_gpus``: GPUs per actor, which
    places the actors on GPU nodes (the exported policy itself runs on the CPU there); with the
    ``cupy`` backend each render task takes ``actor_gpus`` (or 1) GPUs and applies the edits
    on the GPU. ``thumb_cpus`` / ``render_cpus``: CPUs per thumbnail / render task (equal
    sizes: a large request would wait behind small ones). ``batch_size``: photos per actor
    call. ``read_concurrency``: reads in flight.
    """

    address: str | None = None
    cpus: int | None = None
    actors: int = 2
    actor_cpus: float = 0.0
    actor_gpus: float = 0.0
    thumb_cpus: float = 1.0
    render_cpus: float = 1.0
    batch_size: int = 4
    read_concurrency: int = 2

    def check(self) -> None:
        """``RetouchError`` naming the setting for a value Ray cannot use."""
        if self.cpus is not None and int(self.cpus) < 1:
            raise RetouchError(f"--workers must be at least 1, got {self.cpus}")
        if int(self.actors) < 1 or int(self.batch_size) < 1 or int(self.read_concurrency) < 1:
            raise RetouchError(f"Ray Data retouch: actors, batch_size and read_concurrency must be at least 1 ({self})")
        if min(self.actor_cpus, self.actor_gpus) < 0 or min(self.thumb_cpus, self.render_cpus) <= 0:
            raise RetouchError(f"Ray Data retouch: actor resources must not be negative, thumb_cpus and render_cpus "
                               f"must be positive ({self})")


def connect(options: RayDataOptions) -> bool:
    """Join the cluster at ``options.address`` / ``RAY_ADDRESS`` (no resource arguments: the
    cluster has its own), or start a private local Ray with ``options.cpus`` CPUs (at least 2),
    loopback only, token authentication on (:func:`tune_configs.ray_session.connect_ray`);
    True when this call started or joined it."""
    from tune_configs.ray_session import connect_ray

    return connect_ray(options.address, num_cpus=max(2, int(options.cpus or usable_cpus())))


def build_dataset(jobs: list[Job], opts: Options, retoucher: Retoucher, options: RayDataOptions, policy_ref):
    """The lazy dataset of result rows (:data:`tune_configs.batch.ray_stages.RESULT_COLUMNS`)."""
    import ray
    from .ray_stages import PolicyActor, read_bytes, render_encode, thumbnails

    items = [{"input": j.input, "base": j.base, "key": j.key} for j in jobs]
    here = {ray._raylet.RAY_NODE_ID_KEY: ray.get_runtime_context().get_node_id()}  # as Ray Data's local:// reads
    box = (policy_ref,)  # in a tuple: the tasks fetch the bytes themselves, once per process
    arrow = dict(batch_format="pyarrow", zero_copy_batch=True)
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map_batches(read_bytes, batch_size=1, num_cpus=0, label_selector=here,
                        compute=ray.data.TaskPoolStrategy(size=int(options.read_concurrency)), **arrow)
    ds = ds.map_batches(thumbnails, batch_size=1, num_cpus=options.thumb_cpus,
                        fn_kwargs={"opts": opts, "size": retoucher.policy.thumb_size}, **arrow)
    ds = ds.map_batches(PolicyActor, batch_size=options.batch_size, num_cpus=options.actor_cpus,
                        num_gpus=options.actor_gpus or None,
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=int(options.actors)),
                        fn_constructor_kwargs={"policy": box, "opts": opts}, **arrow)
    render_gpus = (options.actor_gpus or 1.0) if opts.backend == "cupy" else None
    threads = max(1, int(options.render_cpus))
    return ds.map_batches(render_encode, batch_size=1, num_cpus=options.render_cpus, num_gpus=render_gpus,
                          fn_kwargs={"opts": opts, "policy": box, "threads": threads}, **arrow)


def _write(job: Job, opts: Options, blob: bytes) -> list[str]:
    """Write a photo's returned files (atomic each, in order: the JSON record last) under its
    planned output paths only; returns the paths."""
    planned = {p for triple in opts.output_paths(job.base) for p in triple if p}
    paths = []
    for suffix, data in pickle.loads(blob):
        path = job.base + suffix
        if path not in planned:  # never anything the plan did not check
            raise RetouchError(f"{path}: not an output this run planned; nothing written for {job.input}")
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        paths.append(path)
    return paths


def run_ray_data(retoucher: Retoucher, jobs: list[Job], opts: Options, options: RayDataOptions,
                 bar=None) -> list[PhotoResult]:
    """Retouch ``jobs`` on Ray Data (see the module docstring); one :class:`PhotoResult` per
    job, in completion order. ``bar``: a progress bar with ``update(1)``. Shuts down the Ray
    it started."""
    import ray

    data = retoucher.policy.raw
    if data is None:
        raise RetouchError("the Ray retoucher needs a policy loaded from a .exposure file")
    options.check()
    started = connect(options)
    import ray.data  # configures Ray Data's loggers: quieten them afterwards

    loggers = {name: logging.getLogger(name) for name in ("ray.data", "ray")}
    levels = {name: lg.level for name, lg in loggers.items()}
    for lg in loggers.values():
        lg.setLevel(logging.ERROR)
    try:
        ds = build_dataset(jobs, opts, retoucher, options, ray.put(data))
        ctx = ds.context
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.enable_auto_log_stats = False
        ctx.max_errored_blocks = len(jobs)  # a lost block fails its photos below, not the run
        ctx.target_max_block_size = 1 << 20  # a photo per block: after the batched actors, a render task per photo
        return _collect(ds, {j.input: j for j in jobs}, opts, bar.update if bar is not None else None)
    finally:
        for name, lg in loggers.items():
            lg.setLevel(levels[name])
        if started:
            ray.shutdown()


def _collect(ds, pending: dict[str, Job], opts: Options, tick: Callable[[int], object] | None) -> list[PhotoResult]:
    """Consume the result rows, write each photo's files, account for every job."""
    results: list[PhotoResult] = []
    for row in ds.iter_rows():
        job = pending.pop(row["input"], None)
        if job is None:
            continue
        reason = row["error"]
        if not reason:
            try:
                results.append(PhotoResult(job.input, "done", "", _write(job, opts, row["files"]), row["seconds"]))
            except OSError as exc:
                reason = f"{job.input}: cannot write its outputs ({exc.strerror or exc})"
        if reason:
            results.append(PhotoResult(job.input, "failed", reason, [], row["seconds"]))
        if tick:
            tick(1)
    for job in pending.values():
        results.append(PhotoResult(job.input, "failed", f"{job.input}: lost on the Ray cluster (a worker failed; see the Ray logs)"))
        if tick:
            tick(1)
    return results
