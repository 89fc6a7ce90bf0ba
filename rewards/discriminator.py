"""The WGAN-GP critic of SPEC §5-6: its config, network and loss (pure torch).

``Discriminator`` scores ``(N, 64, 64, 3)`` linear-RGB images (nominally [0, 1], may exceed 1):
higher means more like the target photos. It sees the image plus three constant planes of
whole-image statistics (:func:`image_statistics`). ``critic_loss`` is the Wasserstein loss with
the one-sided gradient penalty. The trainer that owns weights, Adam and the fake pool is
:class:`rewards.critic_trainer.LocalDiscriminator`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from exposure_env.backend import is_torch
from exposure_env.colour import luminance
from exposure_env.style_features import DESCRIPTORS, feature_dim, style_descriptors, style_features

from . import schedule
from .networks import ConvEncoder, mlp, with_state_planes

#: Fields of :class:`DiscriminatorConfig` that fix the network's shape.
ARCHITECTURE_FIELDS = ("kind", "channels", "out_channels", "hidden", "input_size")
#: ``DiscriminatorConfig.kind``: the paper's convolutional critic, or an MLP on the photo's
#: global colour / tone statistics (:mod:`exposure_env.style_features`).
KINDS = ("conv", "features", "descriptors", "gaussian")
#: Kinds that judge :func:`~exposure_env.style_features.style_descriptors`, whitened by the target
#: photos' mean and covariance: ``descriptors`` (a WGAN MLP on them) and ``gaussian`` (no training:
#: minus the distance to the targets' mean, ``1 - sqrt(|z|**2 + 1)``).
DESCRIPTOR_KINDS = ("descriptors", "gaussian")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Network shape, optimiser and schedule of the critic (defaults = SPEC §5-6).

    ``kind="features"`` (this project's, not the paper's) replaces the convolutional encoder
    by :func:`exposure_env.style_features.style_features` and a two-layer MLP of width
    ``hidden``: the critic then judges only what the filters can change (the distribution of
    pixel colours), not scene content; ``channels`` / ``out_channels`` are unused.
    """

    kind: str = "conv"
    channels: tuple[int, ...] = (32, 64, 128)
    out_channels: int = 256
    hidden: int = 128
    input_size: int = 64
    lr: float = schedule.DISCRIMINATOR_LR
    betas: tuple[float, float] = schedule.ADAM_BETAS
    lr_decay: bool = True  # lr(t) = lr * 0.1 ** (3 t / T), see rewards.schedule
    lr_after_schedule: float = schedule.LR_AFTER_SCHEDULE  # past the schedule's end (t >= T) the lr is lr(T) times this
    gp_weight: float = 10.0
    batch_size: int = 64  # real and fake images per update (each)
    n_critic: int = 5  # updates per train() call ...
    n_critic_warmup: int = 100  # ... except this many
    warmup_iterations: int = 10  # for the first iterations
    warmup_every: int = 500  # and every this-many-th iteration
    pool_size: int = 2048  # generated images kept (FIFO)
    score_batch: int = 512  # images per forward pass when scoring
    checkpoint_every: int = 1  # train() calls between checkpoints to state_dir
    checkpoint_pool: bool = False  # include the fake pool in periodic checkpoints
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        positive = ("out_channels", "hidden", "input_size", "batch_size", "n_critic_warmup",
                    "warmup_every", "pool_size", "score_batch", "checkpoint_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"discriminator config: {name} must be > 0, got {getattr(self, name)}")
        for name in ("n_critic", "warmup_iterations"):
            if getattr(self, name) < 0:
                raise ValueError(f"discriminator config: {name} must be >= 0, got {getattr(self, name)}")
        schedule.check_lr_after_schedule(self.lr_after_schedule, "discriminator")
        if self.kind not in KINDS:
            raise ValueError(f"discriminator config: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.channels or min(self.channels) <= 0:
            raise ValueError(f"discriminator config: channels must be positive widths, got {self.channels}")
        if self.input_size % (2 ** (len(self.channels) + 1)):
            raise ValueError(
                f"discriminator config: input_size {self.input_size} is not divisible by "
                f"2**{len(self.channels) + 1} (one halving per conv layer)")
        if not (self.lr > 0 and self.gp_weight >= 0 and len(self.betas) == 2):
            raise ValueError(f"discriminator config: bad lr {self.lr} / gp_weight {self.gp_weight} / betas {self.betas}")

    @classmethod
    def from_any(cls, config: "DiscriminatorConfig | Mapping[str, Any] | None") -> "DiscriminatorConfig":
        """Accept a config, a dict of overrides (unknown keys are an error) or None (defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"discriminator config: expected a mapping, got {type(config).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"discriminator config: unknown setting(s) {unknown} (known: {sorted(known)})")
        return cls(**dict(config))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def critic_updates(self, iteration: int) -> int:
        """Updates for training iteration ``iteration`` (0-based): ``n_critic_warmup`` for the
        first ``warmup_iterations`` and every ``warmup_every``-th, else ``n_critic`` (SPEC §6)."""
        if iteration < self.warmup_iterations or iteration % self.warmup_every == 0:
            return self.n_critic_warmup
        return self.n_critic


def image_statistics(images: torch.Tensor) -> torch.Tensor:
    """``(N, H, W, 3)`` linear RGB -> ``(N, 3)``: mean luminance, luminance variance
    (population) and mean saturation ``(max - min) / (min(max + min, 2 - max - min) + 0.01)``
    of the image clipped to [0, 1] (SPEC §5). Differentiable."""
    lum = luminance(images[..., 0], images[..., 1], images[..., 2]).flatten(1)
    mean_lum = lum.mean(dim=1)
    var_lum = (lum - mean_lum[:, None]).pow(2).mean(dim=1)
    clipped = images.clamp(0.0, 1.0)
    hi = clipped.amax(dim=-1)
    lo = clipped.amin(dim=-1)
    sat = (hi - lo) / (torch.minimum(hi + lo, 2.0 - hi - lo) + 0.01)
    return torch.stack([mean_lum, var_lum, sat.flatten(1).mean(dim=1)], dim=1)


class Discriminator(nn.Module):
    """WGAN critic: ``(N, S, S, 3)`` images -> ``(N,)`` unbounded scores (higher = target-like)."""

    def __init__(self, config: DiscriminatorConfig | Mapping[str, Any] | None = None):
        super().__init__()
        self.config = cfg = DiscriminatorConfig.from_any(config)
        if cfg.kind in DESCRIPTOR_KINDS:
            self.encoder = None
            k = len(DESCRIPTORS)
            self.register_buffer("target_mean", torch.zeros(k))
            self.register_buffer("target_whiten", torch.eye(k))
            self.head = None
            if cfg.kind == "descriptors":
                self.head = nn.Sequential(nn.Linear(k, cfg.hidden), nn.LeakyReLU(0.2), mlp(cfg.hidden, 1, cfg.hidden))
            return
        if cfg.kind == "features":
            self.encoder = None
            self.head = nn.Sequential(
                nn.Linear(feature_dim(), cfg.hidden), nn.LeakyReLU(0.2), mlp(cfg.hidden, 1, cfg.hidden)
            )
            return
        self.encoder = ConvEncoder(6, cfg.channels, cfg.out_channels, cfg.input_size)
        self.head = mlp(self.encoder.feature_dim, 1, cfg.hidden)

    @torch.no_grad()
    def fit_targets(self, images: torch.Tensor) -> None:
        """Descriptor kinds: whiten descriptors by the target photos' (``(N, H, W, 3)`` crops)
        mean and covariance (a 1e-4 ridge keeps it invertible); other kinds: nothing to do."""
        if self.config.kind not in DESCRIPTOR_KINDS:
            return
        d = style_descriptors(images).double()
        cov = torch.cov(d.T) + 1e-4 * torch.eye(d.shape[1], dtype=d.dtype)
        self.target_mean.copy_(d.mean(0).float())
        self.target_whiten.copy_(torch.linalg.cholesky(torch.linalg.inv(cov)).float())

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """What the critic's Lipschitz constraint is measured on: the images themselves (conv,
        SPEC §6) or their statistics (``kind="features"``)."""
        if self.config.kind in DESCRIPTOR_KINDS:
            return (style_descriptors(images) - self.target_mean) @ self.target_whiten
        return style_features(images) if self.encoder is None else images

    def score_embedded(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N,)`` of :meth:`embed` outputs."""
        if self.config.kind == "gaussian":
            return 1.0 - torch.sqrt(x.pow(2).sum(-1) + 1.0)
        if self.encoder is None:
            return self.head(x).squeeze(-1)
        return self.head(self.encoder(with_state_planes(x, image_statistics(x)))).squeeze(-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.score_embedded(self.embed(images))


def critic_loss(
    D: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float = 10.0,
    alpha: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """WGAN critic loss with the one-sided gradient penalty of SPEC §6.

    ``loss = mean D(fake) - mean D(real) + gp_weight * mean(max(||grad_x D(x)|| - 1, 0)**2)``
    with ``x = alpha real + (1 - alpha) fake``, ``alpha ~ U[0, 1)`` per image (or given,
    shape ``(N,)``). Metrics (detached scalars): ``wasserstein`` (mean D(real) - mean D(fake)),
    ``gp``, ``grad_norm`` (mean over the batch), ``d_real``, ``d_fake``, ``loss``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"critic_loss: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, device=real.device, dtype=real.dtype)
    embed = getattr(D, "embed", None)
    score = getattr(D, "score_embedded", D)
    if embed is not None:
        with torch.no_grad():
            real, fake = embed(real), embed(fake)
    d_real = score(real).mean()
    d_fake = score(fake).mean()
    a = alpha.to(real.dtype).reshape(n, *([1] * (real.dim() - 1)))
    x = (a * real.detach() + (1.0 - a) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(score(x).sum(), x, create_graph=True)
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(dim=1) + 1e-12)
    gp = torch.clamp(norm - 1.0, min=0.0).pow(2).mean()
    wasserstein = d_real - d_fake
    loss = -wasserstein + gp_weight * gp
    metrics = {
        "loss": loss.detach(),
        "wasserstein": wasserstein.detach(),
        "gp": gp.detach(),
        "grad_norm": norm.detach().mean(),
        "d_real": d_real.detach(),
        "d_fake": d_fake.detach(),
    }
    return loss, metrics


def load_weights(module: nn.Module, weights: Mapping[str, Any]) -> nn.Module:
    """Load a ``{name: np.ndarray | tensor}`` state (e.g. from ``get_weights()``) into ``module``."""
    module.load_state_dict({k: v if is_torch(v) else torch.from_numpy(np.array(v))
                            for k, v in weights.items()})
    return module
