"""CuPy fused kernels built from the filters' own ``pixel`` formulas (no second definition).

``cupy.fuse`` traces a Python function over element-wise CuPy operations and compiles it
into a single CUDA kernel. Every ``Filter.pixel`` is written with the primitives of
:mod:`exposure_env.backend`, which for CuPy are plain ufuncs (plus ``cupy.where``), so the
same code traces. Two kernels are offered:

* :func:`apply_filter_fused` -- one filter on a batch with per-image parameters
  (the environment's hot path on GPU);
* :func:`apply_edits_fused` -- a whole edit list in one pass (the retoucher's path):
  one read and one write of the photo.

Kernels are cached by filter sequence; parameters are runtime arguments, so a new set of
values never recompiles. Needs CuPy and a CUDA GPU (the example runs in the ``gpu`` tests):

>>> import cupy as cp
>>> from exposure_env import filters
>>> from exposure_env.edits import Edit
>>> x = cp.full((1, 2, 2, 3), 0.25, cp.float32)
>>> apply_filter_fused(filters.get("E"), x, cp.asarray([[1.0]]))[0, 0, 0].get().tolist()
[0.5, 0.5, 0.5]
>>> apply_edits_fused(x, [Edit("E", (1.0,)), Edit("G", (0.5,))]).get().ravel().astype(float).round(4).tolist()[:3]
[0.7071, 0.7071, 0.7071]
"""

from __future__ import annotations

from functools import lru_cache

from ..backend import merge_channels, split_channels


def _cupy():
    import cupy

    return cupy


@lru_cache(maxsize=256)
def _chain_kernel(chain: tuple):
    """A fused kernel ``(r, g, b, *params) -> (r, g, b)`` for the filter sequence ``chain`` (Filter objects)."""
    cp = _cupy()
    names = [f.short_name for f in chain]
    sizes = [f.num_params for f in chain]

    def body(r, g, b, *params):
        i = 0
        for f, k in zip(chain, sizes):
            r, g, b = f.pixel(r, g, b, list(params[i : i + k]))
            i += k
        return r, g, b

    return cp.fuse(kernel_name="exposure_" + "_".join(n.replace("+", "p") for n in names))(body)


def apply_filter_fused(f, images, params):
    """One filter, batched: ``images`` ``(N, H, W, 3)`` cupy float32, ``params`` ``(N, k)``."""
    cp = _cupy()
    params = cp.asarray(params, dtype=images.dtype)
    r, g, b = split_channels(images)
    cols = [params[:, j][:, None, None] for j in range(f.num_params)]
    r, g, b = _chain_kernel((f,))(r, g, b, *cols)
    return merge_channels(r, g, b)


def apply_edits_fused(images, edits):
    """A whole edit list (same parameters for every image) in one fused CUDA kernel."""
    cp = _cupy()
    dtype = images.dtype
    scalars = [cp.asarray(v, dtype=dtype) for e in edits for v in e.params]
    r, g, b = split_channels(images)
    r, g, b = _chain_kernel(tuple(e.filter_obj for e in edits))(r, g, b, *scalars)
    return merge_channels(r, g, b)
