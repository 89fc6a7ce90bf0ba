"""The :class:`Filter` contract and the shared parameter squashing of SPEC §2.

A filter is a pure, differentiable, resolution-independent map
``(images (N, H, W, 3) float32 linear RGB, params (N, k)) -> images``. Its formula lives in
:meth:`Filter.pixel`, written once on channel planes with the primitive namespace of
:mod:`exposure_env.backend`, so NumPy, CuPy (also inside ``cupy.fuse``) and torch run
the very same code.

Two parameter mappings exist:

* :meth:`Filter.params` -- the paper's: unconstrained network outputs ``raw`` -> parameters
  (``tanh_range`` / ``sigmoid`` of SPEC §2). Used by networks trained the paper's way.
* :meth:`Filter.params_from_action` -- the environment's: actions in [-1, 1] -> parameters.
  It reaches every parameter value of the spec's range, and ``0`` is the identity wherever
  the filter has one (blend amounts use ``clip(a, 0, 1)``: negative actions mean "off").

>>> import numpy as np
>>> from exposure_env.backend import ops_for
>>> ops = ops_for(np.zeros(1))
>>> unit_range(ops, np.array([-1.0, 0.0, 1.0, 3.0]), 0.5, 2.0).tolist()  # clipped to [-1, 1]
[0.5, 1.25, 2.0, 2.0]
>>> float(tanh_range(ops, np.array(0.0), -3.5, 3.5, initial=1.0))  # raw 0 -> initial
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..backend import asarray_like, is_cupy, is_torch, merge_channels, ops_for, param_columns, split_channels, to_numpy


def tanh_range(ops, x, lo: float, hi: float, initial: float | None = None):
    """SPEC §2 squashing: ``lo + (hi - lo) (tanh(x + b) + 1) / 2`` with ``x = 0 -> initial``."""
    bias = 0.0 if initial is None else math.atanh(2.0 * (initial - lo) / (hi - lo) - 1.0)
    return lo + (hi - lo) * (ops.tanh(x + bias) + 1.0) * 0.5


def unit_range(ops, a, lo: float, hi: float):
    """Action ``a`` in [-1, 1] -> [lo, hi], linearly (``a = 0`` is the midpoint)."""
    return lo + (hi - lo) * (ops.clip(a, -1.0, 1.0) + 1.0) * 0.5


@dataclass(frozen=True)
class ParamRange:
    """Human-readable range of one parameter, for ``exposure filters`` and docs."""

    name: str
    low: float
    high: float
    unit: str = ""
    identity: float | None = None


class Filter:
    """Base class. Subclasses set the class attributes and implement the four hooks."""

    short_name: str = ""
    name: str = ""
    num_params: int = 0
    #: True when the filter maps each channel through its own 1-D curve (foldable into a LUT).
    per_channel: bool = False
    ranges: Sequence[ParamRange] = ()
    #: True when the action's meaning depends on the image being edited (:meth:`params_for`).
    anchored: bool = False

    @property
    def edit_name(self) -> str:
        """The filter an edit of this one is recorded as (itself, or an anchored filter's plain one)."""
        return self.short_name

    def params_for(self, action, images):
        """Actions ``(N, k)`` -> parameters for editing ``images`` ``(N, H, W, 3)``: what the env
        applies. :meth:`params_from_action` for every filter except the anchored ones
        (:mod:`exposure_env.filters.auto`), whose action 0 depends on the image."""
        return self.params_from_action(action)

    # --- the hooks -------------------------------------------------------------------
    def params(self, raw):
        """Raw network outputs ``(N, k)`` -> parameters ``(N, k)`` (SPEC §2 mapping)."""
        raise NotImplementedError

    def params_from_action(self, action):
        """Actions ``(N, k)`` in [-1, 1] -> parameters ``(N, k)``; 0 is the identity if any."""
        raise NotImplementedError

    def pixel(self, r, g, b, p):
        """The formula on channel planes; ``p`` is a list of ``k`` broadcastable parameter arrays."""
        raise NotImplementedError

    def to_dict(self, params) -> dict:
        """Parameters of one image ``(k,)`` in photographer units, JSON-serialisable."""
        raise NotImplementedError

    def describe(self, params) -> str:
        """One line for humans, e.g. ``Exposure +1.25 EV``."""
        raise NotImplementedError

    # --- shared machinery ------------------------------------------------------------
    def apply(self, images, params):
        """Apply to ``(N, H, W, 3)`` float images with ``(N, k)`` parameters (any backend)."""
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"{self.name}: expected images of shape (N, H, W, 3), got {tuple(images.shape)}")
        params = asarray_like(params, images) if type(params) is not type(images) else params
        if params.ndim == 1:
            params = params[None, :]
        if params.shape[0] != images.shape[0]:
            raise ValueError(f"{self.name}: {images.shape[0]} images but {params.shape[0]} parameter rows")
        if params.dtype != images.dtype:
            params = params.to(images.dtype) if is_torch(params) else params.astype(images.dtype)
        if is_cupy(images):  # one fused CUDA kernel built from this same pixel() formula
            from .cupy_fused import apply_filter_fused

            return apply_filter_fused(self, images, params)
        r, g, b = split_channels(images)
        r, g, b = self.pixel(r, g, b, param_columns(params, self.num_params))
        return merge_channels(r, g, b)

    def identity_action(self) -> np.ndarray | None:
        """The action (k,) that leaves images unchanged, or None when the filter has none."""
        return np.zeros(self.num_params, dtype=np.float32)

    def _one(self, params) -> np.ndarray:
        p = to_numpy(params).astype(np.float64).reshape(-1)
        if p.size != self.num_params:
            raise ValueError(f"{self.name}: expected {self.num_params} parameters, got {p.size}")
        return p

    def __repr__(self) -> str:
        return f"<Filter {self.short_name} {self.name} ({self.num_params} params)>"


class BlendFilter(Filter):
    """A filter whose one parameter is a blend amount ``p`` in [0, 1] towards its effect.

    Spec mapping ``p = sigmoid(raw)``; actions ``p = clip(a, 0, 1)`` (``a <= 0``: off). Subclasses
    set ``short_name``, ``name``, ``label`` (for :meth:`describe`) and write :meth:`pixel`.
    """

    num_params = 1
    label = ""
    ranges = (ParamRange("amount", 0.0, 1.0, "blend", identity=0.0),)

    def params(self, raw):
        return ops_for(raw).sigmoid(raw)

    def params_from_action(self, action):
        return ops_for(action).clip(action, 0.0, 1.0)

    def to_dict(self, params):
        return {"amount": round(float(self._one(params)[0]), 4)}

    def describe(self, params):
        return f"{self.label or self.name} {100 * self._one(params)[0]:.0f}%"

