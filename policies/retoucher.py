"""Retouch photos with an exported policy: decide on the thumbnail, apply once at full size.

:class:`Retoucher` loads a ``.exposure`` file (:mod:`policies.export`) and, for one photo
``(H, W, 3)`` float32 linear RGB,

1. takes the ``S x S`` thumbnail (:func:`exposure_env.io.thumbnail`, S = the policy's size);
2. runs :func:`policies.rollout.rollout` on it for ``max_steps`` (5) steps: each step the most
   likely filter *not used yet* (used filters are masked) with the policy's mean parameters,
   applied to the thumbnail to get the next state -- exactly the environment's step;
3. applies the resulting edit list ONCE to the full-resolution photo with
   :func:`exposure_env.edits.apply_edits` (one fused CuPy kernel on GPU, the tiled
   multi-threaded path on CPU), so the result does not depend on the photo's resolution.

``samples=K`` gives K different plausible retouches: the filter is drawn from the policy's
softmax over the unused filters and, when the policy has dropout (the paper's one-to-many
mapping), the dropout trace is used; the same ``seed`` gives the same K results.

:func:`retouch_paths` is the batch driver behind ``exposure retouch`` (files, folders, globs
expanded by :mod:`policies.jobs`; progress bar; JSON sidecars; never touches inputs;
``--skip-existing`` resumes; optional Ray). One photo is :func:`process_job`: ``_read``,
:func:`decide_job`, :func:`render_sample`, :func:`save_sample`; a local folder runs the same
stages pipelined across photos (:mod:`policies.batch`).
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from exposure_env import fused_cpu
from exposure_env import io as image_io
from exposure_env.atomic import atomic_write
from exposure_env.backend import cupy_or_none
from exposure_env.colourspace import check_space
from exposure_env.edits import Edit, apply_edits, edits_to_json
from exposure_env.sidecars import RECORD_VERSION, SUFFIXES, InputDecoding, parse_editors, write_sidecars

from .export import ExportedPolicy, load_policy, load_policy_bytes
from .jobs import Job, PhotoResult, RetouchError, collect_inputs  # noqa: F401 (public here too)
from .rollout import rollout
from exposure_env.system import usable_cpus

BACKENDS = ("auto", "numpy", "torch", "cupy")
#: ``--format`` name -> (suffix, io format, bits).
OUTPUT_FORMATS = {"tiff16": (".tif", "tiff", 16), "png": (".png", "png", 8), "jpeg": (".jpg", "jpeg", 8)}


def resolve_backend(name: str = "auto") -> str:
    """``auto`` -> ``cupy`` when a GPU and CuPy are present, else ``numpy`` (tiled CPU path)."""
    name = str(name).lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "cupy" if cupy_or_none() is not None else "numpy"
    if name == "cupy" and cupy_or_none() is None:
        raise ValueError("backend 'cupy' needs CuPy and a CUDA GPU (pip install exposure-rl[gpu])")
    return name


def photo_seed(seed: int, key: str) -> int:
    """A per-photo seed from a run seed and a stable photo key (order- and worker-independent)."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(key.encode())]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class Decision:
    """The edits chosen on a thumbnail: ``edits[k]`` for sample ``k``; ``frames`` are the
    thumbnails before and after each step, ``(K, S, S, 3)`` each (linear RGB)."""

    edits: list[list[Edit]]
    frames: list[np.ndarray]
    seed: int | None = None

    def strip(self, k: int = 0, path=None) -> np.ndarray:
        """Step strip of sample ``k`` (:func:`exposure_env.render.step_strip`), PNG if ``path``."""
        from exposure_env.render import step_strip

        labels = ["Input"] + [e.describe() for e in self.edits[k]]
        return step_strip([f[k] for f in self.frames], labels, path)


