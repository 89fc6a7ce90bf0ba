"""The WGAN-GP critic of SPEC §5-6 and its in-process trainer (no Ray here).

``Discriminator`` scores ``(N, 64, 64, 3)`` linear-RGB images (nominally [0, 1], may exceed 1):
higher means more like the target photos. It sees the image plus three constant planes of
whole-image statistics (:func:`image_statistics`). ``critic_loss`` is the Wasserstein loss with
the one-sided gradient penalty. ``LocalDiscriminator`` owns weights, Adam, a bounded pool of
generated ("fake") images and the real target pack, and runs the n_critic schedule; the Ray
actor in :mod:`rewards.actor` is a thin wrapper around it.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from exposure_env.colour import luminance
from exposure_env.datasets.pack import ImagePack
from exposure_env.style_features import feature_dim, style_features
from policies.networks import ConvEncoder, mlp, with_state_planes

from . import schedule

#: File written in ``state_dir`` by periodic checkpoints.
CHECKPOINT_NAME = "discriminator.pt"
#: Fields of :class:`DiscriminatorConfig` that fix the network's shape.
ARCHITECTURE_FIELDS = ("kind", "channels", "out_channels", "hidden", "input_size")
#: ``DiscriminatorConfig.kind``: the paper's convolutional critic, or an MLP on the photo's
#: global colour / tone statistics (:mod:`exposure_env.style_features`).
KINDS = ("conv", "features")


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
        if cfg.kind == "features":
            self.encoder = None
            self.head = nn.Sequential(
                nn.Linear(feature_dim(), cfg.hidden), nn.LeakyReLU(0.2), mlp(cfg.hidden, 1, cfg.hidden)
            )
            return
        self.encoder = ConvEncoder(6, cfg.channels, cfg.out_channels, cfg.input_size)
        self.head = mlp(self.encoder.feature_dim, 1, cfg.hidden)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """What the critic's Lipschitz constraint is measured on: the images themselves (conv,
        SPEC §6) or their statistics (``kind="features"``)."""
        return style_features(images) if self.encoder is None else images

    def score_embedded(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N,)`` of :meth:`embed` outputs."""
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


class FakePool:
    """Bounded FIFO of generated images ``(S, S, 3)`` float32; the oldest are overwritten."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._data: np.ndarray | None = None
        self._count = 0  # valid entries
        self._next = 0  # write position

    def __len__(self) -> int:
        return self._count

    def add(self, images: np.ndarray) -> None:
        images = np.asarray(images, dtype=np.float32)
        if len(images) == 0:
            return
        if self._data is None:
            self._data = np.empty((self.capacity,) + images.shape[1:], np.float32)
        elif images.shape[1:] != self._data.shape[1:]:
            raise ValueError(f"fake pool: image shape {images.shape[1:]} differs from {self._data.shape[1:]}")
        images = images[-self.capacity:]
        idx = (self._next + np.arange(len(images))) % self.capacity
        self._data[idx] = images
        self._next = int((self._next + len(images)) % self.capacity)
        self._count = min(self.capacity, self._count + len(images))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` images drawn uniformly with replacement."""
        if self._count == 0:
            raise ValueError("fake pool is empty: add generated images before training")
        return self._data[rng.integers(0, self._count, size=n)]

    def state(self) -> dict[str, Any]:
        data = None if self._data is None else torch.from_numpy(self._data[: self._count].copy())
        return {"capacity": self.capacity, "data": data, "next": self._next}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state`; same capacity restores the exact ring layout, another
        capacity keeps the newest images in order."""
        self._data, self._count, self._next = None, 0, 0
        if state.get("data") is None:
            return
        data = state["data"].numpy() if isinstance(state["data"], torch.Tensor) else np.asarray(state["data"])
        saved_capacity, saved_next = int(state["capacity"]), int(state["next"])
        if saved_capacity == self.capacity:
            self._data = np.empty((self.capacity,) + data.shape[1:], np.float32)
            self._data[: len(data)] = data
            self._count, self._next = len(data), saved_next
            return
        if len(data) == saved_capacity:  # a full ring: oldest entry sits at `next`
            data = data[(saved_next + np.arange(len(data))) % len(data)]
        self.add(data)


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` / ``"auto"``: CUDA when visible, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_weights(module: nn.Module, weights: Mapping[str, Any]) -> nn.Module:
    """Load a ``{name: np.ndarray | tensor}`` state (e.g. from ``get_weights()``) into ``module``."""
    module.load_state_dict({k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v))
                            for k, v in weights.items()})
    return module


