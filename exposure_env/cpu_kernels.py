"""Hand-written numba kernels that are not filter formulas: the thumbnail's area average.

Importing this module needs numba; :mod:`exposure_env.resample` imports it lazily and falls
back to NumPy without it. Kernels release the GIL and work on a band of rows, so callers
spread one photo over threads (:func:`exposure_env.fused_cpu.run_bands`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False, fastmath={"contract"})
def area_rows(rows, iy, wy, ix, wx, x0, x1, out, first, last):
    """Output rows ``[first, last)`` of an area resample, ``out[i, j] = sum_a sum_b wy[a, i]
    wx[b, j] img[iy[a, i], ix[b, j]]`` (taps of :func:`exposure_env.resample.area_taps`).

    ``rows``: the image as ``(H, W * 3)`` float32; only columns ``[x0, x1)`` are read. Each
    output row first sums its source rows, weighted, over the whole window width (a
    contiguous, vectorised multiply-add per source row: the photo is read once, in order), then
    reduces that one row with the column taps. Sums are float64.
    """
    n3 = 3 * (x1 - x0)
    acc = np.empty(n3, np.float64)
    for i in range(first, last):
        acc[:] = 0.0
        for a in range(wy.shape[0]):
            w = np.float64(wy[a, i])
            if w == 0.0:
                continue
            seg = rows[iy[a, i], 3 * x0 : 3 * x1]
            for k in range(n3):
                acc[k] += w * seg[k]
        for j in range(wx.shape[1]):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            for b in range(wx.shape[0]):
                v = np.float64(wx[b, j])
                x = 3 * (ix[b, j] - x0)
                s0 += v * acc[x]
                s1 += v * acc[x + 1]
                s2 += v * acc[x + 2]
            out[i, j, 0] = s0
            out[i, j, 1] = s1
            out[i, j, 2] = s2
