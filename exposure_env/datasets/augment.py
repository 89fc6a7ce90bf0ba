"""SPEC §7 data augmentation: random square crops of a photo, area-resized to 80x80.

The paper takes, per photo, 4 crops of the largest square (side = the short edge) at random
positions along the long edge. ``scale`` allows smaller squares (a fraction of the short
edge drawn uniformly), which the demo set uses to get many distinct crops from few photos.
Boxes are drawn in *relative* coordinates, so a paired image (the same photo retouched, at
any resolution with the same framing) is cropped at exactly the same place.
"""

from __future__ import annotations

import numpy as np

from ..io import resize_area


def square_crop_boxes(
    height: int, width: int, n: int, rng: np.random.Generator, scale: tuple[float, float] = (1.0, 1.0)
) -> np.ndarray:
    """``n`` random square boxes as ``(top/H, left/W, side/H, side/W)`` rows, float64.

    The side is ``f * min(H, W)`` with ``f ~ U(scale)``, ``0 < scale <= 1``; the position is
    uniform over the photo (sub-pixel).
    """
    lo, hi = float(scale[0]), float(scale[1])
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
    short = float(min(height, width))
    side = short * rng.uniform(lo, hi, size=n)
    top = rng.uniform(0.0, 1.0, size=n) * (height - side)
    left = rng.uniform(0.0, 1.0, size=n) * (width - side)
    return np.stack([top / height, left / width, side / height, side / width], axis=1)


def crop_resize(image: np.ndarray, boxes: np.ndarray, size: int = 80) -> np.ndarray:
    """Crops of ``image`` ``(H, W, 3)`` at relative ``boxes`` -> ``(n, size, size, 3)`` float32 (area resample)."""
    h, w = image.shape[:2]
    out = np.empty((len(boxes), size, size, image.shape[-1]), np.float32)
    for k, (t, l, bh, bw) in enumerate(np.asarray(boxes, dtype=np.float64)):
        out[k] = resize_area(image, size, size, (t * h, l * w, bh * h, bw * w))
    return out


def random_square_crops(
    image: np.ndarray,
    n: int = 4,
    size: int = 80,
    rng: np.random.Generator | None = None,
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    paired: np.ndarray | None = None,
):
    """``n`` random square crops of one photo resized by area to ``size`` x ``size`` (SPEC §7).

    Returns ``(n, size, size, 3)`` float32, or ``(crops, paired_crops)`` when ``paired`` (the
    same photo retouched, same framing) is given.
    """
    rng = np.random.default_rng() if rng is None else rng
    image = np.asarray(image, dtype=np.float32)
    boxes = square_crop_boxes(image.shape[0], image.shape[1], n, rng, scale)
    crops = crop_resize(image, boxes, size)
    if paired is None:
        return crops
    return crops, crop_resize(np.asarray(paired, dtype=np.float32), boxes, size)
