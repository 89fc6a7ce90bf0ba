"""What runs on Ray workers in a Ray Data retouch (:mod:`tune_configs.batch.ray_data` builds the dataset).

A photo is one row of an Arrow block; every column is a string, a float or bytes, so blocks of
good and failed photos share one schema:

``input``, ``base``, ``key``
    the :class:`~tune_configs.batch.jobs.Job` (paths on the driver's machine: names, never opened here);
``data``
    the photo file's bytes (``large_binary``): the photo travels, not its path;
``thumb``
    the ``V x S x S x 3`` float32 thumbnails' bytes (the views the policy decides on); ``decision``: the pickled
    :class:`~policies.retoucher.Decision`; ``decide_s``: its seconds;
``files``
    the pickled ``[(suffix, bytes), ...]`` of every output file, in writing order (the JSON
    record last), ``suffix`` following the output stem (``.tif``, ``_s2.json``, ...);
``error``
    the photo's one-line failure reason (``""`` while it is fine): a failed photo passes the
    later stages untouched; ``seconds``: the photo's time in the stages so far.

The stages call the functions of the local path (:mod:`tune_configs.batch.stages`: ``_read``,
``decide_job``, ``write_samples`` with the same writer), so they write the same bytes. A worker
decodes from, and encodes into, a private staging folder (``/dev/shm`` when there is one),
deleted after each photo; reasons name the input path, never the staged copy.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from exposure_env import io as image_io
from exposure_env import resample

from .jobs import Job
from .options import Options
from .stages import _read, decide_job, failure, write_samples

#: Columns of the rows the driver gets back (``data`` is dropped once encoded).
RESULT_COLUMNS = ("input", "base", "key", "files", "error", "seconds")
#: Policies loaded in this worker process, by the object-store id of their file's bytes.
_POLICIES: dict[str, object] = {}


def _job(batch: pa.Table, i: int) -> Job:
    return Job(batch["input"][i].as_py(), batch["base"][i].as_py(), batch["key"][i].as_py())


def _staging_root() -> str | None:
    """``/dev/shm`` (memory-backed) when writable, else the system temp folder (``None``)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


@contextmanager
def staged(job: Job, data) -> Iterator[Job]:
    """``job`` with its bytes ``data`` in a private folder: ``source`` is that copy (same file
    name), ``base`` an output stem in the same folder; the folder is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="exposure-retouch-", dir=_staging_root()) as tmp:
        src = Path(tmp, "in", Path(job.input).name)
        src.parent.mkdir()
        with open(src, "wb") as fh:
            fh.write(memoryview(data))
        yield Job(job.input, str(Path(tmp, "out", Path(job.base).name)), job.key, str(src))


def _policy(ref_box: tuple, opts: Options):
    """The exported policy from its file's bytes in the object store (loaded once per process)."""
    import ray

    from policies.policy_file import load_policy_bytes

    (ref,) = ref_box
    key = ref.hex()
    if key not in _POLICIES:
        _POLICIES.clear()
        _POLICIES[key] = load_policy_bytes(ray.get(ref), opts.policy_file or "<policy>")
    return _POLICIES[key]


def _with(batch: pa.Table, name: str, values: list, kind: pa.DataType) -> pa.Table:
    """``batch`` with column ``name`` set to ``values`` (added or replaced)."""
    column = pa.array(values, kind)
    i = batch.schema.get_field_index(name)
    return batch.set_column(i, name, column) if i >= 0 else batch.append_column(name, column)


def _each_photo(batch: pa.Table, work) -> tuple[list, list, list, list]:
    """``work(i, job) -> bytes`` on each row whose photo has not failed yet (``b""`` for the
    others); an exception fails that photo only, with its one-line reason. Returns the values,
    the ``error`` and ``seconds`` columns updated, and each row's seconds in this stage."""
    values, spent = [], []
    errors, seconds = batch["error"].to_pylist(), batch["seconds"].to_pylist()
    for i in range(batch.num_rows):
        t0 = time.perf_counter()
        value = b""
        if not errors[i]:
            job = _job(batch, i)
            try:
                value = work(i, job)
            except Exception as exc:  # a bad photo fails that photo only
                errors[i] = failure(job, exc, 0.0).reason
        values.append(value)
        spent.append(time.perf_counter() - t0)
        seconds[i] += spent[-1]
    return values, errors, seconds, spent


