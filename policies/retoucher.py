"""Retouch a photo with an exported policy: decide on the thumbnail, apply once at full size.

:class:`Retoucher` loads a ``.exposure`` file (:mod:`policies.policy_file`) and, for one photo
``(H, W, 3)`` float32 linear RGB,

1. takes ``S x S`` thumbnails of squares covering the photo (:func:`exposure_env.resample.decision_views`,
   S = the policy's size): the centre square alone for a square photo, 3 squares for 3:2 or 16:9;
2. runs :func:`policies.rollout.rollout` on them for ``max_steps`` (5) steps: each step the most
   likely filter *not used yet* (used filters are masked) with the policy's mean parameters,
   the log-probabilities and parameters averaged over the views (one decision per photo),
   applied to every view to get the next state -- exactly the environment's step;
3. applies the resulting edit list ONCE to the full-resolution photo with
   :func:`exposure_env.edits.apply_edits` (one fused CuPy kernel on GPU, the tiled
   multi-threaded path on CPU), so the result does not depend on the photo's resolution.

Deciding on the whole photo rather than on its centre square alone scored better held out on
both demo styles, on the mean and the worst of 3 seeds, and for 36 of 43 checkpoints (the
others within 0.04 dB): docs/benchmarks.md, "Deciding on the whole photo".

``samples=K`` gives K different plausible retouches: the filter is drawn from the policy's
softmax over the unused filters and, when the policy has dropout (the paper's one-to-many
mapping), the dropout trace is used; the same ``seed`` gives the same K results.

This is the inference API (torch + NumPy, no Ray). The batch application behind
``exposure retouch`` (folders, output safety, sidecars, pipelined and Ray executors) is
:mod:`tune_configs.batch`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from exposure_env import fused_cpu
from exposure_env import resample
from exposure_env.backend import cupy_or_none
from exposure_env.edits import Edit, apply_edits

from .policy_file import ExportedPolicy, load_policy
from .rollout import rollout

BACKENDS = ("auto", "numpy", "torch", "cupy")


def resolve_backend(name: str = "auto") -> str:
    """``auto`` -> ``cupy`` when a GPU and CuPy are present, else ``numpy`` (tiled CPU path)."""
    name = str(name).lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "cupy" if cupy_or_none() is not None else "numpy"
    if name == "cupy" and cupy_or_none() is None:
        raise ValueError("backend 'cupy' needs CuPy and a CUDA GPU (pip install exposure-rl[gpu])")
    return name


@dataclass
class Decision:
    """The edits chosen on a thumbnail: ``edits[k]`` for sample ``k``; ``frames`` are the
    thumbnails before and after each step, ``(K, S, S, 3)`` each (linear RGB)."""

    edits: list[list[Edit]]
    frames: list[np.ndarray]
    seed: int | None = None

    def strip(self, k: int = 0, path=None) -> np.ndarray:
        """Step strip of sample ``k`` (:func:`exposure_env.render.step_strip`), PNG if ``path``."""
        from exposure_env.render import step_strip

        labels = ["Input"] + [e.describe() for e in self.edits[k]]
        return step_strip([f[k] for f in self.frames], labels, path)


class Retoucher:
    """Apply an exported policy to photos (see the module docstring).

    ``path_or_policy``: a ``.exposure`` path or an :class:`ExportedPolicy`. ``backend``: where
    the edit list is applied at full size (``auto``, ``numpy``, ``torch``, ``cupy``).
    ``workers``: CPU threads for the tiled apply (default: all usable cores).
    """

    def __init__(self, path_or_policy, backend: str = "auto", *, policy_backend: str = "torchscript", workers: int | None = None):
        self.policy = path_or_policy if isinstance(path_or_policy, ExportedPolicy) else load_policy(path_or_policy, backend=policy_backend)
        self.backend = resolve_backend(backend)
        self.workers = workers
        self._lock = threading.Lock()  # dropout sampling seeds torch's global generator

    @property
    def steps(self) -> int:
        return min(self.policy.max_steps, len(self.policy.filters))

    def _net(self, stochastic: bool):
        policy = self.policy

        def fn(image: torch.Tensor, state: torch.Tensor):
            logits, actions = policy(image, state, stochastic=stochastic)
            return torch.from_numpy(logits), torch.from_numpy(actions)

        return fn

    def views(self, image: np.ndarray) -> np.ndarray:
        """The thumbnails the policy decides on, ``(V, S, S, 3)`` linear RGB, centre square first
        (:func:`exposure_env.resample.decision_views`), from one photo ``(H, W, 3)``."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"retouch: expected an (H, W, 3) image, got shape {image.shape}")
        return resample.decision_views(image, self.policy.thumb_size)

    def decide(self, image: np.ndarray, *, samples: int | None = None, seed: int | None = None) -> Decision:
        """Choose the edits for ``image``: a photo ``(H, W, 3)`` linear RGB, or the ``(V, S, S, 3)``
        thumbnails :meth:`views` gives for it (what the Ray batch's decide stage receives).

        ``samples=None``: one deterministic decision. ``samples=K``: K sampled decisions,
        reproducible for a given ``seed`` (a random one is drawn and returned when None).
        ``frames`` show the centre square.
        """
        image = np.asarray(image, dtype=np.float32)
        s = self.policy.thumb_size
        if image.ndim == 4 and image.shape[1:] == (s, s, 3) and len(image):
            thumbs = image
        else:
            thumbs = self.views(image)
        views = len(thumbs)
        filters = self.policy.filters
        if samples is None:
            _, edits, frames = rollout(self._net(False), thumbs, filters, self.steps, True, mask_used=True, views=views)
            return Decision(edits, [f[::views] for f in frames], None)
        if int(samples) < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        batch = np.tile(thumbs, (int(samples), 1, 1, 1))  # sample k: rows k * V .. k * V + V - 1
        with self._lock, torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            _, edits, frames = rollout(
                self._net(self.policy.has_dropout), batch, filters, self.steps, False, mask_used=True, seed=int(seed),
                views=views,
            )
        return Decision(edits, [f[::views] for f in frames], int(seed))

    def fills_samples(self) -> bool:
        """True when :meth:`apply` with ``bits`` writes the samples into a given ``out`` buffer
        (the fused CPU pass: backend ``numpy`` with numba available)."""
        return self.backend == "numpy" and fused_cpu.available()

    def apply(self, image: np.ndarray, edits: Sequence[Edit], *, bits: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The edit list on the full photo with this retoucher's backend -> float32 ``(H, W, 3)``.

        ``bits=8/16``: the samples an 8/16-bit file stores instead (uint8/uint16, clipped to
        [0, 1], rounded half to even); on the CPU the fused pass writes them directly, with no
        float copy of the result, into ``out`` when given (a reused buffer of that dtype).
        """
        if bits is not None and self.fills_samples():
            dtype = np.dtype({8: np.uint8, 16: np.uint16}[int(bits)])
            if out is not None and (out.shape != np.shape(image) or out.dtype != dtype):
                out = None
            return fused_cpu.apply_fused(np.asarray(image, dtype=np.float32), edits, out_dtype=dtype, out=out, workers=self.workers)
        if self.backend == "cupy":
            import cupy as cp

            out = apply_edits(cp.asarray(image, dtype=cp.float32), edits).get()
        elif self.backend == "torch":
            out = apply_edits(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), edits, workers=self.workers).numpy()
        else:
            out = apply_edits(np.ascontiguousarray(image, dtype=np.float32), edits, workers=self.workers)
        out = np.asarray(out, dtype=np.float32)
        return out if bits is None else fused_cpu.quantize(out, int(bits))

    def retouch(self, image: np.ndarray, *, samples: int | None = None, seed: int | None = None):
        """``(image, edits)`` for one photo; with ``samples=K``, ``(images, edit lists)`` of K each.

        Output values are linear-in, display-out float32 as the agent leaves them (clip to
        [0, 1] when writing, e.g. with :func:`exposure_env.io.write_image`).
        """
        decision = self.decide(image, samples=samples, seed=seed)
        outs = [self.apply(image, e) for e in decision.edits]
        if samples is None:
            return outs[0], decision.edits[0]
        return outs, decision.edits