class Retoucher:
    """Apply an exported policy to photos (see the module docstring).

    ``path_or_policy``: a ``.exposure`` path or an :class:`ExportedPolicy`. ``backend``: where
    the edit list is applied at full size (``auto``, ``numpy``, ``torch``, ``cupy``).
    ``workers``: CPU threads for the tiled apply (default: all usable cores).
    """

    def __init__(self, path_or_policy, backend: str = "auto", *, policy_backend: str = "torchscript", workers: int | None = None):
        self.policy = path_or_policy if isinstance(path_or_policy, ExportedPolicy) else load_policy(path_or_policy, backend=policy_backend)
        self.backend = resolve_backend(backend)
        self.workers = workers
        self._lock = threading.Lock()  # dropout sampling seeds torch's global generator

    @property
    def steps(self) -> int:
        return min(self.policy.max_steps, len(self.policy.filters))

    def _net(self, stochastic: bool):
        policy = self.policy

        def fn(image: torch.Tensor, state: torch.Tensor):
            logits, actions = policy(image, state, stochastic=stochastic)
            return torch.from_numpy(logits), torch.from_numpy(actions)

        return fn

    def decide(self, image: np.ndarray, *, samples: int | None = None, seed: int | None = None) -> Decision:
        """Choose the edits on the thumbnail of ``image`` ``(H, W, 3)`` linear RGB.

        ``samples=None``: one deterministic decision. ``samples=K``: K sampled decisions,
        reproducible for a given ``seed`` (a random one is drawn and returned when None).
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"retouch: expected an (H, W, 3) image, got shape {image.shape}")
        thumb = image_io.thumbnail(image, self.policy.thumb_size)[None]
        filters = self.policy.filters
        if samples is None:
            _, edits, frames = rollout(self._net(False), thumb, filters, self.steps, True, mask_used=True)
            return Decision(edits, frames, None)
        if int(samples) < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        batch = np.repeat(thumb, int(samples), axis=0)
        with self._lock, torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            _, edits, frames = rollout(
                self._net(self.policy.has_dropout), batch, filters, self.steps, False, mask_used=True, seed=int(seed)
            )
        return Decision(edits, frames, int(seed))

    def apply(self, image: np.ndarray, edits: Sequence[Edit], *, bits: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The edit list on the full photo with this retoucher's backend -> float32 ``(H, W, 3)``.

        ``bits=8/16``: the samples an 8/16-bit file stores instead (uint8/uint16, clipped to
        [0, 1], rounded half to even); on the CPU the fused pass writes them directly, with no
        float copy of the result, into ``out`` when given (a reused buffer of that dtype).
        """
        if bits is not None and self.backend == "numpy" and fused_cpu.available():
            dtype = np.dtype({8: np.uint8, 16: np.uint16}[int(bits)])
            if out is not None and (out.shape != np.shape(image) or out.dtype != dtype):
                out = None
            return fused_cpu.apply_fused(np.asarray(image, dtype=np.float32), edits, out_dtype=dtype, out=out, workers=self.workers)
        if self.backend == "cupy":
            import cupy as cp

            out = apply_edits(cp.asarray(image, dtype=cp.float32), edits).get()
        elif self.backend == "torch":
            out = apply_edits(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), edits, workers=self.workers).numpy()
        else:
            out = apply_edits(np.ascontiguousarray(image, dtype=np.float32), edits, workers=self.workers)
        out = np.asarray(out, dtype=np.float32)
        return out if bits is None else fused_cpu.quantize(out, int(bits))

    def retouch(self, image: np.ndarray, *, samples: int | None = None, seed: int | None = None):
        """``(image, edits)`` for one photo; with ``samples=K``, ``(images, edit lists)`` of K each.

        Output values are linear-in, display-out float32 as the agent leaves them (clip to
        [0, 1] when writing, e.g. with :func:`exposure_env.io.write_image`).
        """
        decision = self.decide(image, samples=samples, seed=seed)
        outs = [self.apply(image, e) for e in decision.edits]
        if samples is None:
            return outs[0], decision.edits[0]
        return outs, decision.edits


# --------------------------------------------------------------------------------------
# Batch driver
# --------------------------------------------------------------------------------------
@dataclass
class Options:
    format: str = "tiff16"
    quality: int = 95
    input_space: str = "auto"
    strip: bool = False
    samples: int | None = None
    seed: int | None = None
    backend: str = "auto"
    max_pixels: int = image_io.DEFAULT_MAX_PIXELS
    apply_workers: int | None = None
    policy_file: str = ""
    compression: str | None = None
    sidecars: tuple[str, ...] = ()  # editors (exposure_env.sidecars.EDITORS) to write sidecars for

    def output_paths(self, base: str) -> list[tuple[str, ...]]:
        """``(photo, sidecar, strip or "", *editor sidecars)`` per sample for an output stem."""
        suffix = OUTPUT_FORMATS[self.format][0]
        tags = [""] if self.samples is None else [f"_s{k + 1}" for k in range(self.samples)]
        return [
            (f"{base}{t}{suffix}", f"{base}{t}.json", f"{base}{t}_steps.png" if self.strip else "",
             *(f"{base}{t}{SUFFIXES[e]}" for e in self.sidecars))
            for t in tags
        ]


