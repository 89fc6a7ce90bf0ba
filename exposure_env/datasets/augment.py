"""SPEC §7 data augmentation: random square crops of a photo, area-resized to 80x80.

The paper takes, per photo, 4 crops of the largest square (side = the short edge) at random
positions along the long edge. ``scale`` allows smaller squares (a fraction of the short
edge drawn uniformly), so a few photos give many distinct crops (the demo set, small
folders). Boxes are drawn in *relative* coordinates, so a paired image (the same photo
retouched, at any resolution with the same framing) is cropped at exactly the same place.

Cropping is exact area averaging (the same weights as :func:`exposure_env.resample.resize_area`)
through a summed-area table, vectorised over all crops: cost per crop is independent of its
size. A photo more than twice as large as its smallest crop needs is first area-reduced
once to a working size where the smallest box still spans :data:`OVERSAMPLE` x the output
size (bounded memory for 24-megapixel photos; a slight extra blur at sharp edges only).
"""

from __future__ import annotations

import numpy as np

from ..resample import resize_area

#: The smallest crop box keeps at least this many source pixels per output pixel.
OVERSAMPLE = 2.0
_BATCH = 128  # crops per vectorised gather (bounds temporary memory to ~40 MB)


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


def _working_image(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """``image`` area-reduced so the smallest box spans ~``OVERSAMPLE * size`` pixels (never enlarged)."""
    h, w = image.shape[:2]
    smallest = float(min((boxes[:, 2] * h).min(), (boxes[:, 3] * w).min()))
    factor = OVERSAMPLE * size / max(smallest, 1e-9)
    if factor > 0.5:  # less than halves the work: crop the photo as it is
        return image
    return resize_area(image, max(1, round(h * factor)), max(1, round(w * factor)))


def _integral(image: np.ndarray) -> np.ndarray:
    """Summed-area table ``(H+1, W+1, C)`` float64: ``S[i, j] = sum(image[:i, :j])``."""
    h, w, c = image.shape
    s = np.zeros((h + 1, w + 1, c), np.float64)
    np.cumsum(np.cumsum(image, axis=0, dtype=np.float64), axis=1, out=s[1:, 1:])
    return s


def _lerp_index(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell and fraction of continuous coordinates in ``[0, n]``."""
    i = np.clip(np.floor(edges).astype(np.int64), 0, n - 1)
    return i, (edges - i)[..., None]


def crop_resize(image: np.ndarray, boxes: np.ndarray, size: int = 80) -> np.ndarray:
    """Crops of ``image`` ``(H, W, C)`` at relative ``boxes`` -> ``(n, size, size, C)`` float32 (area average).

    The integral of a pixel-constant image is the bilinear interpolation of its summed-area
    table, so every output pixel is the exact overlap-weighted mean of its source window.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    image = _working_image(np.asarray(image, dtype=np.float32), boxes, size)
    h, w, c = image.shape
    table = _integral(image).reshape(-1, c)  # flat rows: one np.take per corner
    out = np.empty((len(boxes), size, size, c), np.float32)
    steps = np.arange(size + 1, dtype=np.float64) / size
    for s in range(0, len(boxes), _BATCH):
        b = boxes[s : s + _BATCH]
        ey = np.minimum((b[:, :1] + b[:, 2:3] * steps) * h, h)  # (n, size+1) pixel edges
        ex = np.minimum((b[:, 1:2] + b[:, 3:4] * steps) * w, w)
        iy, fy = _lerp_index(ey, h)
        ix, fx = _lerp_index(ex, w)
        at = lambda r, x: np.take(table, r[:, :, None] * (w + 1) + x[:, None, :], axis=0)  # noqa: E731
        fx = fx[:, None]
        integral = at(iy, ix)  # bilinear interpolation, in place
        integral += (at(iy, ix + 1) - integral) * fx
        below = at(iy + 1, ix)
        below += (at(iy + 1, ix + 1) - below) * fx
        integral += (below - integral) * fy[:, :, None]
        sums = integral[:, 1:, 1:] - integral[:, :-1, 1:] - integral[:, 1:, :-1] + integral[:, :-1, :-1]
        area = np.diff(ey, axis=1)[:, :, None, None] * np.diff(ex, axis=1)[:, None, :, None]
        out[s : s + len(b)] = sums / np.maximum(area, 1e-12)
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
