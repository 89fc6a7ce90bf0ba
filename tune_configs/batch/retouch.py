"""``retouch_paths``: the batch driver behind ``exposure retouch`` (see :mod:`tune_configs.batch`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from exposure_env import io as image_io
from exposure_env.colourspace import check_space
from exposure_env.sidecars import parse_editors
from exposure_env.system import usable_cpus
from policies.retoucher import Retoucher

from .jobs import RetouchError, collect_inputs
from .options import OUTPUT_FORMATS, Options
from .pipeline import run_pipelined
from .plan import plan_jobs
from .ray_data import RayDataOptions, run_ray_data
from .summary import RetouchSummary
from .threads import run_threaded


def retouch_paths(
    policy,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    format: str = "tiff16",
    quality: int = 95,
    input_space: str = "auto",
    strip: bool = False,
    samples: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    use_ray: bool = False,
    address: str | None = None,
    ray_options: RayDataOptions | None = None,
    workers: int = 1,
    backend: str = "auto",
    max_pixels: int = image_io.DEFAULT_MAX_PIXELS,
    progress: bool = True,
    compression: str | None = None,
    pipeline: bool = True,
    sidecars: Sequence[str] | str = (),
) -> RetouchSummary:
    """Retouch every photo in ``inputs`` (files, folders, globs) into ``out_dir``.

    Per photo: the image (``--format`` ``tiff16``, ``png`` (8-bit) or ``jpeg``), a JSON sidecar
    (edits in photographer units, their text, policy metadata, input path, timings), with
    ``strip`` a PNG step strip; with ``samples=K`` K of each (``_s1`` .. ``_sK``). Inputs are
    never written: the run is refused when ``out_dir`` is an input folder (or inside one) or
    when outputs exist and neither ``overwrite`` nor ``skip_existing`` is set. ``skip_existing``
    skips photos whose outputs are all present (sidecars are written last), so an interrupted
    run continues where it stopped. ``compression``: TIFF ``none``/``deflate``/``lzw``/``zstd``,
    PNG ``none``/``deflate`` (:func:`exposure_env.io.write_image`). Locally, ``pipeline`` (default)
    overlaps decoding, retouching and encoding across photos with bounded memory
    (:mod:`tune_configs.batch.pipeline`, every core); ``pipeline=False`` runs ``workers`` photos at a time,
    each start to end. ``use_ray`` (implied by ``address``: ``auto`` or ``HOST:PORT``) streams the
    photos through Ray Data on a cluster, the photos travelling as bytes
    (:mod:`tune_configs.batch.ray_data`; ``ray_options``: its resources, a private local Ray
    unless ``address`` or ``RAY_ADDRESS`` names one). Every way writes the same files. Bad photos are reported in the summary,
    never raised. ``sidecars`` (``darktable``, ``rawtherapee``, ``lightroom``) adds editor files of
    the edits beside each JSON sidecar (:mod:`exposure_env.sidecars`).
    """
    if format not in OUTPUT_FORMATS:
        raise RetouchError(f"unknown output format {format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if overwrite and skip_existing:
        raise RetouchError("--overwrite and --skip-existing exclude each other")
    if samples is not None and int(samples) < 1:
        raise RetouchError(f"--samples must be at least 1, got {samples}")
    if int(workers) < 1:
        raise RetouchError(f"--workers must be at least 1, got {workers}")
    check_space(input_space, allow_auto=True)
    try:
        editors = parse_editors(sidecars) if sidecars else ()
    except ValueError as exc:
        raise RetouchError(f"--sidecar: {exc}") from None
    try:
        compression = image_io.check_compression(out_dir, OUTPUT_FORMATS[format][1], compression)
    except ValueError as exc:
        raise RetouchError(str(exc)) from None
    retoucher = policy if isinstance(policy, Retoucher) else Retoucher(policy, backend)
    policy_file = retoucher.policy.source
    if samples is not None and seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    cores = usable_cpus()
    opts = Options(
        format, int(quality), input_space, strip, None if samples is None else int(samples), seed,
        retoucher.backend, max_pixels, max(1, cores // int(workers)), policy_file, compression, editors,
    )
    t_start = time.perf_counter()
    jobs, failures = collect_inputs(inputs, out_dir)

    todo, skipped = plan_jobs(jobs, opts, overwrite=overwrite, skip_existing=skip_existing)
    results = [*failures, *skipped]
    bar = _progress(len(todo), progress)
    try:
        if (use_ray or address) and todo:
            ray_options = replace(ray_options or RayDataOptions(), **({"address": address} if address else {}))
            results += run_ray_data(retoucher, todo, opts, ray_options, bar)
        elif pipeline:
            results += run_pipelined(retoucher, todo, opts, bar)
        else:
            results += run_threaded(retoucher, todo, opts, int(workers), bar)
    finally:
        bar.close()
    order = {j.input: i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.input, -1))
    return RetouchSummary(results, time.perf_counter() - t_start)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="photo", desc="retouch", disable=not enabled or total == 0, dynamic_ncols=True)
