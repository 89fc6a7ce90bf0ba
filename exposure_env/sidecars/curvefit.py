"""Curve fitting shared by the sidecar writers: editors' spline models and least-squares nodes.

Editors store curves as nodes and interpolate them with their own spline. For a fixed set of
node abscissae both models below are *linear* in the node ordinates, so the best nodes for a
target function are a weighted linear least-squares solve (:func:`fit`):

* :class:`DarktableHermite` -- darktable 4.2 ``rgbcurve`` "monotone spline"
  (``src/common/curve_tools.c``: ``monotone_hermite_set`` tangents = mean of the neighbouring
  secants, Fritsch-Carlson limiting when ``alpha^2 + beta^2 > 9``; evaluated with the cubic
  Hermite basis; clamped outside the first/last node; at most 20 nodes). The solve uses the
  unlimited tangents (linear); :meth:`evaluate` applies the limiter, as darktable does.
* :class:`RawTherapeeNurbs` -- RawTherapee 5.9 ``DiagonalCurve`` type 3 "control cage"
  (``rtengine/diagonalcurves.cc``: ``NURBS_set``): quadratic Bezier pieces from the midpoint of
  one cage segment to the next, through the cage points as control points; flat outside.

Curve inputs and outputs are in [0, 1]. :func:`per_channel_map` samples a list of per-channel
edits (the composite ``F_k`` of every channel ``k``) with the project's own filters.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_EPS = 2.0 * float(np.finfo(np.float32).tiny)  # darktable's EPSILON (2 * FLT_MIN)


def sample_grid(n: int = 2049, dark: int = 64) -> np.ndarray:
    """Evaluation points on [0, 1]: ``n`` uniform plus ``dark`` log-spaced in [1e-4, 0.05]."""
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, n), np.geomspace(1e-4, 0.05, dark)]))


def _locate(xn: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(xn, t, side="right") - 1, 0, len(xn) - 2)


class DarktableHermite:
    """darktable's monotone Hermite spline (``rgbcurve`` curve type 2, "monotone spline")."""

    max_nodes = 20

    @staticmethod
    def tangents(xn, yn, limit: bool = True) -> np.ndarray:
        xn = np.asarray(xn, np.float64)
        yn = np.asarray(yn, np.float64)
        n = len(xn)
        d = np.diff(yn) / np.diff(xn)
        d = np.append(d, d[-1])
        m = np.zeros(n + 1)
        m[0], m[n - 1] = d[0], d[n - 1]
        m[1 : n - 1] = 0.5 * (d[:-2] + d[1 : n - 1])
        if limit:
            for i in range(n):
                if abs(d[i]) < _EPS:
                    m[i] = m[i + 1] = 0.0
                else:
                    a, b = m[i] / d[i], m[i + 1] / d[i]
                    tau = a * a + b * b
                    if tau > 9.0:
                        m[i], m[i + 1] = 3.0 * a * d[i] / np.sqrt(tau), 3.0 * b * d[i] / np.sqrt(tau)
        return m[:n]

    @staticmethod
    def _basis(xn, t):
        t = np.clip(t, xn[0], xn[-1])
        iv = _locate(xn, t)
        h = xn[iv + 1] - xn[iv]
        s = (t - xn[iv]) / h
        s2, s3 = s * s, s * s * s
        return iv, h, (2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2)

    @classmethod
    def evaluate(cls, xn, yn, t) -> np.ndarray:
        """The curve at ``t`` (darktable clamps the LUT to [0, 1])."""
        xn, yn = np.asarray(xn, np.float64), np.asarray(yn, np.float64)
        m = cls.tangents(xn, yn)
        iv, h, (h00, h10, h01, h11) = cls._basis(xn, np.asarray(t, np.float64))
        y = h00 * yn[iv] + h10 * h * m[iv] + h01 * yn[iv + 1] + h11 * h * m[iv + 1]
        return np.clip(y, 0.0, 1.0)

    @classmethod
    def matrix(cls, xn, t) -> np.ndarray:
        """``A`` with ``curve(t) = A @ yn`` for the unlimited tangents."""
        xn = np.asarray(xn, np.float64)
        n = len(xn)
        eye = np.eye(n)
        # tangents are linear in yn: column j = tangents of the unit vector e_j
        m = np.stack([cls.tangents(xn, eye[j], limit=False) for j in range(n)], axis=1)  # (n, n)
        iv, h, (h00, h10, h01, h11) = cls._basis(xn, np.asarray(t, np.float64))
        return (h00[:, None] * eye[iv] + (h10 * h)[:, None] * m[iv] + h01[:, None] * eye[iv + 1]
                + (h11 * h)[:, None] * m[iv + 1])


