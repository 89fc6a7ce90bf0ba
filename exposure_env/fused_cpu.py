"""The fused CPU pass: a whole edit list in one multi-threaded pass over the photo (numba).

:mod:`exposure_env.codegen` writes the kernel's source from the filters' own ``pixel``
formulas; this module writes that source to a cache folder, imports it and lets numba compile
it (once per machine: numba caches the machine code next to the file), then runs it:

* :func:`apply_fused` -- ``(H, W, 3)`` / ``(N, H, W, 3)`` float32 -> float32, or straight to
  8/16-bit samples for the encoder (clip, scale, round half to even: the bytes
  :func:`exposure_env.io.write_image` writes), one read and one write of the photo;
* :func:`quantize` -- the same store step alone (no edits), with a NumPy fallback.

When numba is missing or compiling fails, :func:`kernel` returns ``None`` once and logs why;
:func:`exposure_env.edits.apply_edits` then takes the NumPy tiled path. Set
``EXPOSURE_FUSED=0`` to force the fallback, ``EXPOSURE_KERNEL_CACHE`` to move the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .system import usable_cpus

log = logging.getLogger(__name__)

_STATE: dict[str, object] = {}
_LOAD_LOCK = threading.Lock()
#: Smallest band of pixels handed to one thread (smaller photos run on the calling thread).
BAND_PIXELS = 1 << 16
_SCALE = {np.dtype(np.float32): 0.0, np.dtype(np.uint16): 65535.0, np.dtype(np.uint8): 255.0}
#: Rows per block of the NumPy quantiser (bounded temporaries).
_BLOCK_PIXELS = 1 << 18


def cache_dir() -> Path:
    """Folder of the generated kernel source (and numba's compiled cache beside it)."""
    env = os.environ.get("EXPOSURE_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exposure-rl" / "kernels"


def _writable(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"exposure-rl-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _load():
    import numba  # ImportError: no fused path

    from . import codegen
    from .filters import ALL_FILTERS

    source = codegen.kernel_source(ALL_FILTERS)
    # numba's cache only watches the kernel's own file: vecmath (inlined into it) goes into the name
    vecmath = (Path(__file__).parent / "vecmath.py").read_text()
    digest = hashlib.sha1(f"{source}\n{vecmath}\n{numba.__version__}\n{np.__version__}".encode()).hexdigest()[:16]
    name = f"exposure_kernel_{digest}"
    path = _writable(cache_dir()) / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        with atomic_write(path) as tmp:
            tmp.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache pickles the module by name
    spec.loader.exec_module(module)
    module.CODES = {f.short_name: i for i, f in enumerate(ALL_FILTERS)}
    return module


def kernel():
    """The compiled kernel module, or ``None`` (numba missing, disabled or failing; logged once)."""
    with _LOAD_LOCK:
        if "module" not in _STATE:
            module = None
            if os.environ.get("EXPOSURE_FUSED", "1").strip().lower() in ("0", "false", "no", "off"):
                log.warning("fused CPU kernel disabled by EXPOSURE_FUSED; edits run on the NumPy tiled path")
            else:
                try:
                    module = _load()
                    log.info("CPU edit lists: one fused numba pass generated from the filters' pixel formulas")
                except ImportError as exc:
                    log.warning("numba not importable (%s); edits run on the NumPy tiled path", exc)
                except Exception as exc:  # a broken compiler must not stop retouching
                    log.warning("fused CPU kernel unavailable (%s: %s); edits run on the NumPy tiled path", type(exc).__name__, exc)
            _STATE["module"] = module
        return _STATE["module"]


def available() -> bool:
    """True when the fused kernel can be used (imports numba and generates the kernel on first call)."""
    return kernel() is not None


def engine() -> str:
    """``"numba-fused"`` or ``"numpy-tiled"``: the CPU path :func:`exposure_env.edits.apply_edits` takes."""
    return "numba-fused" if available() else "numpy-tiled"


def reset() -> None:
    """Forget the loaded kernel (tests: re-run the choice after changing the environment)."""
    with _LOAD_LOCK:
        _STATE.clear()


def _pack(edits, codes) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([codes[e.filter] for e in edits], dtype=np.int64)
    width = max([len(e.params) for e in edits], default=1)
    params = np.zeros((len(edits), width), np.float32)
    for s, e in enumerate(edits):
        params[s, : len(e.params)] = e.params
    return steps, params


def _pool(workers: int) -> ThreadPoolExecutor:
    with _LOAD_LOCK:
        pool = _STATE.get("pool")
        if pool is None or pool._max_workers < workers:  # noqa: SLF001 - grow only
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exposure-fused")
            _STATE["pool"] = pool
        return pool


def run_bands(fn, count: int, min_band: int, workers: int | None = None) -> list:
    """``fn(first, last)`` over ``[0, count)`` cut into bands; the results, in band order.

    Up to ``8 * workers`` bands of at least ``min_band`` items go to a shared thread pool (the
    kernels release the GIL); idle threads take the next band, so a core that other work slows
    down delays nothing. Small jobs run on the calling thread.
    """
    workers = max(1, int(workers or usable_cpus()))
    bands = 1 if workers == 1 or count < 2 * min_band else min(8 * workers, -(-count // min_band))
    if bands == 1:
        return [fn(0, count)]
    edges = [count * k // bands for k in range(bands + 1)]
    pool = _pool(workers)
    return [f.result() for f in [pool.submit(fn, a, b) for a, b in zip(edges, edges[1:])]]


def apply_fused(image: np.ndarray, edits, *, out_dtype=np.float32, out: np.ndarray | None = None, workers: int | None = None) -> np.ndarray:
    """The edit list on ``image`` ``(..., 3)`` float32 in one pass -> ``out_dtype`` array, same shape.

    ``out_dtype``: float32 (values as computed, not clipped), uint16 or uint8 (clipped to [0, 1],
    scaled to 65535 / 255, rounded half to even). ``out``: a C-contiguous array of that shape and
    dtype to write into (a reused buffer costs no page faults). ``workers``: threads (default all
    cores); the photo is cut into bands that idle threads pick up, so a core slowed down by other
    work delays nothing. Raises ``RuntimeError`` without the kernel and ``ValueError`` when
    quantised output would hold NaN/Inf.
    """
    module = kernel()
    if module is None:
        raise RuntimeError("the fused CPU kernel is not available (see the log)")
    dtype = np.dtype(out_dtype if out is None else out.dtype)
    if dtype not in _SCALE:
        raise ValueError(f"fused apply: out_dtype must be float32, uint16 or uint8, got {dtype}")
    if image.shape[-1] != 3:
        raise ValueError(f"fused apply: expected (..., 3) RGB, got shape {image.shape}")
    if out is None:
        out = np.empty(image.shape, dtype)
    elif out.shape != image.shape or not out.flags.c_contiguous:
        raise ValueError(f"fused apply: out must be C-contiguous {image.shape}, got {out.shape}")
    src = np.ascontiguousarray(image, dtype=np.float32).reshape(-1)
    dst = out.reshape(-1)
    steps, params = _pack(list(edits), module.CODES)
    scale = np.float32(_SCALE[dtype])
    bad = sum(run_bands(lambda a, b: module.run(src, dst, steps, params, scale, a, b), src.size // 3, BAND_PIXELS, workers))
    if bad:
        raise ValueError(f"image contains NaN or Inf values ({int(bad)} samples)")
    return out


def quantize(image: np.ndarray, bits: int) -> np.ndarray:
    """float ``image`` -> uint8/uint16 samples: ``rint(clip(x, 0, 1) * (2**bits - 1))``, one pass.

    Raises ``ValueError`` for NaN/Inf. Uses the fused kernel when available, else NumPy in
    blocks of ``_BLOCK_PIXELS`` pixels (no full-size float temporaries either way).
    """
    dtype = {8: np.uint8, 16: np.uint16}[int(bits)]
    if available():
        return apply_fused(image, [], out_dtype=dtype)
    src = np.asarray(image, dtype=np.float32).reshape(-1, image.shape[-1])
    out = np.empty(src.shape, dtype)
    top = np.float32(np.iinfo(dtype).max)
    for start in range(0, src.shape[0], _BLOCK_PIXELS):
        block = src[start : start + _BLOCK_PIXELS]
        if not np.isfinite(block).all():
            raise ValueError("image contains NaN or Inf values")
        tmp = np.clip(block, 0.0, 1.0)
        tmp *= top
        np.rint(tmp, out=tmp)
        out[start : start + _BLOCK_PIXELS] = tmp
    return out.reshape(image.shape)
