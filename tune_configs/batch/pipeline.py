"""Pipelined batch retouching: decoding, deciding + applying and encoding overlap across photos.

Three stages joined by hand-offs of one item each::

    decode (read_image)  ->  retouch (thumbnails, policy, fused pass -> 8/16-bit samples)  ->  encode (photo, strip, sidecar)

The CPU-heavy middle stage spreads each photo over every core (the fused kernel's bands, the
thumbnail kernel); decoding and encoding are file I/O and codec code that release the GIL, so
they run beside it on whatever the middle stage leaves idle.

Memory is bounded by slots, not by the folder: at most ``FLOAT_SLOTS`` (2) decoded float32
photos exist at once (one being decoded, one being retouched) and at most ``SAMPLE_SLOTS`` (2)
output-sample buffers (one being filled, one being encoded; reused from photo to photo, so the
kernel never waits on fresh pages). For uncompressed TIFF output a slot is instead the output
file itself, memory-mapped: the fused pass fills it (:class:`~tune_configs.batch.stages.FileTarget`)
and the encoding stage only publishes it (unmap, rename) and writes the sidecars. For a photo of P pixels that is
2 x 12P (float32) + 6P (the decoder's 16-bit samples) + 2 x 6P (16-bit output) = 42P bytes,
3.5 float photos' worth, whatever the folder size.

Every photo goes through the same functions as the sequential path
(:func:`tune_configs.batch.stages.process_job`: ``_read``, ``decide_job``, ``render_sample``,
``save_sample``), so both write the same bytes; a failure at any stage fails that photo only,
with the same one-line reason.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from policies.retoucher import Decision, Retoucher

from .jobs import Job, PhotoResult
from .options import Options
from .stages import FileTarget, _read, decide_job, failure, render_sample, renders_into_file, save_sample, save_target

#: Decoded float32 photos alive at once (decoding + retouching).
FLOAT_SLOTS = 2
#: Output-sample buffers alive at once (being filled + being encoded).
SAMPLE_SLOTS = 2
_END = object()


@dataclass
class _Photo:
    """One job on its way through the stages."""

    job: Job
    t0: float
    image: np.ndarray | None = None
    decision: Decision | None = None
    timings: dict = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    error: BaseException | None = None


def run_pipelined(retoucher: Retoucher, jobs: list[Job], opts: Options, bar=None) -> list[PhotoResult]:
    """Retouch ``jobs`` through the three stages; one :class:`PhotoResult` per job (completion order).

    ``bar``: a progress bar with ``update(1)`` (optional). The retouch stage runs on the calling
    thread; an interrupt (Ctrl-C) stops decoding, lets the photos in flight finish writing
    (each output is atomic) and re-raises.
    """
    floats = threading.Semaphore(FLOAT_SLOTS)
    buffers: queue.Queue = queue.Queue()  # free output buffers; taking one = taking a slot
    for _ in range(SAMPLE_SLOTS):
        buffers.put(None)
    decoded: queue.Queue = queue.Queue(maxsize=1)
    to_encode: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    results: list[PhotoResult] = []

    def decode() -> None:
        try:
            for job in jobs:
                while not floats.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    floats.release()
                    return
                photo = _Photo(job, time.perf_counter())
                try:
                    photo.image = _read(job, opts)
                except Exception as exc:
                    photo.error = exc
                photo.timings["read_s"] = time.perf_counter() - photo.t0
                decoded.put(photo)
        finally:
            decoded.put(_END)

    def encode() -> None:
        while (msg := to_encode.get()) is not _END:
            photo, k, samples, timings, last, slot = msg
            if samples is not None:
                try:
                    if photo.error is not None:
                        if isinstance(samples, FileTarget):
                            samples.discard(photo.error)
                    elif isinstance(samples, FileTarget):
                        photo.written += save_target(retoucher, photo.job, opts, photo.decision, k, samples, timings)
                    else:
                        photo.written += save_sample(retoucher, photo.job, opts, photo.decision, k, samples, timings)
                except Exception as exc:
                    photo.error = exc
                    if isinstance(samples, FileTarget):
                        samples.discard(exc)  # unpublished: removed now, not when collected
                finally:
                    buffers.put(slot)
            if last:
                seconds = time.perf_counter() - photo.t0
                done = PhotoResult(photo.job.input, "done", "", photo.written, seconds)
                results.append(done if photo.error is None else failure(photo.job, photo.error, seconds))
                if bar is not None:
                    bar.update(1)

    threads = [threading.Thread(target=fn, name=f"retouch-{fn.__name__}", daemon=True) for fn in (decode, encode)]
    for t in threads:
        t.start()
    try:
        while (photo := decoded.get()) is not _END:
            _retouch(retoucher, photo, opts, buffers, to_encode)
            floats.release()
    except BaseException:
        stop.set()
        while decoded.get() is not _END:  # unblock the decoder; its photos are dropped
            floats.release()
        raise
    finally:
        to_encode.put(_END)
        for t in threads:
            t.join()
    return results


def _retouch(retoucher: Retoucher, photo: _Photo, opts: Options, buffers: queue.Queue, to_encode: queue.Queue) -> None:
    """Decide on the thumbnails, render every sample, hand each to the encoder (one message is ``last``)."""
    sent_last = False
    try:
        if photo.error is None:
            t1 = time.perf_counter()
            photo.decision = decide_job(retoucher, photo.job, opts, photo.image)
            photo.timings["decide_s"] = time.perf_counter() - t1
            count = len(photo.decision.edits)
            direct = renders_into_file(retoucher, opts)
            for k in range(count):
                buffer = buffers.get()
                try:
                    ta = time.perf_counter()
                    if direct:  # the fused pass fills the output file itself; the encoder publishes it
                        samples = FileTarget.rendered(retoucher, photo.job, opts, photo.decision, k, photo.image)
                        slot = buffer
                    else:
                        samples = render_sample(retoucher, photo.image, photo.decision, k, opts, out=buffer)
                        slot = samples if retoucher.fills_samples() else None  # only the fused pass reuses a buffer
                    timings = {**photo.timings, "apply_s": time.perf_counter() - ta}
                except BaseException:
                    buffers.put(buffer)
                    raise
                del buffer
                to_encode.put((photo, k, samples, timings, k == count - 1, slot))
                sent_last = k == count - 1
                del samples, slot
    except Exception as exc:
        photo.error = exc
    finally:
        photo.image = None  # the float photo's slot is freed by the caller
        if not sent_last:
            to_encode.put((photo, -1, None, None, True, None))
