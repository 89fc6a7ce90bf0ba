"""Quality metrics of SPEC §8: histogram intersection, PSNR, colour differences and colour cast.

All metrics compare *display-referred* images: what the agent writes (its own Gamma and
curves are the display transform), clipped to [0, 1]. Nothing here linearizes or applies a
gamma; pass images exactly as they would be written to a file.

Histogram intersection (the paper's measure): every photo gives 4 random square crops
resized to 80x80 and 4 random 64x64 crops of each (16 crops per photo); per crop three
statistics (:func:`exposure_env.image_statistics.crop_statistics`); per statistic a 32-bin
histogram over [0, 1] across the whole set divided by the number of crops; the score is the
sum over bins of the minimum of the two histograms, in percent (100 = identical
distributions, 0 = disjoint).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from exposure_env.datasets.augment import crop_resize, square_crop_boxes
from exposure_env.image_statistics import STATISTICS, crop_statistics

CROPS_PER_IMAGE = 4
SQUARE_SIZE = 80
CROP_SIZE = 64
BINS = 32


def evaluation_crops(
    images_or_photos: np.ndarray | Sequence[np.ndarray],
    rng: np.random.Generator,
    *,
    squares: int = CROPS_PER_IMAGE,
    crops: int = CROPS_PER_IMAGE,
) -> np.ndarray:
    """The §8 crops: per photo ``squares`` random squares -> 80x80, ``crops`` random 64x64 of each.

    ``images_or_photos``: an ``(N, H, W, 3)`` array or a sequence of ``(H, W, 3)`` photos of any
    sizes. The squares are the paper's (SPEC §7, the boxes and resampling of
    :func:`exposure_env.datasets.augment.random_square_crops`): side = the short edge, random
    position, area-resampled to 80x80 (an 80x80 photo -- a validation crop -- is its own square). Returns
    ``(N * squares * crops, 64, 64, 3)`` float32, photo-major order. Draws from ``rng`` in a
    fixed order, so equal seeds give equal crop geometry for equally shaped photos.
    """
    out = []
    for photo in images_or_photos:
        photo = np.asarray(photo, dtype=np.float32)
        if photo.ndim != 3 or photo.shape[-1] != 3:
            raise ValueError(f"evaluation_crops: expected (H, W, 3) photos, got shape {photo.shape}")
        boxes = square_crop_boxes(photo.shape[0], photo.shape[1], squares, rng)  # the draws of random_square_crops
        if photo.shape[:2] == (SQUARE_SIZE, SQUARE_SIZE):  # a crop already: every square is the photo itself
            squares_ = [photo] * squares
        else:
            squares_ = crop_resize(photo, boxes, SQUARE_SIZE)
        for square in squares_:
            oy = rng.integers(0, SQUARE_SIZE - CROP_SIZE + 1, size=crops)
            ox = rng.integers(0, SQUARE_SIZE - CROP_SIZE + 1, size=crops)
            out.extend(square[a : a + CROP_SIZE, b : b + CROP_SIZE] for a, b in zip(oy, ox))
    if not out:
        raise ValueError("evaluation_crops: no images given")
    return np.stack(out)


def statistic_histograms(stats: np.ndarray, bins: int = BINS) -> np.ndarray:
    """``(M, 3)`` statistics -> ``(3, bins)`` histograms over [0, 1], each summing to 1."""
    stats = np.clip(np.asarray(stats, dtype=np.float64), 0.0, 1.0)
    if stats.ndim != 2 or len(stats) == 0:
        raise ValueError(f"statistic_histograms: expected non-empty (M, k) statistics, got {stats.shape}")
    return np.stack([np.histogram(col, bins=bins, range=(0.0, 1.0))[0] / len(stats) for col in stats.T])


def intersection_from_statistics(out_stats: np.ndarray, target_stats: np.ndarray) -> dict[str, float]:
    """Histogram intersection (percent) of two statistic sets ``(M, 3)`` and ``(K, 3)``."""
    inter = np.minimum(statistic_histograms(out_stats), statistic_histograms(target_stats)).sum(axis=1) * 100.0
    result = {name: float(v) for name, v in zip(STATISTICS, inter)}
    result["average"] = float(inter.mean())
    return result


def histogram_intersection(outputs, targets, seed: int = 0) -> dict[str, float]:
    """SPEC §8 score of ``outputs`` against ``targets`` (display-referred, [0, 1]).

    Both are ``(N, H, W, 3)`` arrays or sequences of ``(H, W, 3)`` photos; the two sets may
    differ in size. Each set's crops are drawn from its own ``default_rng(seed)``, so a set
    compared with itself scores exactly 100. Returns percent values keyed ``luminance``,
    ``contrast``, ``saturation`` and ``average``.
    """
    out_stats = crop_statistics(evaluation_crops(outputs, np.random.default_rng(seed)))
    tgt_stats = crop_statistics(evaluation_crops(targets, np.random.default_rng(seed)))
    return intersection_from_statistics(out_stats, tgt_stats)


def _paired(a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, 1.0)
    b = np.clip(np.asarray(b, dtype=np.float64), 0.0, 1.0)
    if a.shape != b.shape or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"{name}: expected two (H, W, 3) or (N, H, W, 3) arrays of one shape, got {a.shape} and {b.shape}")
    return (a[None], b[None]) if a.ndim == 3 else (a, b)


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB of display values clipped to [0, 1] (peak 1).

    ``(H, W, 3)`` pairs give one value; ``(N, H, W, 3)`` batches give the mean of the per-image
    PSNRs. Identical images give ``inf``.
    """
    a, b = _paired(a, b, "psnr")
    mse = ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        per_image = 10.0 * np.log10(1.0 / mse)
    return float(per_image.mean())


