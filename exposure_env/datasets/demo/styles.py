"""The demo's RAW-like degradation and its two expert styles, made only of the agent's filters.

**Inputs** are made "RAW-like" (:func:`degrade`), one random draw per image: contrast
flattened around the mean luminance (``m (x / m) ** c``, ``c ~ U(0.6, 0.9)``), a
white-balance cast (red and blue gains ``exp(U(-0.25, 0.25))``, luminance-normalised), an
exposure error ``U(-3, +1)`` EV, then sensor clipping to [0, 1] (linear RGB).

**Styles** are fixed five-step edit lists of the agent's own filters (so each is exactly
reachable in five steps), computed per image from its linear input; results are
display-referred, clipped to [0, 1]:

* ``expert`` (:func:`expert_edits`): Exposure to a mean luminance of 0.18 (linear),
  grey-world White balance (80 % strength), Gamma 1/2.2, Contrast +30 %, Saturation+ 50 %:
  a neutral, punchy, saturated look.
* ``faded`` (:func:`faded_edits`): Exposure to a mean luminance of 0.22 (brighter), White
  balance grey-world (80 %) then warmed (green x e^-0.08, blue x e^-0.30 relative to red),
  Gamma 1/2.2, Contrast -40 % (flat), Black & white 35 % (muted colour): a warm,
  low-contrast, desaturated "faded film" look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ... import filters
from ...colour import luminance
from ...filters.white_balance import LOG_RANGE as WB_LOG_RANGE
from .photos import PhotoSplit

# The degradation ranges (module docstring).
EV_RANGE = (-3.0, 1.0)
CAST_LOG_RANGE = 0.25
FLATTEN_RANGE = (0.6, 0.9)

# The expert recipe.
TARGET_MEAN_LUMINANCE = 0.18
GREY_WORLD_STRENGTH = 0.8
DISPLAY_GAMMA = 1.0 / 2.2
CONTRAST = 0.3
SATURATION = 0.5

# The faded recipe (same grey-world strength and display gamma).
FADED_MEAN_LUMINANCE = 0.22
FADED_WARMTH = (0.0, -0.08, -0.30)  # log gains of R, G, B relative to red, after grey world
FADED_CONTRAST = -0.4
FADED_MUTE = 0.35  # Black & white blend

Edits = list[tuple[str, np.ndarray]]


def mean_luminance(images: np.ndarray) -> np.ndarray:
    """Mean linear luminance of each image of ``(N, H, W, 3)`` -> ``(N,)``."""
    return luminance(images[..., 0], images[..., 1], images[..., 2]).mean(axis=(1, 2))


def degrade(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make linear photos ``(N, H, W, 3)`` RAW-like (module docstring); one draw per image."""
    x = np.asarray(images, dtype=np.float32)
    n = len(x)
    c = rng.uniform(*FLATTEN_RANGE, size=n).astype(np.float32)[:, None, None, None]
    m = np.maximum(mean_luminance(x), 1e-4).astype(np.float32)[:, None, None, None]
    x = m * np.power(np.maximum(x, 0.0) / m, c)
    log_gain = np.zeros((n, 3), np.float32)
    log_gain[:, [0, 2]] = rng.uniform(-CAST_LOG_RANGE, CAST_LOG_RANGE, size=(n, 2))
    gain = np.exp(log_gain)
    gain /= (gain * np.asarray([0.27, 0.67, 0.06], np.float32)).sum(axis=1, keepdims=True)
    ev = rng.uniform(*EV_RANGE, size=n).astype(np.float32)
    x = x * (gain * np.exp2(ev)[:, None])[:, None, None, :]
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def exposure_to(images: np.ndarray, mean: float) -> np.ndarray:
    """Exposure params ``(N, 1)`` (EV, within the filter's range) bringing each mean luminance to ``mean``."""
    limit = filters.get("E").ranges[0].high
    ev = np.log2(mean / np.maximum(mean_luminance(images), 1e-6))
    return np.clip(ev, -limit, limit).astype(np.float32)[:, None]


