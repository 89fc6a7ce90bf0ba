"""``FakePool``: the critic's bounded FIFO of generated ("fake") images (SPEC §6)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from exposure_env.backend import to_numpy


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
        data = to_numpy(state["data"])
        saved_capacity, saved_next = int(state["capacity"]), int(state["next"])
        if saved_capacity == self.capacity:
            self._data = np.empty((self.capacity,) + data.shape[1:], np.float32)
            self._data[: len(data)] = data
            self._count, self._next = len(data), saved_next
            return
        if len(data) == saved_capacity:  # a full ring: oldest entry sits at `next`
            data = data[(saved_next + np.arange(len(data))) % len(data)]
        self.add(data)
