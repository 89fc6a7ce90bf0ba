"""Thin array-backend dispatch: one formula, three executors (NumPy, CuPy, torch).

The project's one backend detector: :func:`is_torch` / :func:`is_cupy` (and :func:`ops_for`,
:func:`to_numpy` built on them) are what every other module asks.

Every filter formula in :mod:`exposure_env.filters` is written once against the small
namespace returned by :func:`ops_for`. The namespace only holds element-wise primitives,
so the same Python function can also be traced by ``cupy.fuse`` into one CUDA kernel
(see :mod:`exposure_env.filters.cupy_fused`).

Scalars are Python floats; arrays are whatever the backend uses. Nothing here
allocates more than the primitive itself does.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

try:  # torch is a hard dependency of the project, but keep import errors readable
    import torch
except ImportError:  # pragma: no cover - torch is in install_requires
    torch = None


def cupy_or_none():
    """Return the ``cupy`` module when it imports *and* sees a GPU, else ``None``."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:
        return None


#: Primitives every namespace takes from its array module under the same name.
_SHARED = ("exp", "log", "tanh", "cos", "abs", "floor")


def _namespace(name: str, module, **own) -> SimpleNamespace:
    return SimpleNamespace(name=name, **{f: getattr(module, f) for f in _SHARED}, **own)


def _ufunc_ops(name: str, xp, clip) -> SimpleNamespace:
    """NumPy / CuPy: only ufuncs and ``where`` (everything is legal inside ``cupy.fuse``)."""
    return _namespace(
        name,
        xp,
        maximum=xp.maximum,
        minimum=xp.minimum,
        where=xp.where,
        clip=clip,
        pow=xp.power,
        sigmoid=lambda x: 0.5 * (xp.tanh(0.5 * x) + 1.0),
    )


def _np_ops() -> SimpleNamespace:
    return _ufunc_ops("numpy", np, lambda x, lo, hi: np.clip(x, lo, hi))


def _cupy_ops(cp) -> SimpleNamespace:
    return _ufunc_ops("cupy", cp, lambda x, lo, hi: cp.minimum(cp.maximum(x, lo), hi))


def _torch_ops() -> SimpleNamespace:
    def _t(x, like):
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=like.dtype, device=like.device)

    def bound(a, b, both, side: str):
        """``both(a, b)`` for two tensors; ``clamp`` (``side`` = "min" / "max") when one is a number."""
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, **{side: b})
        if not isinstance(a, torch.Tensor):
            return torch.clamp(b, **{side: a})
        return both(a, b)

    def maximum(a, b):
        return bound(a, b, torch.maximum, "min")

    def minimum(a, b):
        return bound(a, b, torch.minimum, "max")

    def where(c, a, b):
        like = a if isinstance(a, torch.Tensor) else b
        return torch.where(c, _t(a, like), _t(b, like))

    return _namespace(
        "torch",
        torch,
        maximum=maximum,
        minimum=minimum,
        where=where,
        clip=lambda x, lo, hi: torch.clamp(x, lo, hi),
        pow=torch.pow,
        sigmoid=torch.sigmoid,
    )


_NP = _np_ops()
_TORCH = _torch_ops() if torch is not None else None
_CUPY_CACHE: dict[str, SimpleNamespace] = {}


def is_torch(x: Any) -> bool:
    """``x`` is a torch tensor (any device)."""
    return torch is not None and isinstance(x, torch.Tensor)


def is_cupy(x: Any) -> bool:
    """``x`` is a CuPy array (checked by type, without importing CuPy)."""
    return type(x).__module__.startswith("cupy")


def ops_for(x: Any) -> SimpleNamespace:
    """The primitive namespace for the array type of ``x`` (numpy, cupy or torch).

    A type may bring its own namespace as the class attribute ``exposure_ops`` (the CPU
    kernel generator's traced values do, :mod:`exposure_env.codegen`).
    """
    own = getattr(type(x), "exposure_ops", None)
    if own is not None:
        return own
    if is_torch(x):
        return _TORCH
    if is_cupy(x):
        if "cupy" not in _CUPY_CACHE:
            import cupy

            _CUPY_CACHE["cupy"] = _cupy_ops(cupy)
        return _CUPY_CACHE["cupy"]
    return _NP


def split_channels(images):
    """``(N, H, W, 3)`` -> three contiguous ``(N, H, W)`` planes (r, g, b)."""
    if is_torch(images):
        planes = images.movedim(-1, 0).contiguous()
        return planes[0], planes[1], planes[2]
    if is_cupy(images):
        import cupy

        planes = cupy.ascontiguousarray(cupy.moveaxis(images, -1, 0))
        return planes[0], planes[1], planes[2]
    planes = np.ascontiguousarray(np.moveaxis(images, -1, 0))
    return planes[0], planes[1], planes[2]


def stack_last(arrays):
    """Arrays of one shape ``S`` (one backend) -> one array ``S + (len(arrays),)``."""
    if is_torch(arrays[0]):
        return torch.stack(list(arrays), dim=-1)
    if is_cupy(arrays[0]):
        import cupy

        return cupy.stack(arrays, axis=-1)
    return np.stack(arrays, axis=-1)


def merge_channels(r, g, b):
    """Three ``(N, H, W)`` planes -> ``(N, H, W, 3)``."""
    return stack_last([r, g, b])


def param_columns(params, k: int):
    """Split ``(N, k)`` parameters into ``k`` arrays shaped ``(N, 1, 1)`` for broadcasting."""
    if params.shape[-1] != k:
        raise ValueError(f"expected {k} parameters per image, got shape {tuple(params.shape)}")
    return [params[:, i][:, None, None] for i in range(k)]


def asarray_like(x, like):
    """Convert ``x`` (numpy / list / scalar) to the array type, dtype and device of ``like``."""
    if is_torch(like):
        return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=like.dtype, device=like.device)
    if is_cupy(like):
        import cupy

        return cupy.asarray(x, dtype=like.dtype)
    return np.asarray(x, dtype=like.dtype)


def to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (torch / CuPy arrays are copied to the host)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


LN3 = math.log(3.0)
