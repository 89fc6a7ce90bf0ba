"""Hand-written numba kernels that are not filter formulas: the thumbnail's area average.

Importing this module needs numba; :mod:`exposure_env.resample` imports it lazily and falls
back to NumPy without it. Kernels release the GIL and work on a band of rows, so callers
spread one photo over threads (:func:`exposure_env.fused_cpu.run_bands`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def area_rows(img, iy, wy, ix, wx, out, first, last):
    """Output rows ``[first, last)`` of an area resample of ``img`` (H, W, 3) float32:
    ``out[i, j] = sum_a sum_b wy[a, i] wx[b, j] img[iy[a, i], ix[b, j]]`` (taps of
    :func:`exposure_env.resample.area_taps`, indices uint64), accumulated in float64.
    Reads each source row of the window once, in order."""
    nx = wx.shape[1]
    acc = np.empty((nx, 3), np.float64)
    for i in range(first, last):
        acc[:] = 0.0
        for a in range(wy.shape[0]):
            w = np.float64(wy[a, i])
            if w == 0.0:
                continue
            y = iy[a, i]
            for j in range(nx):
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for b in range(wx.shape[0]):
                    v = np.float64(wx[b, j])
                    x = ix[b, j]
                    s0 += v * img[y, x, 0]
                    s1 += v * img[y, x, 1]
                    s2 += v * img[y, x, 2]
                acc[j, 0] += w * s0
                acc[j, 1] += w * s1
                acc[j, 2] += w * s2
        for j in range(nx):
            out[i, j, 0] = acc[j, 0]
            out[i, j, 1] = acc[j, 1]
            out[i, j, 2] = acc[j, 2]
