"""Area resampling of float images: ``resize_area``, the policy's ``thumbnail`` and ``decision_views``.

Weights are exact pixel-overlap areas (:func:`area_taps`), so an integer ratio is a box filter
and a photo at 2x resolution gives the same result. :func:`thumbnail` reads the centre square
of a full-size photo once (:func:`decision_views` every square the retoucher decides on): through a numba kernel (:mod:`exposure_env.cpu_kernels`, threads
over bands of output rows) when numba is available, else through the NumPy
``reduceat`` path below, which is the reference.
"""

from __future__ import annotations

import numpy as np

def area_taps(n_in: int, n_out: int, start: float = 0.0, length: float | None = None):
    """Sparse area-resampling weights for one axis: ``(index (K, n_out), weight (K, n_out))``.

    Output pixel ``i`` averages the source interval ``start + [i, i + 1) * length / n_out``
    (source pixel ``j`` covers ``[j, j + 1)``), weighting each source pixel by its overlap;
    the ``K`` weights of an output pixel sum to 1. An integer ratio gives an exact box
    filter; fractional ``start`` / ``length`` give sub-pixel crops, so the same scene at 2x
    resolution maps to the same output.
    """
    length = float(n_in - start) if length is None else float(length)
    if n_out <= 0 or length <= 0 or start < 0 or start + length > n_in + 1e-6:
        raise ValueError(f"area resample: window [{start}, {start + length}) outside 0..{n_in} or empty output {n_out}")
    edges = np.minimum(start + np.arange(n_out + 1, dtype=np.float64) * (length / n_out), float(n_in))
    first = np.floor(edges[:-1]).astype(np.int64)
    last = np.maximum(np.ceil(edges[1:]).astype(np.int64) - 1, first)
    k = int((last - first).max()) + 1
    idx = first[None, :] + np.arange(k)[:, None]
    w = np.clip(np.minimum(edges[1:], idx + 1.0) - np.maximum(edges[:-1], idx), 0.0, None)
    w /= w.sum(axis=0, keepdims=True)
    return np.minimum(idx, n_in - 1), w.astype(np.float32)


def area_weights(n_in: int, n_out: int, start: float = 0.0, length: float | None = None) -> np.ndarray:
    """Dense ``(n_out, n_in)`` form of :func:`area_taps` (rows sum to 1)."""
    idx, w = area_taps(n_in, n_out, start, length)
    dense = np.zeros((n_out, n_in), np.float32)
    np.add.at(dense, (np.broadcast_to(np.arange(n_out), idx.shape), idx), w)
    return dense


