"""A bundled demo dataset made offline from the real photographs shipped with scikit-image.

Photos (``skimage.data.data_dir``, decoded with the exact sRGB EOTF to linear RGB), split so
that no photograph is used twice:

* ``INPUT_PHOTOS``  -- astronaut, coffee: the training inputs;
* ``TARGET_PHOTOS`` -- chelsea, rocket: the target-style examples (unpaired, other scenes);
* ``VAL_PHOTOS``    -- the two motorcycle stereo views: held-out paired validation.

**Inputs** are made "RAW-like" (:func:`degrade`), one random draw per crop (per photo for
full-size files): contrast flattened around the mean luminance (``m (x / m) ** c``,
``c ~ U(0.6, 0.9)``), a white-balance cast (red and blue gains ``exp(U(-0.25, 0.25))``,
luminance-normalised), an exposure error ``U(-3, +1)`` EV, then sensor clipping to [0, 1].

**Expert style** (:func:`expert_edits`, :func:`expert_style`) is a fixed recipe made only of
the agent's own filters, so it is exactly reachable in five steps: Exposure to a mean
luminance of 0.18 (linear), grey-world White balance (80 % strength, within the filter's
range), Gamma 1/2.2 (display encoding), Contrast +30 %, Saturation+ 50 %; result clipped to
[0, 1] (display-referred, like every written photo). Targets and the validation ground truth
are the expert's versions of degraded crops, so both share one distribution.

``demo_packs(seed)`` -> :class:`DemoData` (``train_inputs`` 600 crops, ``train_targets`` 600,
``val`` 64 paired crops, 80x80), deterministic per seed, cached as ``.npz`` under
``$EXPOSURE_RL_CACHE/demo`` (default ``~/.cache/exposure-rl/demo``).
``write_demo_folders(out_dir, seed)`` writes full-size photos for the command-line demos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import filters
from ..colour import luminance
from ..filters.white_balance import LOG_RANGE as WB_LOG_RANGE
from ..io import read_image, write_image
from .augment import random_square_crops
from .folder import default_cache_dir
from .pack import ImagePack

#: Bump when the recipe changes (invalidates cached packs).
DEMO_VERSION = 1

PHOTO_FILES = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "motorcycle_right": "motorcycle_right.png",
}
INPUT_PHOTOS = ("astronaut", "coffee")
TARGET_PHOTOS = ("chelsea", "rocket")
VAL_PHOTOS = ("motorcycle_left", "motorcycle_right")

#: Crops per photo for the packs (2 photos per group: 600 / 600 / 64 crops).
CROPS = {"train_inputs": 300, "train_targets": 300, "val": 32}
CROP_SIZE = 80
CROP_SCALE = (0.35, 0.9)

# The degradation ranges and the expert recipe (documented in the module docstring).
EV_RANGE = (-3.0, 1.0)
CAST_LOG_RANGE = 0.25
FLATTEN_RANGE = (0.6, 0.9)
TARGET_MEAN_LUMINANCE = 0.18
GREY_WORLD_STRENGTH = 0.8
DISPLAY_GAMMA = 1.0 / 2.2
CONTRAST = 0.3
SATURATION = 0.5


@dataclass
class DemoData:
    """The demo packs: unpaired ``train_inputs`` / ``train_targets`` and paired ``val``."""

    train_inputs: ImagePack
    train_targets: ImagePack
    val: ImagePack


def photo_path(name: str) -> Path:
    """Path of a demo photograph inside scikit-image's data folder."""
    import skimage.data

    if name not in PHOTO_FILES:
        raise ValueError(f"unknown demo photo {name!r}; known: {', '.join(PHOTO_FILES)}")
    return Path(skimage.data.data_dir) / PHOTO_FILES[name]


def load_photo(name: str) -> np.ndarray:
    """A demo photograph as ``(H, W, 3)`` float32 linear RGB (exact sRGB decode)."""
    return read_image(photo_path(name), "srgb-exact")


def _mean_luminance(images: np.ndarray) -> np.ndarray:
    """Mean linear luminance of each image of ``(N, H, W, 3)`` -> ``(N,)``."""
    return luminance(images[..., 0], images[..., 1], images[..., 2]).mean(axis=(1, 2))


