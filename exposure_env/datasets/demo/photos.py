"""The colour photographs that ship offline inside scikit-image, and how each style splits them.

Every colour *photograph* of ``skimage.data.data_dir`` (0.26) is used; charts and logos
(``color.png``, ``logo.png``, ``chessboard_RGB.png``), silhouettes (``horse.png``) and the
grayscale images are not photographs of a scene and are left out. The two motorcycle
stereo views show one scene, so they form one *group* and are never split apart.

A :class:`PhotoSplit` assigns whole groups to the training inputs, the target-style
examples (unpaired: other scenes) and the held-out paired validation, disjoint by
photograph. The splits are chosen so that the target crops span the validation truth's
luminance, contrast and saturation (``tests/test_datasets.py`` asserts it), and so that the
style applied to the training inputs looks like the targets: an unpaired critic learns the
targets' look, not the recipe. ``hubble`` stays dark after any per-photo style (mean display
luminance 0.24 under ``expert`` against 0.36-0.41 for the other photos), so it is a training
*input* of ``expert``, never one of its targets; as a target it taught a darker, flatter style
than the recipe's (docs/benchmarks.md, "Quality").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...io import read_image

#: Demo photo name -> file in ``skimage.data.data_dir``.
PHOTO_FILES = {
    "astronaut": "astronaut.png",  # portrait, bright suit, flag: high contrast
    "chelsea": "chelsea.png",  # cat, warm soft fur: low contrast
    "coffee": "coffee.png",  # cup on a red table: saturated, high contrast
    "rocket": "rocket.jpg",  # launch pad at dusk: dark, blue
    "motorcycle_left": "motorcycle_left.png",  # motorbike in a workshop (stereo pair, left)
    "motorcycle_right": "motorcycle_right.png",  # same scene, right view
    "hubble": "hubble_deep_field.jpg",  # galaxies on black sky: very dark
    "ihc": "ihc.png",  # stained tissue micrograph: bright, pale
    "retina": "retina.jpg",  # fundus photograph: deep red, dark surround
}

#: Photos that show one scene (never split across inputs / targets / validation).
GROUPS = {"motorcycle": ("motorcycle_left", "motorcycle_right")}


@dataclass(frozen=True)
class PhotoSplit:
    """Photo names of a style's ``inputs``, ``targets`` and ``val`` (disjoint by scene)."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    val: tuple[str, ...]

    def __post_init__(self):
        sets = [set(self.inputs), set(self.targets), set(self.val)]
        for names in sets:
            unknown = names - set(PHOTO_FILES)
            if unknown:
                raise ValueError(f"unknown demo photos {sorted(unknown)}; known: {', '.join(PHOTO_FILES)}")
        scene = {n: g for g, members in GROUPS.items() for n in members}
        scenes = [{scene.get(n, n) for n in names} for names in sets]
        if scenes[0] & scenes[1] or scenes[0] & scenes[2] or scenes[1] & scenes[2]:
            raise ValueError(f"demo split reuses a scene across inputs / targets / validation: {self}")

    @property
    def all(self) -> tuple[str, ...]:
        return self.inputs + self.targets + self.val


def photo_path(name: str) -> Path:
    """Path of a demo photograph inside scikit-image's data folder."""
    import skimage.data

    if name not in PHOTO_FILES:
        raise ValueError(f"unknown demo photo {name!r}; known: {', '.join(PHOTO_FILES)}")
    return Path(skimage.data.data_dir) / PHOTO_FILES[name]


def load_photo(name: str) -> np.ndarray:
    """A demo photograph as ``(H, W, 3)`` float32 linear RGB in [0, 1] (exact sRGB decode)."""
    return read_image(photo_path(name), "srgb-exact")
