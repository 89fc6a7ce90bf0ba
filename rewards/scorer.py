"""``DiscriminatorScorer``: the env's Scorer protocol over the discriminator actor.

One remote call per :meth:`score` (the whole batch). With ``feed_fakes`` the same call also
puts the scored images into the actor's fake pool (``score_and_add``): this is how the images
the agent generates reach the discriminator. Picklable: it holds the actor's *name* and
resolves the handle lazily with ``ray.get_actor`` in whichever process uses it (env runners).
"""

from __future__ import annotations

import numpy as np
import ray

from exposure_env.backend import to_numpy

from .actor import DEFAULT_NAME


class DiscriminatorScorer:
    """``score(images (N,64,64,3) float32, refs=None) -> (N,) float32``, higher = target-like.

    ``actor``: the actor's name (preferred) or a handle. ``refs`` is ignored (unpaired critic).
    """

    def __init__(self, actor=DEFAULT_NAME, feed_fakes: bool = True, namespace: str | None = None):
        if isinstance(actor, str):
            self.name, self._handle = actor, None
        else:
            self.name, self._handle = None, actor
        self.feed_fakes = bool(feed_fakes)
        self.namespace = namespace

    @property
    def handle(self):
        if self._handle is None:
            try:
                self._handle = ray.get_actor(self.name, namespace=self.namespace)
            except ValueError as exc:
                raise ValueError(f"discriminator actor {self.name!r} not found (create it with "
                                 f"rewards.actor.get_or_create_discriminator first)") from exc
        return self._handle

    def score(self, images, refs=None) -> np.ndarray:
        images = np.ascontiguousarray(to_numpy(images), dtype=np.float32)
        if len(images) == 0:
            return np.zeros(0, np.float32)
        method = self.handle.score_and_add if self.feed_fakes else self.handle.score
        return np.asarray(ray.get(method.remote(images)), dtype=np.float32)

    __call__ = score

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.name is not None:
            state["_handle"] = None  # re-resolved by name in the receiving process
        return state

    def __repr__(self) -> str:
        return f"DiscriminatorScorer({self.name or self._handle!r}, feed_fakes={self.feed_fakes})"
