"""Scorers: ``D(image)`` of SPEC §4, higher = more like the target style.

A scorer maps a batch of thumbnails to one number per image. The environment asks it once
per (vector) step and pays ``reward_scale * (score(after) - score(before))``. Two scorers
need no training:

* :class:`PairedTargetScorer` -- minus the distance to the paired target crop (the §4
  "supervised" variant: the reward is the decrease of the distance);
* :class:`StatisticsScorer` -- minus the Mahalanobis distance of an image's §8 statistics
  (mean luminance, 2x luminance std, mean HLS saturation) to the target set's distribution.

The learned WGAN critic (``rewards.scorer.DiscriminatorScorer``) implements the same protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .backend import ops_for
from .datasets.pack import ImagePack
from .image_statistics import crop_statistics


@runtime_checkable
class Scorer(Protocol):
    """``score(images (N, H, W, 3) float32 linear RGB, refs=None) -> (N,) float32``.

    ``refs`` carries the paired target crops (same shape as ``images``) when the data has
    them. A scorer that cannot work without them sets ``requires_refs = True``.
    """

    def score(self, images, refs=None) -> np.ndarray: ...


def requires_refs(scorer) -> bool:
    """Whether ``scorer`` needs paired targets (``refs``) in :meth:`Scorer.score`."""
    return bool(getattr(scorer, "requires_refs", False))


class PairedTargetScorer:
    """``score = -distance(clip(image, 0, 1), clip(ref, 0, 1))`` per image.

    ``distance="l1"``: mean absolute difference; ``"l2"``: root mean square difference (both
    over pixels and channels, in linear [0, 1] units). Images are compared as they would be
    written (clipped); over-exposure has its own penalty. Works on NumPy and torch arrays.
    """

    requires_refs = True

    def __init__(self, distance: str = "l1"):
        if distance not in ("l1", "l2"):
            raise ValueError(f"PairedTargetScorer: distance must be 'l1' or 'l2', got {distance!r}")
        self.distance = distance

    def score(self, images, refs=None):
        if refs is None:
            raise ValueError("PairedTargetScorer needs the paired targets (refs); the image source has none")
        if tuple(refs.shape) != tuple(images.shape):
            raise ValueError(f"PairedTargetScorer: refs {tuple(refs.shape)} differ from images {tuple(images.shape)}")
        ops = ops_for(images)
        diff = ops.clip(images, 0.0, 1.0) - ops.clip(refs, 0.0, 1.0)
        n = images.shape[0]
        if self.distance == "l1":
            return -ops.abs(diff).reshape(n, -1).mean(-1)
        return -ops.pow((diff * diff).reshape(n, -1).mean(-1), 0.5)

    def __repr__(self) -> str:
        return f"PairedTargetScorer({self.distance!r})"


class StatisticsScorer:
    """Minus the Mahalanobis distance of an image's §8 statistics to the target set's.

    Fitting: ``num_crops`` random ``crop_size`` crops (with flips) of the target photos, their
    statistics ``(luminance mean, 2 x luminance std, mean HLS saturation)`` from
    :func:`exposure_env.image_statistics.crop_statistics`, their mean ``mu`` and covariance ``Sigma``
    (+ ``ridge`` on the diagonal so one-photo or flat target sets stay invertible).
    ``score(x) = -sqrt((s(x) - mu)^T Sigma^-1 (s(x) - mu))``: 0 at the target mean, about -1 one
    standard deviation away, linear in the distance far away (bounded per-step rewards).
    Statistics are computed on images clipped to [0, 1] (what would be written), NumPy only.
    """

    def __init__(
        self,
        target: ImagePack | np.ndarray,
        *,
        num_crops: int = 1024,
        crop_size: int = 64,
        ridge: float = 1e-4,
        seed: int = 0,
    ):
        if isinstance(target, ImagePack):
            crops, _ = target.sample(np.random.default_rng(seed), num_crops, crop_size)
        else:
            crops = np.asarray(target, dtype=np.float32)
            if crops.ndim != 4 or crops.shape[-1] != 3 or len(crops) == 0:
                raise ValueError(f"StatisticsScorer: target must be an ImagePack or (N, H, W, 3) images, got {crops.shape}")
        stats = np.concatenate([crop_statistics(crops[i : i + 256]) for i in range(0, len(crops), 256)])
        self.mean = stats.mean(axis=0)
        cov = np.atleast_2d(np.cov(stats, rowvar=False)) if len(stats) > 1 else np.zeros((3, 3))
        self.cov = cov + ridge * np.eye(len(self.mean))
        self.precision = np.linalg.inv(self.cov)

    def distance(self, images) -> np.ndarray:
        """Mahalanobis distance ``(N,)`` float64 of each image's statistics to the target mean."""
        d = crop_statistics(images) - self.mean
        return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", d, self.precision, d), 0.0))

    def score(self, images, refs=None) -> np.ndarray:
        return (-self.distance(images)).astype(np.float32)

    def __repr__(self) -> str:
        mu = ", ".join(f"{v:.3f}" for v in self.mean)
        return f"StatisticsScorer(target mean=({mu}))"