@dataclass
class RetouchSummary:
    results: list[PhotoResult]
    seconds: float = 0.0

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise."""
        return 1 if self.failed else 0

    def text(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)} in {self.seconds:.1f} s"]
        lines += [f"  failed: {r.reason}" for r in self.failed]
        return "\n".join(lines)


def _read(job: Job, opts: Options) -> np.ndarray:
    image = image_io.read_image(job.input, opts.input_space, max_pixels=opts.max_pixels)
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise image_io.ImageError(job.input, f"image too small ({image.shape[1]} x {image.shape[0]} pixels)")
    return image


def _write_json(path: str, obj: dict) -> None:
    """Atomic JSON write (:func:`exposure_env.atomic.atomic_write`)."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def _policy_summary(policy: ExportedPolicy, opts: Options) -> dict:
    m = policy.metadata
    return {
        "file": opts.policy_file,
        "created": m.get("created"),
        "filters": [f["short_name"] for f in m["filters"]],
        "thumb_size": m["thumb_size"],
        "max_steps": m["max_steps"],
        "dropout": m.get("dropout"),
        "training": m.get("training", {}),
        "versions": m.get("versions", {}),
    }


def decide_job(retoucher: Retoucher, job: Job, opts: Options, image: np.ndarray) -> Decision:
    """The edits for one photo (a per-photo seed from the run seed when sampling)."""
    seed = None if opts.samples is None else photo_seed(opts.seed or 0, job.key)
    return retoucher.decide(image, samples=opts.samples, seed=seed)


def render_sample(retoucher: Retoucher, image: np.ndarray, decision: Decision, k: int, opts: Options, out=None) -> np.ndarray:
    """Sample ``k``'s edit list on the full photo, as the 8/16-bit samples the output format
    stores (into ``out`` when it fits: a reused buffer costs no page faults)."""
    return retoucher.apply(image, decision.edits[k], bits=OUTPUT_FORMATS[opts.format][2], out=out)


def save_sample(retoucher: Retoucher, job: Job, opts: Options, decision: Decision, k: int, samples: np.ndarray, timings: dict) -> list[str]:
    """Write sample ``k``: the photo, the strip (``--strip``), then the sidecar (last: it marks the
    photo complete for ``--skip-existing``). ``timings`` (s) gains ``write_s``. Returns the paths."""
    photo, sidecar, strip, *editor_files = opts.output_paths(job.base)[k]
    _, fmt, bits = OUTPUT_FORMATS[opts.format]
    t0 = time.perf_counter()
    image_io.write_image(
        photo, samples, format=fmt, bits=bits, quality=opts.quality,
        space="display" if fmt == "tiff" else None, compression=opts.compression,
    )
    if strip:
        decision.strip(k, strip)
    timings = {**{key: round(v, 4) for key, v in timings.items()}, "write_s": round(time.perf_counter() - t0, 4)}
    edits = decision.edits[k]
    editors = {"decoding": _write_editor_sidecars(job, opts, edits, sidecar)} if opts.sidecars else {}
    _write_json(
        sidecar,
        {
            "input": job.input,
            "output": Path(photo).name,
            "input_space": opts.input_space,
            "size": [int(samples.shape[1]), int(samples.shape[0])],
            "sample": None if opts.samples is None else k + 1,
            "seed": decision.seed,
            "edits": edits_to_json(edits),
            "description": [e.describe() for e in edits],
            "policy": _policy_summary(retoucher.policy, opts),
            "backend": retoucher.backend,
            "timings": timings,
            "record_version": RECORD_VERSION,
            **editors,
        },
    )
    return [p for p in (photo, strip, *editor_files, sidecar) if p]


def _write_editor_sidecars(job: Job, opts: Options, edits: list[Edit], record: str) -> dict:
    """darktable / RawTherapee / Lightroom files for ``edits`` of the original photo, beside ``record``
    (:mod:`exposure_env.sidecars`); returns the input decoding they start with (kept in the record)."""
    try:  # from the values as recorded, so `exposure export-edits` of the record gives the same files
        decoding = InputDecoding.for_file(job.input, opts.input_space, max_pixels=opts.max_pixels)
        decoding = InputDecoding.from_dict(decoding.to_dict())
        recorded = [Edit.from_dict(e) for e in edits_to_json(edits)]
        write_sidecars(Path(record).with_suffix(""), opts.sidecars, decoding, recorded, Path(job.input).name, overwrite=True)
    except ValueError as exc:  # DecodingError (e.g. a RAW input) or SidecarError: one line, this photo fails
        msg = str(exc).removeprefix(f"{job.input}: ")
        raise image_io.ImageError(job.input, f"editor sidecars: {msg}") from None
    return decoding.to_dict()