def display_to_lab(image) -> np.ndarray:
    """CIELAB of display values: ``(..., 3)`` sRGB-encoded in [0, 1] (clipped) -> float64 Lab.

    ``skimage.color.rgb2lab``: exact sRGB decode, XYZ, CIELAB with the D65 (2 degree) white;
    L* in [0, 100], a*/b* roughly [-128, 127]. The one place the metrics' colour convention lives.
    """
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0))


def _delta_e76_lab(lab_a: np.ndarray, lab_b: np.ndarray) -> float:
    return float(np.sqrt(((lab_a - lab_b) ** 2).sum(axis=-1)).mean())


def _delta_e2000_lab(lab_a: np.ndarray, lab_b: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000

    return float(deltaE_ciede2000(lab_a, lab_b, channel_axis=-1).mean())


def _lab_pairs(a, b, name: str):
    """``(x, y, Lab_x, Lab_y)`` per image of a checked pair of images or batches."""
    a, b = _paired(a, b, name)
    for x, y in zip(a, b):
        yield x, y, display_to_lab(x), display_to_lab(y)


def _mean_rows(rows: list[dict[str, float]], keys) -> dict[str, float]:
    """Per-key mean over images, ignoring NaN entries (NaN when every entry is NaN)."""
    out = {}
    for k in keys:
        v = np.asarray([r[k] for r in rows], dtype=np.float64)
        v = v[~np.isnan(v)]
        out[k] = float(v.mean()) if v.size else float("nan")
    return out


def _per_image(a, b, name: str, fn) -> float:
    return float(np.mean([fn(la, lb) for _, _, la, lb in _lab_pairs(a, b, name)]))


def delta_e76(a, b) -> float:
    """Mean CIE76 colour difference ``||Lab_a - Lab_b||`` (Delta E units, L* in [0, 100]).

    Inputs are display values (sRGB-encoded, :func:`display_to_lab`). Batches give the mean over
    images of the per-image mean over pixels.
    """
    return _per_image(a, b, "delta_e76", _delta_e76_lab)


def delta_e2000(a, b) -> float:
    """Mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``, kL = kC = kH = 1).

    Same inputs and averaging as :func:`delta_e76`; about 1 is a just-noticeable difference.
    """
    return _per_image(a, b, "delta_e2000", _delta_e2000_lab)


#: A ground-truth pixel is "near-neutral" when its chroma ``C*ab = sqrt(a*^2 + b*^2)`` is below
#: this (Delta E units) and its lightness L* lies in :data:`NEUTRAL_LIGHTNESS` (chroma is
#: meaningless near black and white).
NEUTRAL_CHROMA = 5.0
NEUTRAL_LIGHTNESS = (10.0, 95.0)


def _cast_lab(lab_out: np.ndarray, lab_truth: np.ndarray) -> dict[str, float]:
    d = lab_out - lab_truth
    chroma_t = np.hypot(lab_truth[..., 1], lab_truth[..., 2])
    lo, hi = NEUTRAL_LIGHTNESS
    neutral = (chroma_t < NEUTRAL_CHROMA) & (lab_truth[..., 0] > lo) & (lab_truth[..., 0] < hi)
    shift = float(np.hypot(d[..., 1], d[..., 2])[neutral].mean()) if neutral.any() else float("nan")
    return {
        "a_bias": float(d[..., 1].mean()),
        "b_bias": float(d[..., 2].mean()),
        "neutral_chroma_shift": shift,
        "neutral_share": float(neutral.mean()),
    }


#: Keys of :func:`colour_cast`.
CAST_KEYS = ("a_bias", "b_bias", "neutral_chroma_shift", "neutral_share")


def colour_cast(output, truth) -> dict[str, float]:
    """Colour cast of ``output`` against its ground truth (display values, :func:`display_to_lab`).

    * ``a_bias`` / ``b_bias``: mean of ``a*_out - a*_truth`` / ``b*_out - b*_truth`` over all
      pixels (Delta E units; negative b* = bluer, positive = yellower; negative a* = greener,
      positive = redder). A cast shows as a bias; random errors average out.
    * ``neutral_chroma_shift``: mean ``sqrt(da*^2 + db*^2)`` over the truth's near-neutral
      pixels (chroma below :data:`NEUTRAL_CHROMA`, L* inside :data:`NEUTRAL_LIGHTNESS`): how
      coloured the output makes what should be grey (NaN when the truth has no such pixel);
      ``neutral_share`` is their share of the pixels.

    Batches give the mean over images (NaN-free images only for the neutral shift).
    """
    rows = [_cast_lab(lo, lt) for _, _, lo, lt in _lab_pairs(output, truth, "colour_cast")]
    return _mean_rows(rows, CAST_KEYS)


#: Keys of :func:`paired_scores`, in table order.
PAIRED_KEYS = ("psnr", "delta_e76", "delta_e2000", "a_bias", "b_bias", "neutral_chroma_shift")


def paired_scores(outputs, truths) -> dict[str, float]:
    """Every paired metric at once (one Lab conversion per image): :data:`PAIRED_KEYS`.

    ``outputs`` / ``truths``: one ``(H, W, 3)`` pair, an ``(N, H, W, 3)`` pair of batches or two
    equally long sequences of photos (each pair one shape, sizes may differ between pairs).
    Display values, clipped to [0, 1]. Means over images; the same values as the single metrics.
    """
    if isinstance(outputs, np.ndarray) and outputs.ndim == 3:
        outputs, truths = [outputs], [truths]
    if len(outputs) != len(truths) or len(outputs) == 0:
        raise ValueError(f"paired_scores: {len(outputs)} outputs but {len(truths)} ground-truth images")
    rows = []
    for o, t in zip(outputs, truths):
        for x, y, lx, ly in _lab_pairs(o, t, "paired_scores"):
            row = {"psnr": psnr(x, y), "delta_e76": _delta_e76_lab(lx, ly), "delta_e2000": _delta_e2000_lab(lx, ly)}
            row.update(_cast_lab(lx, ly))
            rows.append(row)
    return _mean_rows(rows, PAIRED_KEYS)
