"""Edit lists: a readable sequence of (filter, parameters), and applying one at full size.

An :class:`Edit` holds a filter's short name and its parameter vector in the filter's own
units (EV for Exposure, the exponent for Gamma, multipliers for White balance, slopes for
curves, blend amounts) -- exactly what :meth:`Filter.to_dict` reports in sidecars.

:func:`apply_edits` is the full-resolution path used by the retoucher. It runs the same
``Filter.pixel`` formulas as everything else, but

* on NumPy float32 it runs the whole list as one fused, multi-threaded pass compiled by numba
  from the same formulas (:mod:`exposure_env.fused_cpu`; one read and one write of the photo,
  optionally straight to 8/16-bit samples). Without numba (or with ``fused=False``) it walks
  the photo in row tiles of ~128 K pixels through the whole list, so every temporary stays in
  cache, spread over a thread pool: the NumPy reference path, which torch-CPU also takes;
* on CuPy it compiles the whole list into one ``cupy.fuse`` kernel (one read, one write).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from . import filters as _filters
from .backend import asarray_like, is_cupy, is_torch, merge_channels, split_channels

#: Target pixels per tile on CPU: 128 K pixels x 3 channels x 4 B = 1.5 MB per plane set.
TILE_PIXELS = 1 << 17


@dataclass(frozen=True)
class Edit:
    """One step: ``filter`` short name (``"E"``, ``"S+"``...) and its parameters (filter units)."""

    filter: str
    params: tuple[float, ...]

    def __post_init__(self):
        f = _filters.get(self.filter)
        params = tuple(float(v) for v in np.asarray(self.params, dtype=np.float64).reshape(-1))
        if len(params) != f.num_params:
            raise ValueError(f"{f.name} takes {f.num_params} parameter(s), got {len(params)}")
        if not all(np.isfinite(params)):
            raise ValueError(f"{f.name}: parameters must be finite, got {params}")
        object.__setattr__(self, "filter", f.edit_name)  # an anchored filter's edit is its plain filter's
        object.__setattr__(self, "params", params)

    @property
    def filter_obj(self) -> _filters.Filter:
        return _filters.get(self.filter)

    def describe(self) -> str:
        return self.filter_obj.describe(np.asarray(self.params))

    def to_dict(self) -> dict:
        f = self.filter_obj
        return {
            "filter": f.short_name,
            "name": f.name,
            "params": [round(p, 6) for p in self.params],
            "units": f.to_dict(np.asarray(self.params)),
            "text": self.describe(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Edit":
        try:
            return cls(d["filter"], tuple(d["params"]))
        except KeyError as exc:
            raise ValueError(f"edit entry {d!r} lacks the field {exc.args[0]!r}") from None

    @classmethod
    def from_action(cls, filter_index: int, action, filter_list=None, image=None) -> "Edit":
        """The edit an agent's action means: ``action`` in [-1, 1] (at least ``num_params`` long);
        an anchored filter (``AE``, ``AW``) also needs the ``(H, W, 3)`` ``image`` it edits."""
        f = _filters.resolve(filter_list)[int(filter_index)]
        a = np.asarray(action, dtype=np.float32).reshape(1, -1)[:, : f.num_params]
        if f.anchored and image is None:
            raise ValueError(f"{f.name}: an anchored filter's edit depends on the image; pass image=")
        images = None if image is None else np.asarray(image, np.float32)[None]
        return cls(f.short_name, tuple(np.asarray(f.params_for(a, images))[0]))

    @classmethod
    def parse(cls, text: str) -> "Edit":
        """Parse ``"E:+1.25"``, ``"W:1.1,1.0,0.9"``, ``"T:0.6,0.8,1,1,1.2,1.4,1.6,2"``."""
        name, sep, values = text.partition(":")
        if not sep or not values.strip():
            raise ValueError(f"edit {text!r}: expected FILTER:VALUE[,VALUE...], e.g. E:+1.25")
        try:
            params = tuple(float(v) for v in values.replace(" ", "").split(","))
        except ValueError:
            raise ValueError(f"edit {text!r}: parameters must be numbers") from None
        return cls(name.strip(), params)


def edits_to_json(edits: Sequence[Edit]) -> list[dict]:
    """JSON-ready list of edits (with photographer units and text for humans)."""
    return [e.to_dict() for e in edits]


def edits_from_json(obj) -> list[Edit]:
    """Edits from :func:`edits_to_json` output, a sidecar dict with an ``edits`` key, or a JSON string."""
    if isinstance(obj, str):
        obj = json.loads(obj)
    if isinstance(obj, dict):
        if "edits" not in obj:
            raise ValueError("edit list JSON: expected a list or an object with an 'edits' list")
        obj = obj["edits"]
    if not isinstance(obj, list):
        raise ValueError("edit list JSON: expected a list of {filter, params} objects")
    return [Edit.from_dict(d) for d in obj]


def _apply_sequential(images, edits: Sequence[Edit]):
    """Reference path: one ``Filter.apply`` per edit on the whole batch (any backend)."""
    n = images.shape[0]
    for e in edits:
        p = asarray_like(np.tile(np.asarray(e.params, np.float32), (n, 1)), images)
        images = e.filter_obj.apply(images, p)
    return images


def _default_workers() -> int:
    from .system import usable_cpus

    return usable_cpus()


def apply_edits(image, edits: Iterable[Edit], *, tiled: bool = True, workers: int | None = None, fused: bool | None = None):
    """Apply an edit list to one photo ``(H, W, 3)`` or a batch ``(N, H, W, 3)`` (same edits).

    Float32 linear RGB in, float32 out (not clipped: clip when writing). Backend follows the
    array type. ``fused``: ``None`` (default) takes the fused numba pass for NumPy float32 when
    it is available (the choice is logged once), ``False`` the NumPy tiled path, ``True``
    requires the fused pass. ``tiled=False`` forces the plain sequential path (also taken for
    small images and for torch tensors that need gradients).
    """
    edits = list(edits)
    single = image.ndim == 3
    images = image[None] if single else image
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) or (N, H, W, 3) image, got shape {tuple(image.shape)}")
    if _use_fused(images, tiled, fused):
        from .fused_cpu import apply_fused

        return apply_fused(image, edits, workers=workers)
    if not edits:
        out = images.clone() if is_torch(images) else images.copy()
    elif is_cupy(images):
        from .filters.cupy_fused import apply_edits_fused

        out = apply_edits_fused(images, edits)
    else:
        needs_grad = is_torch(images) and (images.requires_grad or images.device.type != "cpu")
        n, h, w, _ = images.shape
        if not tiled or needs_grad or n * h * w <= 2 * TILE_PIXELS:
            out = _apply_sequential(images, edits)
        else:
            out = _apply_tiled(images, edits, workers or _default_workers())
    return out[0] if single else out


def _use_fused(images, tiled: bool, fused: bool | None) -> bool:
    if fused is False or not tiled or not isinstance(images, np.ndarray) or images.dtype != np.float32:
        if fused:
            raise ValueError("fused=True needs a NumPy float32 image and tiled=True")
        return False
    from . import fused_cpu

    if fused and not fused_cpu.available():
        raise RuntimeError("fused=True but the fused CPU kernel is not available (numba missing or failing; see the log)")
    return fused_cpu.available()


def _scalar_params(images, edits):
    """Each edit's parameters as 0-d arrays of the image's backend (scalar fast paths, no broadcast)."""
    if is_torch(images):
        import torch

        return [[torch.tensor(v, dtype=images.dtype) for v in e.params] for e in edits]
    return [[images.dtype.type(v) for v in e.params] for e in edits]


def _apply_tiled(images, edits, workers: int):
    """Row tiles through the whole list: split into planes once, every ``pixel`` formula, merge once."""
    n, h, w, _ = images.shape
    rows = max(1, TILE_PIXELS // w)
    out = images.new_empty(images.shape) if is_torch(images) else np.empty_like(images)
    tiles = [(i, r) for i in range(n) for r in range(0, h, rows)]
    chain = [(e.filter_obj, p) for e, p in zip(edits, _scalar_params(images, edits))]

    def run(tile):
        i, r = tile
        planes = split_channels(images[i : i + 1, r : r + rows])
        for f, p in chain:
            planes = f.pixel(*planes, p)
        out[i : i + 1, r : r + rows] = merge_channels(*planes)

    if workers <= 1:
        for t in tiles:
            run(t)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, tiles))
    return out
