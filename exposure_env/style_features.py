"""Global colour and tone statistics of an image: what a global, point-wise edit can change.

Every filter of the white box is a global point operation (no spatial edits), so what one
can change in a photo is the *distribution* of its pixel colours. :func:`style_features`
summarises that distribution in a fixed-length, differentiable vector, used by

* the feature critic (:class:`rewards.discriminator.Discriminator` with ``kind="features"``):
  a WGAN critic on these statistics judges style (tone, colour balance, saturation) and
  cannot latch on to scene content, so it generalises from a handful of target photos, and
  unlike the paper's critic it has no convolutions to train;
* the ``stats`` policy trunk (:mod:`policies.rl_module`): decisions conditioned on the
  photo's statistics, which transfer to scenes never seen in training.

Definition (torch, differentiable almost everywhere; images ``(N, H, W, 3)``, any range):

1. ``pool`` x ``pool`` average pooling (64x64 -> 8x8 = 64 samples by default), values
   clipped to ``[0, CLIP_MAX]``;
2. per sample: R, G, B, luminance ``L = 0.27 R + 0.67 G + 0.06 B`` and saturation
   ``(max - min) / (max + 1e-3)``; ``quantiles`` quantiles of each (ranks ``(k + 0.5) / q``,
   through a sort, so the gradient reaches the sample at that rank);
3. ``log2`` of the luminance quantiles (floored at ``2**-14``) divided by 8 (stops / 8: a
   dark linear RAW and an exposed photo are both well scaled);
4. means of R, G, B, the standard deviation of L, the mean saturation and the mean log
   chromaticities ``log((R + e) / (G + e))``, ``log((B + e) / (G + e))`` (casts, whatever
   the exposure).

Length: ``6 * quantiles + 7`` (103 for 16 quantiles).
"""

from __future__ import annotations

import torch

from .colour import luminance

#: Pixel values are clipped to [0, CLIP_MAX] before the statistics (over-exposure has its own penalty).
CLIP_MAX = 2.0
QUANTILES = 16
POOL = 8
_EPS = 1e-3


def feature_dim(quantiles: int = QUANTILES) -> int:
    """Length of :func:`style_features`' vector."""
    return 6 * int(quantiles) + 7


def style_features(images: torch.Tensor, quantiles: int = QUANTILES, pool: int = POOL) -> torch.Tensor:
    """``(N, H, W, 3)`` -> ``(N, 6 q + 7)`` statistics (module docstring).

    >>> import torch
    >>> x = torch.full((1, 8, 8, 3), 0.25)
    >>> f = style_features(x, quantiles=4, pool=2)
    >>> f.shape
    torch.Size([1, 31])
    >>> [round(v, 3) for v in f[0, :4].tolist()]  # red quantiles of a flat grey image
    [0.25, 0.25, 0.25, 0.25]
    >>> round(float(f[0, 20]) * 8, 3)  # log2 of its luminance, in stops
    -2.0
    """
    x = images.permute(0, 3, 1, 2)
    if pool > 1 and x.shape[-1] % pool == 0 and x.shape[-2] % pool == 0:
        x = torch.nn.functional.avg_pool2d(x, pool)
    x = x.flatten(2).clamp(0.0, CLIP_MAX)  # (N, 3, P)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    lum = luminance(r, g, b)
    hi, lo = x.amax(1), x.amin(1)
    sat = (hi - lo) / (hi + _EPS)
    planes = torch.stack([r, g, b, lum, sat], 1)  # (N, 5, P)
    n_samples = planes.shape[-1]
    ranks = ((torch.arange(quantiles, device=x.device, dtype=x.dtype) + 0.5) / quantiles * n_samples).long()
    q = planes.sort(-1).values[..., ranks.clamp(max=n_samples - 1)]  # (N, 5, q)
    log_lum = torch.log2(q[:, 3].clamp_min(2.0**-14)) / 8.0
    moments = torch.stack(
        [
            r.mean(-1),
            g.mean(-1),
            b.mean(-1),
            lum.std(-1),
            sat.mean(-1),
            torch.log((r + _EPS) / (g + _EPS)).mean(-1),
            torch.log((b + _EPS) / (g + _EPS)).mean(-1),
        ],
        1,
    )
    return torch.cat([q.flatten(1), log_lum, moments], 1)


#: What :func:`style_descriptors` returns, in order.
DESCRIPTORS = ("mean_luminance", "luminance_std", "log_red_green", "log_blue_green", "mean_saturation")


def style_descriptors(images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` -> ``(N, 5)``: the few statistics a style fixes whatever the scene.

    Of the image clipped to [0, 1]: mean and standard deviation of the luminance
    ``0.27 R + 0.67 G + 0.06 B`` (brightness, contrast), the log ratios of the channel means
    ``log((mean R + e) / (mean G + e))`` and ``log((mean B + e) / (mean G + e))`` (colour cast)
    and the mean saturation ``(max - min) / (max + e)``, ``e = 1e-3``. Differentiable.

    >>> x = torch.full((1, 4, 4, 3), 0.5)
    >>> [round(v, 3) for v in style_descriptors(x)[0].tolist()]
    [0.5, 0.0, 0.0, 0.0, 0.0]
    """
    x = images.clamp(0.0, 1.0).flatten(1, 2)  # (N, P, 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    lum = luminance(r, g, b)
    hi, lo = x.amax(-1), x.amin(-1)
    means = x.mean(1)
    return torch.stack(
        [
            lum.mean(-1),
            lum.std(-1, correction=0),
            torch.log((means[:, 0] + _EPS) / (means[:, 1] + _EPS)),
            torch.log((means[:, 2] + _EPS) / (means[:, 1] + _EPS)),
            ((hi - lo) / (hi + _EPS)).mean(-1),
        ],
        1,
    )


__all__ = ["CLIP_MAX", "DESCRIPTORS", "POOL", "QUANTILES", "feature_dim", "style_descriptors", "style_features"]