def grey_world(images: np.ndarray, strength: float, tint=(0.0, 0.0, 0.0)) -> np.ndarray:
    """White-balance multipliers ``(N, 3)``: ``strength`` of grey world, then log ``tint`` (vs red).

    Gains ~ ``1 / channel mean`` relative to red (the filter fixes red's input), clipped to
    the filter's range and luminance-normalised as the filter does.
    """
    means = np.maximum(np.asarray(images, np.float64).mean(axis=(1, 2)), 1e-6)
    log_rel = strength * (np.log(means[:, :1]) - np.log(means)) + np.asarray(tint, np.float64)
    action = np.clip(log_rel / WB_LOG_RANGE, -1.0, 1.0).astype(np.float32)
    action[:, 0] = 0.0
    return np.asarray(filters.get("W").params_from_action(action), np.float32)


def _const(n: int, value: float) -> np.ndarray:
    return np.full((n, 1), value, np.float32)


def expert_edits(images: np.ndarray) -> Edits:
    """The ``expert`` edit of each linear image: ``[(filter short name, params (N, k)), ...]``.

    Parameters are in each filter's own units (as :meth:`Filter.apply` takes them).
    """
    x = np.asarray(images, dtype=np.float32)
    n = len(x)
    return [
        ("E", exposure_to(x, TARGET_MEAN_LUMINANCE)),
        ("W", grey_world(x, GREY_WORLD_STRENGTH)),
        ("G", _const(n, DISPLAY_GAMMA)),
        ("Ct", _const(n, CONTRAST)),
        ("S+", _const(n, SATURATION)),
    ]


def faded_edits(images: np.ndarray) -> Edits:
    """The ``faded`` edit of each linear image (warm, flat, muted; see the module docstring)."""
    x = np.asarray(images, dtype=np.float32)
    n = len(x)
    return [
        ("E", exposure_to(x, FADED_MEAN_LUMINANCE)),
        ("W", grey_world(x, GREY_WORLD_STRENGTH, FADED_WARMTH)),
        ("G", _const(n, DISPLAY_GAMMA)),
        ("Ct", _const(n, FADED_CONTRAST)),
        ("BW", _const(n, FADED_MUTE)),
    ]


def apply_recipe(edits: Callable[[np.ndarray], Edits], images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Apply ``edits(images)`` step by step with the real filters; display-referred, clipped to [0, 1].

    The parameters of a step are computed from the *input* image (the recipe is a fixed
    function of the RAW-like photo), in batches of ``batch`` images.
    """
    x = np.asarray(images, dtype=np.float32)
    out = np.empty_like(x)
    for s in range(0, len(x), batch):
        chunk = x[s : s + batch]
        for short, params in edits(chunk):
            chunk = filters.get(short).apply(chunk, params)
        out[s : s + batch] = np.clip(chunk, 0.0, 1.0)
    return out


@dataclass(frozen=True)
class Style:
    """A demo style: its recipe and the photos it is trained and validated on."""

    name: str
    edits: Callable[[np.ndarray], Edits]
    split: PhotoSplit
    description: str

    def apply(self, images: np.ndarray) -> np.ndarray:
        """The styled version of linear ``images`` ``(N, H, W, 3)`` (display-referred, [0, 1])."""
        return apply_recipe(self.edits, images)


#: The demo styles by name; ``expert`` is the default.
STYLES = {
    "expert": Style(
        "expert",
        expert_edits,
        PhotoSplit(
            inputs=("astronaut", "chelsea", "hubble"),
            targets=("coffee", "rocket", "ihc"),
            val=("motorcycle_left", "motorcycle_right", "retina"),
        ),
        "neutral punchy look: exposure to 0.18, grey world 80%, gamma 1/2.2, contrast +30%, saturation+ 50%",
    ),
    "faded": Style(
        "faded",
        faded_edits,
        PhotoSplit(
            inputs=("coffee", "motorcycle_left", "motorcycle_right", "hubble", "retina"),
            targets=("astronaut", "rocket", "ihc"),
            val=("chelsea",),
        ),
        "warm faded film: exposure to 0.22, grey world 80% + warm, gamma 1/2.2, contrast -40%, B&W 35%",
    ),
}
DEFAULT_STYLE = "expert"


def get_style(name: str) -> Style:
    """The demo style called ``name``; ``ValueError`` listing the known ones."""
    if name not in STYLES:
        raise ValueError(f"unknown demo style {name!r}; choose one of: {', '.join(STYLES)}")
    return STYLES[name]


def expert_style(images: np.ndarray, batch: int = 256) -> np.ndarray:
    """The ``expert`` style of linear ``images`` (display-referred, clipped to [0, 1])."""
    return apply_recipe(expert_edits, images, batch)