def degrade(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make linear photos ``(N, H, W, 3)`` RAW-like (module docstring); one draw per image."""
    x = np.asarray(images, dtype=np.float32)
    n = len(x)
    c = rng.uniform(*FLATTEN_RANGE, size=n).astype(np.float32)[:, None, None, None]
    m = np.maximum(_mean_luminance(x), 1e-4).astype(np.float32)[:, None, None, None]
    x = m * np.power(np.maximum(x, 0.0) / m, c)
    log_gain = np.zeros((n, 3), np.float32)
    log_gain[:, [0, 2]] = rng.uniform(-CAST_LOG_RANGE, CAST_LOG_RANGE, size=(n, 2))
    gain = np.exp(log_gain)
    gain /= (gain * np.asarray([0.27, 0.67, 0.06], np.float32)).sum(axis=1, keepdims=True)
    ev = rng.uniform(*EV_RANGE, size=n).astype(np.float32)
    x = x * (gain * np.exp2(ev)[:, None])[:, None, None, :]
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def expert_edits(images: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The expert's edit of each linear image: ``[(filter short name, params (N, k)), ...]``.

    Parameters are in each filter's own units (as :meth:`Filter.apply` takes them).
    """
    x = np.asarray(images, dtype=np.float32)
    n = len(x)
    exposure, wb = filters.get("E"), filters.get("W")
    ev = np.log2(TARGET_MEAN_LUMINANCE / np.maximum(_mean_luminance(x), 1e-6))
    ev = np.clip(ev, -exposure.ranges[0].high, exposure.ranges[0].high).astype(np.float32)[:, None]
    # grey world: gains ~ 1 / channel mean, relative to red (the filter fixes red's input)
    means = np.maximum(x.mean(axis=(1, 2)), 1e-6).astype(np.float64)
    log_rel = GREY_WORLD_STRENGTH * (np.log(means[:, :1]) - np.log(means))
    action = np.clip(log_rel / WB_LOG_RANGE, -1.0, 1.0).astype(np.float32)
    action[:, 0] = 0.0
    return [
        ("E", ev),
        ("W", np.asarray(wb.params_from_action(action), np.float32)),
        ("G", np.full((n, 1), DISPLAY_GAMMA, np.float32)),
        ("Ct", np.full((n, 1), CONTRAST, np.float32)),
        ("S+", np.full((n, 1), SATURATION, np.float32)),
    ]


def expert_style(images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Apply :func:`expert_edits` with the real filters; display-referred, clipped to [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    out = np.empty_like(x)
    for s in range(0, len(x), batch):
        chunk = x[s : s + batch]
        for short, params in expert_edits(chunk):
            chunk = filters.get(short).apply(chunk, params)
        out[s : s + batch] = np.clip(chunk, 0.0, 1.0)
    return out


def _crops(names, per_photo: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    crops, labels = [], []
    for name in names:
        c = random_square_crops(load_photo(name), per_photo, CROP_SIZE, rng, scale=CROP_SCALE)
        crops.append(c)
        labels += [f"{name}#{k}" for k in range(per_photo)]
    return np.concatenate(crops), labels


def build_demo(seed: int = 0, crops: dict[str, int] | None = None) -> DemoData:
    """Build the demo packs from scratch (no cache); deterministic for ``seed``.

    ``crops`` overrides :data:`CROPS` (crops per photo of each pack), e.g. for quick tests.
    """
    per_photo = {**CROPS, **(crops or {})}
    packs = {}
    for i, (key, names) in enumerate(
        (("train_inputs", INPUT_PHOTOS), ("train_targets", TARGET_PHOTOS), ("val", VAL_PHOTOS))
    ):
        rng = np.random.default_rng([int(seed), DEMO_VERSION, i])
        clean, labels = _crops(names, per_photo[key], rng)
        raw_like = degrade(clean, rng)
        if key == "train_inputs":
            packs[key] = ImagePack(raw_like, None, labels)
        elif key == "train_targets":
            packs[key] = ImagePack(expert_style(raw_like), None, labels)
        else:
            packs[key] = ImagePack(raw_like, expert_style(raw_like), labels)
    return DemoData(**packs)


def demo_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where demo packs are cached: ``cache_dir`` or ``$EXPOSURE_RL_CACHE/demo`` (``~/.cache/exposure-rl/demo``)."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir() / "demo"


def demo_packs(seed: int = 0, cache_dir: str | Path | None = None, *, cache: bool = True) -> DemoData:
    """The demo packs for ``seed``, loaded from the cache or built (a few seconds) and cached."""
    import skimage

    folder = demo_cache_dir(cache_dir) / f"v{DEMO_VERSION}-skimage{skimage.__version__}-seed{int(seed)}"
    fields = ("train_inputs", "train_targets", "val")
    if cache and all((folder / f"{f}.npz").exists() for f in fields):
        try:
            return DemoData(**{f: ImagePack.load(folder / f"{f}.npz") for f in fields})
        except ValueError:
            pass  # damaged cache: rebuild
    data = build_demo(seed)
    if cache:
        for f in fields:
            getattr(data, f).save(folder / f"{f}.npz")
    return data


@dataclass
class DemoFolders:
    """Folders written by :func:`write_demo_folders`."""

    inputs: Path
    targets: Path
    expert: Path


def write_demo_folders(out_dir: str | Path, seed: int = 0) -> DemoFolders:
    """Full-size demo photos for the command line (overwrites earlier demo files there).

    * ``inputs/<name>.tif``  -- RAW-like 16-bit linear TIFFs (space recorded: read back as
      linear) of the training and validation photos;
    * ``expert/<name>.png``  -- the expert's version of each input (paired ground truth);
    * ``targets/<name>.png`` -- expert-style versions of the target photos (unpaired style).
    """
    out = Path(out_dir)
    dirs = DemoFolders(out / "inputs", out / "targets", out / "expert")
    for i, name in enumerate(INPUT_PHOTOS + VAL_PHOTOS + TARGET_PHOTOS):
        rng = np.random.default_rng([int(seed), DEMO_VERSION, 100 + i])
        raw_like = degrade(load_photo(name)[None], rng)
        styled = expert_style(raw_like)[0]
        if name in TARGET_PHOTOS:
            write_image(dirs.targets / f"{name}.png", styled, bits=8)
        else:
            write_image(dirs.inputs / f"{name}.tif", raw_like[0], bits=16, space="linear")
            write_image(dirs.expert / f"{name}.png", styled, bits=8)
    return dirs


__all__ = [
    "DemoData",
    "DemoFolders",
    "build_demo",
    "degrade",
    "demo_packs",
    "expert_edits",
    "expert_style",
    "load_photo",
    "write_demo_folders",
]
