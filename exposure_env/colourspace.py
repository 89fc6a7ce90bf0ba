"""Transfer functions: decoded pixel values in [0, 1] -> the linear RGB the agent works on (SPEC §1).

Spaces (``SPACES``):

* ``linear``     -- values are already scene-linear (RAW developments, float TIFFs, our own
  16-bit linear TIFFs); returned unchanged.
* ``display``    -- display-referred values taken as they are, for *target* photos: the agent
  applies its own display transform (Gamma, curves), so its output is compared with the
  expert's pixel values as encoded (what the authors' folder data provider does). Unchanged.
* ``prophoto``   -- 16-bit ProPhoto RGB exports (the FiveK recipe): ``x ** 1.8``.
* ``srgb``       -- SPEC §1 default for 8/16-bit PNG/JPEG: ``x ** 2.2``, then divided by
  ``2 * max(image)`` to mimic a RAW exposure (the authors' evaluator). The darkening is
  deliberate: RAW files are exposed to protect highlights.
* ``srgb-exact`` -- the exact piecewise sRGB EOTF (IEC 61966-2-1), no rescaling.

Defaults chosen by :func:`detect_space` (used by ``read_image(path, space="auto")``):

* a space recorded in the file by :func:`exposure_env.io.write_image` wins;
* float TIFF -> ``linear``; 16-bit (or 32-bit integer) TIFF -> ``prophoto``;
  8-bit TIFF -> ``srgb``;
* PNG / JPEG / other 8- or 16-bit raster formats -> ``srgb``;
* camera RAW (``.dng .cr2 .nef ...``) -> ``linear`` (LibRaw output without gamma).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPACES = ("linear", "display", "prophoto", "srgb", "srgb-exact")

#: File suffixes decoded by LibRaw (rawpy); lower case.
RAW_SUFFIXES = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .orf .rw2 .pef .ptx .srw .x3f .3fr .fff "
    ".iiq .mef .mos .mrw .erf .kdc .dcr .rwl .raw".split()
)
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})


def check_space(space: str, *, allow_auto: bool = False) -> str:
    """Validate a space name (case-insensitive); raise ``ValueError`` naming the known ones."""
    name = str(space).lower()
    known = SPACES + (("auto",) if allow_auto else ())
    if name not in known:
        raise ValueError(f"unknown colour space {space!r}; choose one of: {', '.join(known)}")
    return name


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Exact sRGB EOTF, encoded [0, 1] -> linear [0, 1] (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_to_linear` (linear [0, 1] -> encoded [0, 1]); clips to [0, 1] first."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1.0 / 2.4) - 0.055).astype(np.float32)


def linearize(x: np.ndarray, space: str) -> np.ndarray:
    """Decoded values ``x`` in [0, 1] (float, ``(..., 3)``) -> linear RGB float32 in ``space``.

    See the module docstring for each space. ``srgb`` divides by ``2 * max`` of the whole
    array (one photo at a time); an all-black image stays black.
    """
    space = check_space(space)
    x = np.asarray(x, dtype=np.float32)
    if space in ("linear", "display"):
        return x
    if space == "prophoto":
        return np.power(np.maximum(x, 0.0), np.float32(1.8), dtype=np.float32)
    if space == "srgb-exact":
        return srgb_to_linear(np.maximum(x, 0.0))
    lin = np.power(np.maximum(x, 0.0), np.float32(2.2), dtype=np.float32)
    peak = float(lin.max()) if lin.size else 0.0
    return lin / np.float32(2.0 * peak) if peak > 0 else lin


def detect_space(path: str | Path, dtype, recorded: str | None = None) -> str:
    """Default space for a file, from its suffix and decoded sample ``dtype`` (see module doc).

    ``recorded`` is a space stored in the file's own metadata (our TIFFs carry one) and wins.
    """
    if recorded:
        return check_space(recorded)
    suffix = Path(path).suffix.lower()
    dt = np.dtype(dtype)
    if suffix in RAW_SUFFIXES:
        return "linear"
    if suffix in TIFF_SUFFIXES:
        if dt.kind == "f":
            return "linear"
        return "srgb" if dt.itemsize == 1 else "prophoto"
    return "srgb"
