"""How a photo file's values became the agent's linear RGB: the first step every sidecar repeats.

``read_image`` decodes file values ``x`` in [0, 1] and linearizes them per colour space
(:mod:`exposure_env.colourspace`). An editor opens the *original* file, so each sidecar starts
by reproducing that step, ``l = gain * f(x)``:

* ``linear`` / ``display``: ``f(x) = x``;
* ``prophoto`` (16-bit TIFF default): ``f(x) = x ** 1.8``;
* ``srgb`` (PNG / JPEG default): ``f(x) = x ** 2.2`` and ``gain = 1 / (2 * max(x ** 2.2))``,
  the per-photo rescaling of SPEC §1 -- which is why the photo must be read once;
* ``srgb-exact``: the piecewise sRGB EOTF.

Camera RAW files are developed by LibRaw here and by each editor's own raw pipeline there;
sidecars refuse them (:class:`DecodingError`) rather than pretend to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..colourspace import RAW_SUFFIXES, SPACES, TIFF_SUFFIXES, check_space, detect_space, srgb_to_linear

#: Exponent of the power-law spaces.
POWERS = {"prophoto": 1.8, "srgb": 2.2}


class DecodingError(ValueError):
    """The input photo cannot be described for an editor; one line naming the file."""


@dataclass(frozen=True)
class InputDecoding:
    """``l = gain * f(x)`` for file values ``x`` in [0, 1] (see the module docstring)."""

    space: str = "linear"
    gain: float = 1.0

    def __post_init__(self):
        space = check_space(self.space)
        gain = float(self.gain)
        if not np.isfinite(gain) or gain <= 0:
            raise ValueError(f"input decoding: gain must be a positive number, got {self.gain!r}")
        object.__setattr__(self, "space", space)
        object.__setattr__(self, "gain", gain)

    @property
    def power(self) -> float:
        """Exponent of ``f`` for the power-law spaces (1 for linear / display)."""
        return POWERS.get(self.space, 1.0)

    def linearize(self, x) -> np.ndarray:
        """``gain * f(x)`` as float64 (curve fitting and tests); matches ``read_image`` to float32 rounding."""
        x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        if self.space == "srgb-exact":
            return self.gain * srgb_to_linear(x).astype(np.float64)
        return self.gain * np.power(x, self.power)

    def to_dict(self) -> dict:
        return {"space": self.space, "gain": float(np.float32(self.gain))}

    @classmethod
    def from_dict(cls, d) -> "InputDecoding":
        if not isinstance(d, dict) or "space" not in d:
            raise ValueError("decoding: expected an object with 'space' (and 'gain')")
        return cls(str(d["space"]), float(d.get("gain", 1.0)))

    @classmethod
    def from_values(cls, values: np.ndarray, space: str) -> "InputDecoding":
        """The decoding ``read_image`` applies to decoded ``values`` (float in [0, 1]) in ``space``."""
        space = check_space(space)
        if space != "srgb":
            return cls(space, 1.0)
        lin = np.power(np.maximum(np.asarray(values, np.float32), 0.0), np.float32(2.2), dtype=np.float32)
        peak = float(lin.max()) if lin.size else 0.0
        return cls(space, 1.0 / float(np.float32(2.0 * peak)) if peak > 0 else 1.0)

    @classmethod
    def for_file(cls, path, space: str = "auto", *, max_pixels: int | None = None) -> "InputDecoding":
        """Read ``path`` (as ``read_image`` would) and return its decoding; ``auto`` resolves per file."""
        from .. import io as image_io

        path = Path(path)
        if path.suffix.lower() in RAW_SUFFIXES:
            raise DecodingError(
                f"{path}: camera RAW input; editor sidecars are written for TIFF, PNG and JPEG inputs "
                "(each editor develops RAW files its own way)"
            )
        space = check_space(space, allow_auto=True)
        if space == "auto":
            space = resolve_auto_space(path)
        if space != "srgb":
            return cls(space, 1.0)
        kwargs = {} if max_pixels is None else {"max_pixels": max_pixels}
        values = image_io.read_image(path, "display", **kwargs)  # "display": file values, untouched
        return cls.from_values(values, space)


def resolve_auto_space(path) -> str:
    """The space ``read_image(path, "auto")`` picks, from the suffix and (TIFF) the header only."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIFF_SUFFIXES:
        return detect_space(path, np.uint8)
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            dtype = tif.pages.first.dtype
            meta = tif.shaped_metadata or ()
    except Exception as exc:  # tifffile raises several types for broken files
        raise DecodingError(f"{path}: cannot read the TIFF header ({type(exc).__name__}: {exc})") from exc
    recorded = meta[0].get("space") if meta and isinstance(meta[0], dict) else None
    if recorded is not None and str(recorded).lower() not in SPACES:
        recorded = None
    return detect_space(path, dtype, recorded)