class LocalDiscriminator:
    """In-process critic trainer: weights, Adam, fake pool, real target crops, n_critic schedule.

    ``target_pack``: an :class:`ImagePack` (or the path of its ``.npz``) of target-style
    photos; may be None for a scoring-only instance. ``state_dir``: when given, the full state
    (pool optional) is written to ``state_dir/discriminator.pt`` every ``checkpoint_every``
    train calls (atomically) and restored from there on construction if the file exists.
    The live network is ``.model`` (a :class:`Discriminator`).
    """

    def __init__(
        self,
        target_pack: ImagePack | str | os.PathLike | None = None,
        config: DiscriminatorConfig | Mapping[str, Any] | None = None,
        state_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ):
        self.config = cfg = DiscriminatorConfig.from_any(config)
        self.device = resolve_device(device)
        if isinstance(target_pack, (str, os.PathLike)):
            target_pack = ImagePack.load(target_pack)
        if target_pack is not None and target_pack.crop_size < cfg.input_size:
            raise ValueError(f"target pack crops are {target_pack.crop_size}px, the discriminator needs {cfg.input_size}")
        self.pack = target_pack
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = Discriminator(cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.pool = FakePool(cfg.pool_size)
        self.rng = np.random.default_rng(cfg.seed)
        self.train_calls = 0
        self.total_updates = 0
        self.iteration = -1
        self.counters = {"score_calls": 0, "images_scored": 0, "fakes_added": 0}
        self.last_metrics: dict[str, float] = {}
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.restored_from: str | None = None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            if self.checkpoint_path.exists():
                self.restore(self.checkpoint_path, _checkpoint=False)
                self.restored_from = str(self.checkpoint_path)

    # ---- scoring -------------------------------------------------------------------------
    def _check_images(self, images) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        s = self.config.input_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"discriminator: expected images of shape (N, {s}, {s}, 3), got {images.shape}")
        return images

    @torch.no_grad()
    def score(self, images: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` float32 -> ``(N,)`` float32 critic scores (eval mode, no grad)."""
        images = self._check_images(images)
        self.counters["score_calls"] += 1
        self.counters["images_scored"] += len(images)
        self.model.eval()
        out = np.empty(len(images), np.float32)
        b = self.config.score_batch
        for i in range(0, len(images), b):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + b])).to(self.device)
            out[i : i + b] = self.model(x).float().cpu().numpy()
        return out

    def add_fake(self, images: np.ndarray) -> int:
        """Append generated images to the fake pool; returns the pool size."""
        images = self._check_images(images)
        self.pool.add(images)
        self.counters["fakes_added"] += len(images)
        return len(self.pool)

    def score_and_add(self, images: np.ndarray) -> np.ndarray:
        """:meth:`score`, then :meth:`add_fake` of the same images (one call for the env)."""
        scores = self.score(images)
        self.add_fake(images)
        return scores

    # ---- training ------------------------------------------------------------------------
    def lr_at(self, iteration: int, total_iterations: int) -> float:
        if not self.config.lr_decay:
            return self.config.lr
        return schedule.learning_rate(self.config.lr, iteration, total_iterations)

    def update(self, alpha: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """One Adam step on ``batch_size`` real crops and ``batch_size`` pooled fakes."""
        if self.pack is None:
            raise ValueError("discriminator: no target pack, cannot train")
        n = self.config.batch_size
        real, _ = self.pack.sample(self.rng, n, self.config.input_size)
        fake = self.pool.sample(self.rng, n)
        if alpha is None:
            alpha = self.rng.random(n, dtype=np.float32)
        dev = self.device
        self.model.train()
        loss, metrics = critic_loss(
            self.model,
            torch.from_numpy(real).to(dev),
            torch.from_numpy(np.ascontiguousarray(fake)).to(dev),
            self.config.gp_weight,
            torch.from_numpy(np.asarray(alpha, np.float32)).to(dev),
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.total_updates += 1
        return metrics

    def train(self, iteration: int, total_iterations: int) -> dict[str, float]:
        """Run the n_critic updates of training iteration ``iteration`` (0-based) of
        ``total_iterations``, at ``lr(iteration)``; returns the mean metrics of the call.
        With an empty fake pool nothing is trained (``updates == 0``)."""
        iteration, total_iterations = int(iteration), int(total_iterations)
        if total_iterations <= 0:
            raise ValueError(f"discriminator.train: total_iterations must be > 0, got {total_iterations}")
        lr = self.lr_at(iteration, total_iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n_updates = self.config.critic_updates(iteration) if len(self.pool) else 0
        sums: dict[str, torch.Tensor] = {}
        for _ in range(n_updates):
            for k, v in self.update().items():
                sums[k] = sums[k] + v if k in sums else v
        metrics = {k: float(v) / n_updates for k, v in sums.items()}
        self.train_calls += 1
        self.iteration = iteration
        metrics.update(iteration=iteration, updates=n_updates, total_updates=self.total_updates,
                       lr=lr, pool_size=len(self.pool), train_calls=self.train_calls)
        self.last_metrics = metrics
        if self.state_dir is not None and self.train_calls % self.config.checkpoint_every == 0:
            self.checkpoint()
        return dict(metrics)

    def metrics(self) -> dict[str, float]:
        """Last train metrics plus call counters (score_calls, images_scored, fakes_added)."""
        return {**self.last_metrics, **self.counters, "pool_size": len(self.pool),
                "train_calls": self.train_calls, "total_updates": self.total_updates}

    # ---- state ---------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The critic's ``state_dict`` as CPU numpy arrays (load with :func:`load_weights`)."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: Mapping[str, Any]) -> None:
        load_weights(self.model, weights)

    def get_state(self, include_pool: bool = False) -> dict[str, Any]:
        """Weights, optimiser, counters, RNG, config (and the fake pool) on CPU."""
        state = {
            "config": self.config.to_dict(),
            "model": _to_cpu(self.model.state_dict()),
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "rng": self.rng.bit_generator.state,
            "train_calls": self.train_calls,
            "total_updates": self.total_updates,
            "iteration": self.iteration,
            "counters": dict(self.counters),
            "last_metrics": dict(self.last_metrics),
        }
        if include_pool:
            state["pool"] = self.pool.state()
        return state

    def set_state(self, state: Mapping[str, Any], _source: str = "state") -> None:
        """Inverse of :meth:`get_state`; the pool is replaced only when ``state`` has one."""
        saved = state.get("config", {})
        for name in ARCHITECTURE_FIELDS:
            want = getattr(self.config, name)
            got = tuple(saved[name]) if name == "channels" and name in saved else saved.get(name, want)
            if got != want:
                raise ValueError(f"{_source}: discriminator {name} is {got}, this one has {want}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.train_calls = int(state["train_calls"])
        self.total_updates = int(state["total_updates"])
        self.iteration = int(state["iteration"])
        self.counters.update(state.get("counters", {}))
        self.last_metrics = dict(state.get("last_metrics", {}))
        if state.get("pool") is not None:
            self.pool.load_state(state["pool"])

    def save(self, path: str | os.PathLike, include_pool: bool = True) -> str:
        """Atomically write the state to ``path`` (``torch.save``); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(self.get_state(include_pool=include_pool), tmp)
        os.replace(tmp, path)
        return str(path)

    def restore(self, path: str | os.PathLike, _checkpoint: bool = True) -> None:
        """Load a file written by :meth:`save` (then re-checkpoint to ``state_dir`` if set)."""
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: not a discriminator checkpoint ({first})") from exc
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{path}: not a discriminator checkpoint (no 'model' entry)")
        self.set_state(state, _source=str(path))
        if _checkpoint and self.state_dir is not None:
            self.checkpoint()

    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / CHECKPOINT_NAME

    def checkpoint(self) -> str | None:
        """Write the periodic checkpoint to ``state_dir`` (no-op without one)."""
        if self.state_dir is None:
            return None
        return self.save(self.checkpoint_path, include_pool=self.config.checkpoint_pool)
