"""The three per-crop statistics of SPEC §8: mean luminance, contrast and HLS saturation.

One definition, used by the environment's default scorer
(:class:`exposure_env.scorers.StatisticsScorer`) and by the histogram-intersection metric
(:mod:`rewards.metrics`). NumPy only, float64; images are clipped to [0, 1] first (what a file
would store).

>>> import numpy as np
>>> crop_statistics(np.full((1, 4, 4, 3), [0.2, 0.4, 0.6])).round(3).tolist()
[[0.358, 0.0, 0.5]]
"""

from __future__ import annotations

import numpy as np

from .colour import luminance

#: Names of the three crop statistics, in column order of :func:`crop_statistics`.
STATISTICS = ("luminance", "contrast", "saturation")


def _saturation_planes(r, g, b):
    """HLS saturation of clipped channel planes; 0 where ``max == min``."""
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    d = mx - mn
    den = np.minimum(mx + mn, 2.0 - mx - mn)
    out = np.zeros_like(d)
    np.divide(d, den, out=out, where=d > 0)
    return out


def _clipped(images) -> np.ndarray:
    """Float64 copy clipped to [0, 1] (one conversion; statistics stay exact for float32 inputs)."""
    return np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)


def hls_saturation(images: np.ndarray) -> np.ndarray:
    """HLS saturation of RGB in [0, 1] (``colorsys.rgb_to_hls``), shape ``(..., 3)`` -> ``(...)``.

    ``S = (max - min) / min(max + min, 2 - max - min)``, and 0 where ``max == min`` (greys,
    black, white). Inputs are clipped to [0, 1] first. (The discriminator's constant plane of
    SPEC §5 adds 0.01 to the denominator; the metric uses the exact definition.)
    """
    x = _clipped(images)
    return _saturation_planes(x[..., 0], x[..., 1], x[..., 2])


def crop_statistics(images: np.ndarray) -> np.ndarray:
    """Per-image statistics ``(N, H, W, 3)`` -> ``(N, 3)`` float64 in [0, 1].

    Columns: mean luminance (``0.27 R + 0.67 G + 0.06 B``), 2 x luminance standard deviation
    (population std over the pixels; at most 1 for values in [0, 1]) and mean HLS saturation
    (:func:`hls_saturation`). Images are clipped to [0, 1] first (one float64 conversion; channel planes,
    no reductions over the channel axis).
    """
    x = _clipped(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"crop_statistics: expected (N, H, W, 3) images, got shape {x.shape}")
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    lum = luminance(r, g, b).reshape(len(x), -1)
    sat = _saturation_planes(r, g, b).reshape(len(x), -1)
    return np.stack(
        [lum.mean(axis=1, dtype=np.float64), 2.0 * lum.std(axis=1, dtype=np.float64), sat.mean(axis=1, dtype=np.float64)],
        axis=1,
    )