def _resample_axis(img: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Gather form: ``K`` weighted takes (any ratio, also upsampling)."""
    shape = [1] * img.ndim
    shape[axis] = idx.shape[1]
    out = None
    for k in range(idx.shape[0]):  # K gathers; element-wise only (no BLAS threads)
        term = np.take(img, idx[k], axis=axis) * w[k].reshape(shape)
        out = term if out is None else out + term
    return out


def _box_edges(n_in: int, n_out: int, start: float, length: float) -> np.ndarray:
    return np.minimum(start + np.arange(n_out + 1, dtype=np.float64) * (length / n_out), float(n_in))


def _reduce_axis(img: np.ndarray, axis: int, edges: np.ndarray) -> np.ndarray:
    """Area average over ``[edges[i], edges[i+1])`` for downscales (every interval >= 1 pixel).

    One ``np.add.reduceat`` pass sums the whole pixels from ``floor(e_i)`` to ``floor(e_{i+1}) - 1``;
    the two fractional boundary pixels are then corrected, which gives exactly the overlap
    weights of :func:`area_taps` while reading the image once.
    """
    n_in = img.shape[axis]
    lo = np.floor(edges).astype(np.int64)
    frac = (edges - lo).astype(np.float32)
    shape = [1] * img.ndim
    shape[axis] = len(edges)
    stop = int(lo[-1])
    sums = np.add.reduceat(np.take(img, np.arange(int(lo[0]), stop), axis=axis), lo[:-1] - lo[0], axis=axis)
    rows = np.take(img, np.minimum(lo, n_in - 1), axis=axis) * frac.reshape(shape)
    first = [slice(None)] * img.ndim
    last = [slice(None)] * img.ndim
    first[axis], last[axis] = slice(0, -1), slice(1, None)
    sums = sums - rows[tuple(first)] + rows[tuple(last)]
    width = np.diff(edges).astype(np.float32)
    shape[axis] = len(width)
    return sums / width.reshape(shape)


def _shrink(img: np.ndarray, axis: int, n_out: int, start: float, length: float, taps) -> np.ndarray:
    if length / n_out >= 1.0:
        return _reduce_axis(img, axis, _box_edges(img.shape[axis] + 0, n_out, start, length))
    idx, w = taps
    return _resample_axis(img, axis, idx, w)


def resize_area(image: np.ndarray, height: int, width: int, box=None) -> np.ndarray:
    """Area-averaged resample of ``(H, W, C)`` or ``(N, H, W, C)`` float images.

    ``box = (top, left, box_height, box_width)`` in source pixels (floats allowed) selects the
    region to resample (default: the whole image). Returns float32 ``(..., height, width, C)``.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[-3], img.shape[-2]
    top, left, bh, bw = (0.0, 0.0, float(h), float(w)) if box is None else map(float, box)
    iy, wy = area_taps(h, height, top, bh)
    ix, wx = area_taps(w, width, left, bw)
    y0, x0 = int(iy.min()), int(ix.min())  # work on the crop only
    img = img[..., y0 : int(iy.max()) + 1, x0 : int(ix.max()) + 1, :]
    iy, ix = iy - y0, ix - x0
    ry = lambda a: _shrink(a, -3, height, top - y0, bh, (iy, wy))  # noqa: E731
    rx = lambda a: _shrink(a, -2, width, left - x0, bw, (ix, wx))  # noqa: E731
    # shrink the axis with the larger reduction first (fewer values for the second pass)
    out = rx(ry(img)) if h / height >= w / width else ry(rx(img))
    return np.ascontiguousarray(out, dtype=np.float32)


def centre_square(height: int, width: int) -> tuple[float, float, float, float]:
    """The centred square ``(top, left, side, side)`` of an image, in (possibly half) pixels."""
    side = float(min(height, width))
    return ((height - side) / 2.0, (width - side) / 2.0, side, side)


def thumbnail(image: np.ndarray, size: int = 64) -> np.ndarray:
    """Centre square crop, area-averaged to ``size`` x ``size`` (``(H, W, 3)`` or batched).

    The square is taken at sub-pixel precision, so a photo and its 2x version give nearly
    the same thumbnail (identical up to rounding when the downscale is exact). One photo
    ``(H, W, 3)`` at least ``size`` pixels on each side takes the numba kernel when available
    (float64 sums; equal to the NumPy path within 1e-6).
    """
    img = np.asarray(image)
    return _square_thumbnail(img, size, centre_square(img.shape[-3], img.shape[-2]))


def view_squares(height: int, width: int) -> list[tuple[float, float, float, float]]:
    """The squares ``(top, left, side, side)`` that :func:`decision_views` reads, centre first.

    A square photo has one (itself). Otherwise ``1 + 2 * ceil((long - short) / short)`` squares of
    side ``short`` spaced evenly along the long side, from one end to the other: neighbours are
    at most half a side apart, so together they cover the whole photo and every square has the
    shape the policy was trained on (square crops). A 3:2 or 16:9 photo gets 3, a 3:1 panorama 5.
    """
    short, long_ = float(min(height, width)), float(max(height, width))
    n = 1 + 2 * int(np.ceil((long_ - short) / short - 1e-9))
    starts = np.linspace(0.0, long_ - short, n)
    order = [n // 2] + [i for i in range(n) if i != n // 2]  # centre first
    if height > width:
        return [(float(starts[i]), 0.0, short, short) for i in order]
    return [(0.0, float(starts[i]), short, short) for i in order]


def decision_views(image: np.ndarray, size: int = 64) -> np.ndarray:
    """The ``size`` x ``size`` thumbnails of :func:`view_squares`: ``(V, size, size, 3)`` float32
    from one ``(H, W, 3)`` photo, the centre square (:func:`thumbnail`) first.

    The retoucher decides once from all of them (:func:`policies.rollout.rollout` with ``views``),
    so the parts of a wide photo outside its centre square count too. An ``(S, S, 3)`` image
    already at ``size`` gives itself, ``(1, S, S, 3)``.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"decision_views: expected an (H, W, 3) image, got shape {img.shape}")
    squares = view_squares(img.shape[0], img.shape[1])
    if len(squares) > 1 and img.shape[1] > img.shape[0] >= size:
        kernel = _area_kernel()
        if kernel is not None:  # a landscape photo: every view in one pass over its rows
            return _row_views_numba(kernel, img, size, squares)
    return np.stack([_square_thumbnail(img, size, box) for box in squares]).astype(np.float32, copy=False)


def _row_views_numba(kernel, img: np.ndarray, size: int, squares) -> np.ndarray:
    """Square thumbnails ``(V, size, size, 3)`` of ``squares`` that share their rows (one square, or a
    landscape photo's views) with one call of the area kernel: the column taps of every square side by
    side, so the photo is read once, not once per square (the same float64 sums as one call each)."""
    from .fused_cpu import run_bands

    img = np.ascontiguousarray(img, dtype=np.float32)
    top, _, side, _ = squares[0]
    iy, wy = area_taps(img.shape[0], size, top, side)
    taps = [area_taps(img.shape[1], size, left, side) for _, left, _, _ in squares]
    k = max(ix.shape[0] for ix, _ in taps)
    pad = lambda a, fill: np.concatenate([a, np.full((k - a.shape[0], a.shape[1]), fill, a.dtype)])  # noqa: E731
    ix = np.concatenate([pad(ix, ix[0, 0]) for ix, _ in taps], axis=1)  # zero-weight taps where a view has fewer
    wx = np.concatenate([pad(wx, 0) for _, wx in taps], axis=1)
    out = np.empty((size, size * len(squares), 3), np.float32)
    x0, x1 = int(ix.min()), int(ix.max()) + 1
    rows = img.reshape(img.shape[0], -1)
    run_bands(lambda a, b: kernel(rows, iy, wy, ix, wx, x0, x1, out, a, b), size, 2)
    return np.ascontiguousarray(out.reshape(size, len(squares), size, 3).transpose(1, 0, 2, 3))


def _square_thumbnail(img: np.ndarray, size: int, box) -> np.ndarray:
    """The square ``box`` of ``img`` area-averaged to ``size`` x ``size`` (numba kernel when it applies)."""
    if img.ndim == 3 and min(img.shape[:2]) >= size and img.shape[-1] == 3:
        kernel = _area_kernel()
        if kernel is not None:
            return _row_views_numba(kernel, img, size, [box])[0]
    return resize_area(img, size, size, box)


def _area_kernel():
    """``cpu_kernels.area_rows`` or ``None`` (numba missing, or the fused path switched off)."""
    from . import fused_cpu

    if not fused_cpu.available():
        return None
    from .cpu_kernels import area_rows

    return area_rows