def _finish(batch: pa.Table, errors: list, seconds: list) -> pa.Table:
    """``batch`` with its ``error`` and ``seconds`` columns replaced."""
    return _with(_with(batch, "error", errors, pa.string()), "seconds", seconds, pa.float64())


def read_bytes(batch: pa.Table) -> pa.Table:
    """Stage 1, on the driver's node: each job's file bytes; a file that cannot be read fails
    with the reason :func:`exposure_env.io.read_image` gives."""
    data, errors, seconds = [], [], []
    for i in range(batch.num_rows):
        path = batch["input"][i].as_py()
        t0 = time.perf_counter()
        try:
            data.append(Path(path).read_bytes())
            errors.append("")
        except FileNotFoundError:
            data.append(b"")
            errors.append(str(image_io.ImageError(path, "no such file")))
        except OSError as exc:
            data.append(b"")
            errors.append(str(image_io.ImageError(path, f"cannot be read ({exc.strerror or exc})")))
        seconds.append(time.perf_counter() - t0)
    return _finish(_with(batch, "data", data, pa.large_binary()), errors, seconds)


def thumbnails(batch: pa.Table, opts: Options, size: int) -> pa.Table:
    """Stage 2, any node: decode each photo from its bytes and take the ``size`` thumbnails the
    policy decides on (:func:`exposure_env.resample.decision_views`)."""

    def thumb(i: int, job: Job) -> bytes:
        with staged(job, batch["data"][i].as_buffer()) as local:
            image = _read(local, opts)
        return np.ascontiguousarray(resample.decision_views(image, size), np.float32).tobytes()

    thumbs, errors, seconds, _ = _each_photo(batch, thumb)
    return _finish(_with(batch, "thumb", thumbs, pa.binary()), errors, seconds)


class PolicyActor:
    """Stage 3, an actor pool: thumbnails -> decisions with the exported policy.

    The policy comes as its file's bytes through the object store (``policy``: a 1-tuple holding
    the ``ObjectRef``), not as a path. Each photo is decided on its own (its thumbnails, plus its
    K samples with its own seed): a photo's edits never depend on which photos share its batch,
    and equal those of the local run (:meth:`Retoucher.decide` takes the same views).
    """

    def __init__(self, policy: tuple, opts: Options):
        import torch

        from policies.retoucher import Retoucher

        torch.set_num_threads(1)
        self.opts = opts
        self.retoucher = Retoucher(_policy(policy, opts), "numpy", workers=1)  # decides only
        self.size = self.retoucher.policy.thumb_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        def decide(i: int, job: Job) -> bytes:
            views = np.frombuffer(batch["thumb"][i].as_py(), np.float32).reshape(-1, self.size, self.size, 3)
            return pickle.dumps(decide_job(self.retoucher, job, self.opts, views), protocol=5)

        decisions, errors, seconds, spent = _each_photo(batch, decide)
        batch = _with(batch.drop_columns(["thumb"]), "decision", decisions, pa.binary())
        return _finish(_with(batch, "decide_s", spent, pa.float64()), errors, seconds)


def render_encode(batch: pa.Table, opts: Options, policy: tuple, threads: int) -> pa.Table:
    """Stage 4, any node: decode each photo again, apply its edit lists at full size
    (:func:`exposure_env.edits.apply_edits` via the retoucher's backend, ``threads`` CPU threads)
    and encode every output with the local writer into staging; the files' bytes go back."""
    from policies.retoucher import Retoucher

    retoucher = Retoucher(_policy(policy, opts), opts.backend, workers=max(1, int(threads)))

    def render(i: int, job: Job) -> bytes:
        t0 = time.perf_counter()
        decision = pickle.loads(batch["decision"][i].as_py())
        with staged(job, batch["data"][i].as_buffer()) as local:
            image = _read(local, opts)
            timings = {"read_s": time.perf_counter() - t0, "decide_s": batch["decide_s"][i].as_py()}
            written = write_samples(retoucher, local, opts, image, decision, timings)
            del image
            return pickle.dumps([(p[len(local.base):], Path(p).read_bytes()) for p in written], protocol=5)

    files, errors, seconds, _ = _each_photo(batch, render)
    out = _with(batch.select(["input", "base", "key"]), "files", files, pa.large_binary())
    return _finish(out, errors, seconds)
