"""One photo through the batch: read, decide, render, save; a failure fails only that photo.

:func:`process_job` runs the stages one after the other; the pipelined executor
(:mod:`tune_configs.batch.pipeline`) runs the same functions overlapped across photos, so
both write the same bytes. For uncompressed 8/16-bit TIFF output the sequential path renders
each sample with the fused pass straight into its memory-mapped output file
(:func:`render_into_file`), skipping the encoder's copy of the photo. The JSON record
(sidecar) is written last: it marks the photo complete for ``--skip-existing``.
"""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np

from exposure_env import io as image_io
from exposure_env.atomic import atomic_write
from exposure_env.edits import Edit, edits_to_json
from exposure_env.sidecars import RECORD_VERSION, InputDecoding, write_sidecars
from policies.policy_file import ExportedPolicy
from policies.retoucher import Decision, Retoucher

from .jobs import Job, PhotoResult
from .options import OUTPUT_FORMATS, Options


def photo_seed(seed: int, key: str) -> int:
    """A per-photo seed from a run seed and a stable photo key (order- and worker-independent)."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(key.encode())]).generate_state(1)[0] & 0x7FFFFFFF)


def _read(job: Job, opts: Options) -> np.ndarray:
    """The photo as float32 ``(H, W, 3)`` in the run's input space; ``ImageError`` (naming
    ``job.input``, also when the bytes come from ``job.source``) below 2 x 2 pixels."""
    try:
        image = image_io.read_image(job.path, opts.input_space, max_pixels=opts.max_pixels)
    except image_io.ImageError as exc:
        if not job.source:
            raise
        raise image_io.ImageError(job.input, exc.problem) from None
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
    """Write sample ``k`` (its rendered ``samples``): the photo, then :func:`finish_sample`.
    ``timings`` (s) gains ``write_s``. Returns the paths written."""
    photo = opts.output_paths(job.base)[k][0]
    _, fmt, bits = OUTPUT_FORMATS[opts.format]
    t0 = time.perf_counter()
    image_io.write_image(
        photo, samples, format=fmt, bits=bits, quality=opts.quality,
        space="display" if fmt == "tiff" else None, compression=opts.compression,
    )
    return finish_sample(retoucher, job, opts, decision, k, samples.shape, {**timings, "write_s": time.perf_counter() - t0})


def renders_into_file(retoucher: Retoucher, opts: Options) -> bool:
    """True when a sample can be rendered straight into its output file
    (:func:`exposure_env.io.mapped_tiff`): uncompressed 8/16-bit TIFF output and a retoucher
    whose fused CPU pass fills a given sample buffer (:meth:`Retoucher.fills_samples`)."""
    _, fmt, bits = OUTPUT_FORMATS[opts.format]
    return fmt == "tiff" and bits in (8, 16) and opts.compression in (None, "none") and retoucher.fills_samples()


class FileTarget:
    """Sample ``k``'s output photo as a memory-mapped uncompressed TIFF (:func:`exposure_env.io.mapped_tiff`)
    that the fused pass fills in place: ``samples`` is the file's pixel array; :meth:`close`
    publishes the file under its name, :meth:`discard` removes it. The two may run on another
    thread than the one that opened it (the pipeline's encoder)."""

    def __init__(self, opts: Options, job: Job, k: int, shape: tuple):
        self.path = opts.output_paths(job.base)[k][0]
        self.shape = tuple(shape)
        self._cm = image_io.mapped_tiff(self.path, self.shape, bits=OUTPUT_FORMATS[opts.format][2], space="display")
        self.samples: np.ndarray | None = self._cm.__enter__()

    @classmethod
    def rendered(cls, retoucher: Retoucher, job: Job, opts: Options, decision: Decision, k: int, image: np.ndarray) -> "FileTarget":
        """Sample ``k``'s file, filled with its edit list on ``image`` (:func:`render_sample`);
        a failure removes the file and re-raises."""
        target = cls(opts, job, k, image.shape)
        try:
            samples = render_sample(retoucher, image, decision, k, opts, out=target.samples)
            if samples is not target.samples:  # the retoucher declined the buffer: copy (same bytes either way)
                target.samples[...] = samples
        except BaseException as exc:
            target.discard(exc)
            raise
        return target

    def close(self) -> None:
        """Unmap and rename the complete file to its name (atomic)."""
        self.samples, cm, self._cm = None, self._cm, None
        cm.__exit__(None, None, None)

    def discard(self, exc: BaseException) -> None:
        """Unmap and remove the unfinished file (nothing once it was closed or discarded)."""
        self.samples, cm, self._cm = None, self._cm, None
        if cm is not None:
            cm.__exit__(type(exc), exc, exc.__traceback__)


def render_into_file(retoucher: Retoucher, job: Job, opts: Options, decision: Decision, k: int, image: np.ndarray, timings: dict) -> list[str]:
    """Sample ``k`` rendered by the fused pass straight into its :class:`FileTarget`, then
    :func:`finish_sample`: the same bytes as :func:`render_sample` + :func:`save_sample`
    without the encoder's copy. ``timings`` gains ``apply_s`` (the pass, filling the file's
    pages) and ``write_s`` (closing and renaming it)."""
    ta = time.perf_counter()
    target = FileTarget.rendered(retoucher, job, opts, decision, k, image)
    tw = time.perf_counter()
    return save_target(retoucher, job, opts, decision, k, target, {**timings, "apply_s": tw - ta}, tw)


def save_target(retoucher: Retoucher, job: Job, opts: Options, decision: Decision, k: int, target: FileTarget, timings: dict, t0: float | None = None) -> list[str]:
    """Publish a filled :class:`FileTarget`, then :func:`finish_sample`; ``timings`` gains ``write_s``
    (from ``t0``, default now)."""
    t0 = time.perf_counter() if t0 is None else t0
    target.close()
    return finish_sample(retoucher, job, opts, decision, k, target.shape, {**timings, "write_s": time.perf_counter() - t0})


def finish_sample(retoucher: Retoucher, job: Job, opts: Options, decision: Decision, k: int, shape: tuple, timings: dict) -> list[str]:
    """After sample ``k``'s photo is written: the strip (``--strip``), the editor sidecars, then the
    JSON record (last: it marks the photo complete for ``--skip-existing``). Returns the paths."""
    photo, sidecar, strip, *editor_files = opts.output_paths(job.base)[k]
    if strip:
        decision.strip(k, strip)
    timings = {key: round(v, 4) for key, v in timings.items()}
    edits = decision.edits[k]
    editors = {"decoding": _write_editor_sidecars(job, opts, edits, sidecar)} if opts.sidecars else {}
    _write_json(
        sidecar,
        {
            "input": job.input,
            "output": Path(photo).name,
            "input_space": opts.input_space,
            "size": [int(shape[1]), int(shape[0])],
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
        decoding = InputDecoding.for_file(job.path, opts.input_space, max_pixels=opts.max_pixels)
        decoding = InputDecoding.from_dict(decoding.to_dict())
        recorded = [Edit.from_dict(e) for e in edits_to_json(edits)]
        write_sidecars(Path(record).with_suffix(""), opts.sidecars, decoding, recorded, Path(job.input).name, overwrite=True)
    except ValueError as exc:  # DecodingError (e.g. a RAW input) or SidecarError: one line, this photo fails
        msg = str(exc).removeprefix(f"{job.path}: ")
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


def write_samples(retoucher: Retoucher, job: Job, opts: Options, image: np.ndarray, decision: Decision, timings: dict) -> list[str]:
    """Render and save every sample of ``decision`` (``timings``: ``read_s``, ``decide_s`` in s;
    each sample adds its ``apply_s``), straight into the output file when
    :func:`renders_into_file`; returns the paths written, in writing order."""
    written: list[str] = []
    direct = renders_into_file(retoucher, opts)
    for k in range(len(decision.edits)):
        if direct:
            written += render_into_file(retoucher, job, opts, decision, k, image, timings)
            continue
        ta = time.perf_counter()
        samples = render_sample(retoucher, image, decision, k, opts)
        written += save_sample(retoucher, job, opts, decision, k, samples, {**timings, "apply_s": time.perf_counter() - ta})
    return written


def process_job(retoucher: Retoucher, job: Job, opts: Options) -> PhotoResult:
    """Read, decide, apply and write one photo (+ sidecar, + strip); never raises for a bad photo."""
    t0 = time.perf_counter()
    try:
        image = _read(job, opts)
        t1 = time.perf_counter()
        decision = decide_job(retoucher, job, opts, image)
        t2 = time.perf_counter()
        written = write_samples(retoucher, job, opts, image, decision, {"read_s": t1 - t0, "decide_s": t2 - t1})
        return PhotoResult(job.input, "done", "", written, time.perf_counter() - t0)
    except Exception as exc:  # anything about one photo fails that photo, not the batch
        return failure(job, exc, time.perf_counter() - t0)

