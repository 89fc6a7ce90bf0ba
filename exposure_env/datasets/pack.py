"""A compact in-memory pack of training crops, the unit every dataset produces.

Photos are decoded once into square crops (80x80 by default, linear RGB float32 in [0, ~1]),
stored as one ``.npz`` array pack, and sampled by the environment and the discriminator as
random 64x64 crops with random left-right flips (SPEC §7). A pack may carry a paired target
crop for every input crop (same geometry), used by the paired reward and by evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write


def held_out_count(n_photos: int, fraction: float, max_crops: int | None = None, crops_per_photo: float = 1.0) -> int:
    """Photos :meth:`ImagePack.split_photos` holds out of ``n_photos`` (>= 2): ``fraction`` of
    them, no more than needed for ``max_crops`` crops at ``crops_per_photo``; at least 1, not all."""
    k = round(n_photos * fraction)
    if max_crops is not None:
        k = min(k, int(np.ceil(max_crops / max(crops_per_photo, 1e-9))))
    return int(np.clip(k, 1, n_photos - 1))


@dataclass
class ImagePack:
    """``images`` ``(N, S, S, 3)`` float32 linear RGB; optional ``paired`` of the same shape."""

    images: np.ndarray
    paired: np.ndarray | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.images = np.ascontiguousarray(self.images, dtype=np.float32)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or len(self.images) == 0:
            raise ValueError(f"ImagePack needs a non-empty (N, S, S, 3) array, got {self.images.shape}")
        if self.paired is not None:
            self.paired = np.ascontiguousarray(self.paired, dtype=np.float32)
            if self.paired.shape != self.images.shape:
                raise ValueError(f"paired targets {self.paired.shape} differ from inputs {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def crop_size(self) -> int:
        return int(self.images.shape[1])

    def sample(self, rng: np.random.Generator, n: int, size: int = 64, *, augment: bool = True):
        """``n`` random ``size`` x ``size`` crops with random flips.

        Returns ``(images, paired)``; ``paired`` is None when the pack has no targets. With
        ``augment=False`` the crops are centred and unflipped (validation).
        """
        idx = rng.integers(0, len(self), size=n)
        return self.crops(idx, rng, size, augment=augment)

    def crops(self, idx, rng: np.random.Generator | None, size: int = 64, *, augment: bool = True):
        """Crops of the given pack indices (see :meth:`sample`)."""
        idx = np.asarray(idx)
        s = self.crop_size
        if size > s:
            raise ValueError(f"crop size {size} larger than the pack's {s}")
        n = len(idx)
        if augment and rng is not None:
            oy = rng.integers(0, s - size + 1, size=n)
            ox = rng.integers(0, s - size + 1, size=n)
            flip = rng.random(n) < 0.5
        else:
            oy = ox = np.full(n, (s - size) // 2)
            flip = np.zeros(n, dtype=bool)
        out = np.empty((n, size, size, 3), np.float32)
        out_p = np.empty_like(out) if self.paired is not None else None
        for k, (i, y, x, f) in enumerate(zip(idx, oy, ox, flip)):
            step = -1 if f else 1
            out[k] = self.images[i, y : y + size, x : x + size][:, ::step]
            if out_p is not None:
                out_p[k] = self.paired[i, y : y + size, x : x + size][:, ::step]
        return out, out_p

    def split(self, fraction: float, seed: int = 0) -> tuple["ImagePack", "ImagePack"]:
        """Deterministic split into (first, second) with ``fraction`` of crops in the second."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self))
        k = max(1, int(round(len(self) * fraction)))
        a, b = order[k:], order[:k]
        return self.subset(a), self.subset(b)

    def photo_of(self, i: int) -> str:
        """The photo crop ``i`` comes from: its name up to the last ``#`` (crops are named ``photo#k``)."""
        return self.names[i].rsplit("#", 1)[0] if self.names else str(i)

    def photos(self) -> list[str]:
        """Distinct photo names of the crops, in first-seen order (one per crop without names)."""
        return list(dict.fromkeys(self.photo_of(i) for i in range(len(self))))

    def split_photos(self, fraction: float, seed: int = 0, max_second: int | None = None) -> tuple["ImagePack", "ImagePack"]:
        """Split into (first, second) by *photo*: :func:`held_out_count` photos go to the
        second, which keeps at most ``max_second`` of their crops (a fixed random subset).
        A pack of one photo raises ``ValueError``."""
        photos = self.photos()
        if len(photos) < 2:
            raise ValueError(f"cannot hold out photos: the pack has {len(photos)} photo")
        rng = np.random.default_rng(seed)
        k = held_out_count(len(photos), fraction, max_second, len(self) / len(photos))
        held = {photos[i] for i in rng.permutation(len(photos))[:k]}
        second = np.array([i for i in range(len(self)) if self.photo_of(i) in held])
        first = np.array([i for i in range(len(self)) if self.photo_of(i) not in held])
        if max_second is not None and len(second) > max_second:
            second = np.sort(rng.choice(second, size=max_second, replace=False))
        return self.subset(first), self.subset(second)

    def subset(self, idx) -> "ImagePack":
        idx = np.asarray(idx)
        names = [self.names[i] for i in idx] if self.names else []
        return ImagePack(self.images[idx], None if self.paired is None else self.paired[idx], names)

    def save(self, path: str | Path) -> Path:
        """Write an uncompressed ``.npz`` (fast to load; float16 would lose shadow detail)."""
        path = Path(path)
        arrays = {"images": self.images, "names": np.asarray(self.names, dtype=str)}
        if self.paired is not None:
            arrays["paired"] = self.paired
        with atomic_write(path) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no ".npz"
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ImagePack":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                paired = z["paired"] if "paired" in z.files else None
                names = [str(n) for n in z["names"]] if "names" in z.files else []
                return cls(z["images"], paired, names)
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a valid image pack ({exc})") from exc
