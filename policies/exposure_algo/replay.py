"""The pool of image states of SPEC §6, fed by the env runners.

The paper keeps 128 image states; each iteration a batch of 64 takes one step and finished
trajectories are replaced by fresh photos. Here the *stepping* happens on the env runners:
their vector envs hold the trajectories in flight, every vector step moves each of them one
step with the current policy, and gymnasium's autoreset replaces finished ones by fresh photos.
Every state they visit (the observation an action was taken from) is shipped to the driver
and lands in this pool; the learner draws its batch of 64 from the 128 most recent states and
recomputes the step differentiably (:mod:`policies.exposure_algo.episode_update`, :mod:`~policies.exposure_algo.td_update`).

A state is the observation ``{"image": (S, S, 3) float32 linear RGB, "state": (3 + F,)}``.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np


class StatePool:
    """Ring buffer of the ``capacity`` most recent image states (oldest overwritten)."""

    def __init__(self, capacity: int = 128):
        if capacity < 1:
            raise ValueError(f"state pool capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.images: np.ndarray | None = None
        self.states: np.ndarray | None = None
        self._count = 0
        self._next = 0
        #: States ever added (for metrics).
        self.added = 0

    def __len__(self) -> int:
        return self._count

    def add(self, images: np.ndarray, states: np.ndarray) -> None:
        """Append ``images (n, S, S, 3)`` with their state vectors ``(n, d)``."""
        images = np.asarray(images, dtype=np.float32)
        states = np.asarray(states, dtype=np.float32)
        if images.ndim != 4 or images.shape[-1] != 3 or states.ndim != 2 or len(states) != len(images):
            raise ValueError(f"state pool: expected images (n, S, S, 3) and states (n, d), got {images.shape} and {states.shape}")
        if len(images) == 0:
            return
        if self.images is None:
            self.images = np.empty((self.capacity,) + images.shape[1:], np.float32)
            self.states = np.empty((self.capacity,) + states.shape[1:], np.float32)
        elif images.shape[1:] != self.images.shape[1:] or states.shape[1:] != self.states.shape[1:]:
            raise ValueError(
                f"state pool: got images {images.shape[1:]} / states {states.shape[1:]}, "
                f"the pool holds {self.images.shape[1:]} / {self.states.shape[1:]}"
            )
        self.added += len(images)
        images, states = images[-self.capacity :], states[-self.capacity :]
        idx = (self._next + np.arange(len(images))) % self.capacity
        self.images[idx] = images
        self.states[idx] = states
        self._next = int((self._next + len(images)) % self.capacity)
        self._count = min(self.capacity, self._count + len(images))

    def add_episodes(self, episodes: Iterable) -> int:
        """Add the states of RLlib ``SingleAgentEpisode`` chunks: every observation an action
        was taken from (a chunk's final observation is not a state of this chunk). Returns the count."""
        images, states = [], []
        for ep in episodes:
            n = len(ep)
            if n == 0:
                continue
            obs = ep.get_observations(slice(0, n))
            if isinstance(obs, dict):  # a finalised (numpy) episode: batched arrays
                images.append(np.asarray(obs["image"]))
                states.append(np.asarray(obs["state"]))
            else:  # an ongoing episode: a list of observations
                images.append(np.stack([o["image"] for o in obs]))
                states.append(np.stack([o["state"] for o in obs]))
        if not images:
            return 0
        images, states = np.concatenate(images), np.concatenate(states)
        self.add(images, states)
        return len(images)

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        """``n`` states drawn uniformly without replacement (with, when the pool holds fewer)."""
        if self._count == 0:
            raise ValueError("state pool is empty: the env runners have not produced any states yet")
        idx = rng.choice(self._count, size=n, replace=n > self._count)
        return {"image": self.images[idx], "state": self.states[idx]}

    # --- checkpoint state (small: 128 x 64 x 64 x 3 float32 = 6 MiB) --------------------------
    def get_state(self) -> dict:
        return {
            "capacity": self.capacity,
            "images": None if self.images is None else self.images[: self._count].copy(),
            "states": None if self.states is None else self.states[: self._count].copy(),
            "next": self._next,
            "added": self.added,
        }

    def set_state(self, state: Mapping) -> None:
        self.images = self.states = None
        self._count = self._next = 0
        if state.get("images") is not None and len(state["images"]):
            self.add(state["images"], state["states"])
            if int(state.get("capacity", -1)) == self.capacity:
                self._next = int(state["next"]) % self.capacity
        self.added = int(state.get("added", self._count))
