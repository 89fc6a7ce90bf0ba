"""Build, cache and write the demo data of a style (see :mod:`exposure_env.datasets.demo`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...io import write_image
from ..augment import random_square_crops
from ..folder import default_cache_dir
from ..pack import ImagePack
from .photos import load_photo
from .styles import DEFAULT_STYLE, degrade, get_style

#: Bump when the photos, crops or recipes change (invalidates cached packs).
DEMO_VERSION = 3

#: Crops of each pack in total, spread evenly over its photos (80x80 float32: ~77 KB each).
CROPS = {"train_inputs": 1200, "train_targets": 1200, "val": 128}
CROP_SIZE = 80
#: Side of a crop as a fraction of the photo's short side (several scales: detail to whole scene).
CROP_SCALE = (0.25, 1.0)
FIELDS = ("train_inputs", "train_targets", "val")


@dataclass
class DemoData:
    """The demo packs: unpaired ``train_inputs`` (linear, RAW-like) / ``train_targets``
    (styled, display-referred) and paired ``val`` (RAW-like input, styled truth)."""

    train_inputs: ImagePack
    train_targets: ImagePack
    val: ImagePack


def _crops(names, total: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """``total`` random square crops spread evenly over the photos ``names``, labelled ``name#k``."""
    crops, labels = [], []
    for j, name in enumerate(names):
        n = total // len(names) + (j < total % len(names))
        if n:
            crops.append(random_square_crops(load_photo(name), n, CROP_SIZE, rng, scale=CROP_SCALE))
            labels += [f"{name}#{k}" for k in range(n)]
    return np.concatenate(crops), labels


def build_demo(seed: int = 0, crops: dict[str, int] | None = None, style: str = DEFAULT_STYLE) -> DemoData:
    """Build the demo packs of ``style`` from scratch (no cache); deterministic for ``seed``.

    ``crops`` overrides :data:`CROPS` (crops per pack, spread over its photos), e.g. for
    quick tests. Every crop gets its own degradation draw.
    """
    st = get_style(style)
    totals = {**CROPS, **(crops or {})}
    packs = {}
    for i, (key, names) in enumerate(zip(FIELDS, (st.split.inputs, st.split.targets, st.split.val))):
        rng = np.random.default_rng([int(seed), DEMO_VERSION, i])
        clean, labels = _crops(names, totals[key], rng)
        raw_like = degrade(clean, rng)
        if key == "train_inputs":
            packs[key] = ImagePack(raw_like, None, labels)
        elif key == "train_targets":
            packs[key] = ImagePack(st.apply(raw_like), None, labels)
        else:
            packs[key] = ImagePack(raw_like, st.apply(raw_like), labels)
    return DemoData(**packs)


def demo_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where demo packs are cached: ``cache_dir`` or ``$EXPOSURE_RL_CACHE/demo`` (``~/.cache/exposure-rl/demo``)."""
    return Path(cache_dir) if cache_dir is not None else default_cache_dir() / "demo"


def demo_packs(
    seed: int = 0, cache_dir: str | Path | None = None, *, cache: bool = True, style: str = DEFAULT_STYLE
) -> DemoData:
    """The demo packs of ``style`` for ``seed``, loaded from the cache or built (seconds) and cached."""
    import skimage

    get_style(style)
    name = f"v{DEMO_VERSION}-skimage{skimage.__version__}-{style}-seed{int(seed)}"
    folder = demo_cache_dir(cache_dir) / name
    if cache and all((folder / f"{f}.npz").exists() for f in FIELDS):
        try:
            return DemoData(**{f: ImagePack.load(folder / f"{f}.npz") for f in FIELDS})
        except ValueError:
            pass  # damaged cache: rebuild
    data = build_demo(seed, style=style)
    if cache:
        for f in FIELDS:
            getattr(data, f).save(folder / f"{f}.npz")
    return data


@dataclass
class DemoFolders:
    """Folders written by :func:`write_demo_folders`."""

    inputs: Path
    targets: Path
    expert: Path


def write_demo_folders(out_dir: str | Path, seed: int = 0, style: str = DEFAULT_STYLE) -> DemoFolders:
    """Full-size demo photos of ``style`` for the command line (overwrites earlier demo files there).

    * ``inputs/<name>.tif``  -- RAW-like 16-bit linear TIFFs (space recorded: read back as
      linear) of the style's training-input and validation photos;
    * ``expert/<name>.png``  -- the styled version of each input (paired ground truth);
    * ``targets/<name>.png`` -- styled versions of the style's target photos (unpaired).
    """
    st = get_style(style)
    out = Path(out_dir)
    dirs = DemoFolders(out / "inputs", out / "targets", out / "expert")
    for i, name in enumerate(st.split.all):
        rng = np.random.default_rng([int(seed), DEMO_VERSION, 100 + i])
        raw_like = degrade(load_photo(name)[None], rng)
        styled = st.apply(raw_like)[0]
        if name in st.split.targets:
            write_image(dirs.targets / f"{name}.png", styled, bits=8)
        else:
            write_image(dirs.inputs / f"{name}.tif", raw_like[0], bits=16, space="linear")
            write_image(dirs.expert / f"{name}.png", styled, bits=8)
    return dirs