def failure(job: Job, exc: BaseException, seconds: float) -> PhotoResult:
    """A photo that failed: the reason on one line, naming the file."""
    if isinstance(exc, image_io.ImageError):
        return PhotoResult(job.input, "failed", str(exc), [], seconds)
    if isinstance(exc, MemoryError):
        return PhotoResult(job.input, "failed", f"{job.input}: out of memory", [], seconds)
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return PhotoResult(job.input, "failed", f"{job.input}: {type(exc).__name__}: {msg}", [], seconds)


def process_job(retoucher: Retoucher, job: Job, opts: Options) -> PhotoResult:
    """Read, decide, apply and write one photo (+ sidecar, + strip); never raises for a bad photo."""
    t0 = time.perf_counter()
    try:
        image = _read(job, opts)
        t1 = time.perf_counter()
        decision = decide_job(retoucher, job, opts, image)
        t2 = time.perf_counter()
        written: list[str] = []
        for k in range(len(decision.edits)):
            ta = time.perf_counter()
            samples = render_sample(retoucher, image, decision, k, opts)
            timings = {"read_s": t1 - t0, "decide_s": t2 - t1, "apply_s": time.perf_counter() - ta}
            written += save_sample(retoucher, job, opts, decision, k, samples, timings)
        return PhotoResult(job.input, "done", "", written, time.perf_counter() - t0)
    except Exception as exc:  # anything about one photo fails that photo, not the batch
        return failure(job, exc, time.perf_counter() - t0)


def _complete(job: Job, opts: Options) -> bool:
    return all(Path(p).exists() for triple in opts.output_paths(job.base) for p in triple if p)


_WORKER_CACHE: dict[tuple, Retoucher] = {}


def _ray_process(policy_bytes: bytes, job: Job, opts: Options) -> PhotoResult:
    """Ray task body: load (once per worker process) and process one job."""
    torch.set_num_threads(1)
    key = (zlib.crc32(policy_bytes), len(policy_bytes), opts.backend)
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = Retoucher(load_policy_bytes(policy_bytes, opts.policy_file), opts.backend, workers=1)
    return process_job(_WORKER_CACHE[key], job, opts)


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
    (:mod:`policies.batch`, every core); ``pipeline=False`` runs ``workers`` photos at a time,
    each start to end. ``use_ray`` spreads photos over Ray tasks (``workers`` = Ray's CPUs when it
    has to start Ray). Every way writes the same files. Bad photos are reported in the summary,
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

    input_paths = {Path(j.input) for j in jobs}
    planned = [(j, Path(p)) for j in jobs for triple in opts.output_paths(j.base) for p in triple if p]
    clash = [p for _, p in planned if p in input_paths]
    if clash:
        raise RetouchError(f"{clash[0]}: an output would overwrite an input; choose another output folder")
    results: list[PhotoResult] = list(failures)
    todo: list[Job] = []
    existing = [p for _, p in planned if p.exists()]
    if existing and not (overwrite or skip_existing):
        raise RetouchError(
            f"{len(existing)} output file(s) already exist, e.g. {existing[0]}; "
            "pass --overwrite to replace them or --skip-existing to keep them"
        )
    for job in jobs:
        if skip_existing and _complete(job, opts):
            results.append(PhotoResult(job.input, "skipped", "outputs exist"))
        else:
            todo.append(job)

    bar = _progress(len(todo), progress)
    try:
        if use_ray and todo:
            results += _run_ray(retoucher, todo, opts, int(workers), bar)
        elif pipeline:
            from .batch import run_pipelined

            results += run_pipelined(retoucher, todo, opts, bar)
        else:
            results += _run_local(retoucher, todo, opts, int(workers), bar)
    finally:
        bar.close()
    order = {j.input: i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.input, -1))
    return RetouchSummary(results, time.perf_counter() - t_start)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="photo", desc="retouch", disable=not enabled or total == 0, dynamic_ncols=True)


def _run_local(retoucher: Retoucher, jobs: list[Job], opts: Options, workers: int, bar) -> list[PhotoResult]:
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


def _run_ray(retoucher: Retoucher, jobs: list[Job], opts: Options, workers: int, bar) -> list[PhotoResult]:
    import logging

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


def summary_json(summary: RetouchSummary) -> dict:
    """The summary as JSON-ready data (for logs and tests)."""
    return {
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": len(summary.failed),
        "seconds": round(summary.seconds, 3),
        "results": [asdict(r) for r in summary.results],
    }