class RawTherapeeNurbs:
    """RawTherapee's "control cage" curve (``DiagonalCurve`` type 3, NURBS)."""

    max_nodes = 200

    @staticmethod
    def _pieces(xn):
        """Per Bezier piece ``k``: start/control/end as weights over the cage points, ``(N-2, 3, N)``."""
        n = len(xn)
        eye = np.eye(n)
        pieces = []
        for k in range(n - 2):
            start = eye[0] if k == 0 else 0.5 * (eye[k] + eye[k + 1])
            end = eye[n - 1] if k == n - 3 else 0.5 * (eye[k + 1] + eye[k + 2])
            pieces.append(np.stack([start, eye[k + 1], end]))
        return np.asarray(pieces)

    @classmethod
    def matrix(cls, xn, t) -> np.ndarray:
        xn = np.asarray(xn, np.float64)
        t = np.asarray(t, np.float64)
        n = len(xn)
        if n < 3:
            raise ValueError("a control cage needs at least 3 points")
        w = cls._pieces(xn)  # (n-2, 3, n)
        px = w @ xn  # (n-2, 3): x of start, control, end
        out = np.zeros((len(t), n))
        out[t <= xn[0], 0] = 1.0
        out[t >= xn[-1], n - 1] = 1.0
        inside = (t > xn[0]) & (t < xn[-1])
        ti = t[inside]
        k = np.clip(np.searchsorted(px[:, 2], ti, side="left"), 0, n - 3)
        x0, x1, x2 = px[k, 0], px[k, 1], px[k, 2]
        a, b, c = x0 - 2 * x1 + x2, 2 * (x1 - x0), x0 - ti
        lin = np.abs(a) < 1e-12
        disc = np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))
        s = np.where(lin, -c / np.where(b == 0, 1.0, b), (-b + disc) / np.where(lin, 1.0, 2 * a))
        s = np.clip(s, 0.0, 1.0)
        coef = np.stack([(1 - s) ** 2, 2 * s * (1 - s), s * s], axis=1)  # (m, 3)
        out[inside] = np.einsum("mj,mjn->mn", coef, w[k])
        return out

    @classmethod
    def evaluate(cls, xn, yn, t) -> np.ndarray:
        return np.clip(cls.matrix(xn, t) @ np.asarray(yn, np.float64), 0.0, 1.0)


def fit(model, xn: Sequence[float], t: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Node ordinates (clipped to [0, 1]) minimising ``sum w (curve(t) - target)^2``."""
    xn = np.asarray(xn, np.float64)
    a = model.matrix(xn, t)
    w = np.ones_like(t, dtype=np.float64) if weights is None else np.sqrt(np.asarray(weights, np.float64))
    yn, *_ = np.linalg.lstsq(a * w[:, None], np.asarray(target, np.float64) * w, rcond=None)
    return np.clip(yn, 0.0, 1.0)


def fit_adaptive(model, t: np.ndarray, target: np.ndarray, n: int, max_nodes: int, rounds: int = 4,
                 delta: float = 0.004) -> tuple[np.ndarray, np.ndarray]:
    """Nodes for a target with corners (clipping, curve knots): start from ``n`` uniform nodes and,
    ``rounds`` times, add a node on each side of the worst residuals (``+/- delta``), refitting,
    up to ``max_nodes``. Returns ``(xn, yn)``."""
    t = np.asarray(t, np.float64)
    target = np.asarray(target, np.float64)
    xn = np.linspace(0.0, 1.0, n)
    yn = fit(model, xn, t, target)
    per_round = max(1, (max_nodes - n) // (2 * max(rounds, 1)))
    for _ in range(rounds):
        room = (max_nodes - len(xn)) // 2
        if room <= 0:
            break
        resid = np.abs(model.evaluate(xn, yn, t) - target)
        picks: list[float] = []
        for i in np.argsort(-resid):
            if resid[i] < 1e-4 or len(picks) >= min(per_round, room):
                break
            if all(abs(t[i] - q) > 4 * delta for q in picks):
                picks.append(float(t[i]))
        if not picks:
            break
        cand = np.unique(np.clip(np.concatenate([xn, [q - delta for q in picks], [q + delta for q in picks]]), 0.0, 1.0))
        keep = np.concatenate([[True], np.diff(cand) > delta / 4])  # no near-duplicate nodes
        xn = cand[keep]
        yn = fit(model, xn, t, target)
    return xn, yn


def max_error(model, xn, yn, t, target) -> float:
    """Largest absolute difference between the editor's curve and the target on ``t``."""
    return float(np.max(np.abs(model.evaluate(xn, yn, t) - target)))


def kink_nodes(knots: Sequence[float], delta: float, extra: Sequence[float] = ()) -> np.ndarray:
    """Nodes for a piecewise-linear target: 0, 1 and each interior knot +/- ``delta``."""
    k = np.asarray(knots, np.float64)
    pts = np.concatenate([[0.0, 1.0], k - delta, k + delta, np.asarray(extra, np.float64)])
    return np.unique(np.clip(np.round(pts, 6), 0.0, 1.0))


def per_channel_map(edits, x: np.ndarray) -> np.ndarray:
    """``(len(x), 3)``: channel ``k`` of the per-channel ``edits`` applied to ``x`` (float64 in/out).

    Only filters with ``per_channel`` set map channels independently; others raise ``ValueError``.
    """
    from ..edits import apply_edits

    for e in edits:
        if not e.filter_obj.per_channel:
            raise ValueError(f"{e.filter} is not a per-channel filter")
    ramp = np.repeat(np.asarray(x, np.float32)[None, :, None], 3, axis=2)
    out = apply_edits(ramp, list(edits), tiled=False) if edits else ramp
    return np.asarray(out[0], np.float64)
