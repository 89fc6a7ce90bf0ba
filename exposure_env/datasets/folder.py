"""Photo folders -> :class:`ImagePack` of 80x80 crops, decoded once and cached as ``.npz``.

``pack_folder(folder)`` lists the supported photos (recursively by default, hidden files
ignored, sorted), decodes each once with :func:`exposure_env.io.read_image`, takes
``crops_per_photo`` random square crops (SPEC §7) and stores the pack under the cache dir
(``$EXPOSURE_RL_CACHE`` or ``~/.cache/exposure-rl``, sub-folder ``packs``), keyed by a hash
of the file list, sizes, modification times and every setting, so a re-run loads the pack
instead of decoding. A photo that cannot be used is skipped and reported (``skipped``:
``(path, reason)`` pairs, also emitted as one ``UserWarning``); a folder with no usable
photo raises ``ValueError`` naming the folder.

How many crops: with ``crops_per_photo=None`` (the default) :func:`crops_for` picks enough
for a set of at least :data:`MIN_CROPS` crops: a handful of photos gives many random
squares at several scales (0.25-1.0 of the short side), a large folder the paper's 4
largest squares per photo (SPEC §7). Training then samples random 64x64 windows of these
80x80 crops with random flips (:meth:`ImagePack.sample`).

Crop positions depend only on ``seed`` and the photo's relative path, so adding a photo
does not change the crops of the others (for a fixed ``crops_per_photo``).

Pairing (``paired_folder``): each photo is matched to the ground-truth file with the same
relative path without suffix (``a/b.tif`` <-> ``a/b.png``), else to the one file of that
stem anywhere in the paired folder; unmatched files on either side are skipped and reported.

Input photos are linearised (``space="auto"``: see :mod:`exposure_env.colourspace`); target
and paired (ground-truth) photos are read ``"display"``-referred by default: their pixel
values are what the agent's output should look like.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..colourspace import check_space
from ..io import DEFAULT_MAX_PIXELS, ImageError, is_supported, read_image
from ..system import usable_cpus
from .augment import crop_resize, random_square_crops, square_crop_boxes
from .pack import ImagePack

#: Bump when the way packs are built changes (invalidates caches).
PACK_VERSION = 2

#: A folder's set gets at least this many crops (80x80 float32: ~77 KB each) ...
MIN_CROPS = 1024
#: ... from at most this many crops per photo, and never fewer than the paper's 4.
MAX_CROPS_PER_PHOTO = 512
PAPER_CROPS_PER_PHOTO = 4
#: Crop side as a fraction of the short side when a photo gives more than the paper's 4 crops.
MULTI_SCALE = (0.25, 1.0)

Skipped = list[tuple[str, str]]


def default_cache_dir() -> Path:
    """``$EXPOSURE_RL_CACHE`` or ``~/.cache/exposure-rl``."""
    env = os.environ.get("EXPOSURE_RL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "exposure-rl"


def list_photos(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Supported photo files under ``folder``, sorted by relative path; hidden files skipped.

    Raises ``ValueError`` when ``folder`` is missing or not a folder.
    """
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    paths = folder.rglob("*") if recursive else folder.iterdir()
    photos = [
        p
        for p in paths
        if is_supported(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    ]
    return sorted(photos, key=lambda p: p.relative_to(folder).as_posix())


def crops_for(n_photos: int, min_crops: int = MIN_CROPS) -> tuple[int, tuple[float, float]]:
    """``(crops_per_photo, scale)`` giving ``n_photos`` photos at least ``min_crops`` crops.

    ``ceil(min_crops / n_photos)`` per photo, clipped to [4, :data:`MAX_CROPS_PER_PHOTO`];
    several scales (:data:`MULTI_SCALE`) when that is more than the paper's 4 largest squares.
    """
    per_photo = -(-int(min_crops) // max(int(n_photos), 1))
    per_photo = int(np.clip(per_photo, PAPER_CROPS_PER_PHOTO, MAX_CROPS_PER_PHOTO))
    return per_photo, (MULTI_SCALE if per_photo > PAPER_CROPS_PER_PHOTO else (1.0, 1.0))


def match_pairs(folder: Path, paired_folder: Path, files: list[Path], recursive: bool = True):
    """Ground truth of each of ``files`` (under ``folder``) in ``paired_folder``, by file stem.

    Returns ``(partners, unmatched)``: a path or ``None`` per file, and the paired-folder
    files no input matched. Relative path without suffix first (``a/b.tif`` <-> ``a/b.png``),
    else the only file with that stem anywhere in ``paired_folder``.
    """
    truth = list_photos(paired_folder, recursive)
    by_path, by_stem = {}, {}
    for p in truth:
        by_path.setdefault(p.relative_to(paired_folder).with_suffix("").as_posix(), p)
        by_stem.setdefault(p.stem, []).append(p)
    partners = []
    for f in files:
        p = by_path.get(f.relative_to(folder).with_suffix("").as_posix())
        if p is None and len(by_stem.get(f.stem, ())) == 1:
            p = by_stem[f.stem][0]
        partners.append(p)
    used = {p for p in partners if p is not None}
    return partners, [p for p in truth if p not in used]


def _file_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def _stamp(path: Path | None):
    if path is None:
        return None
    try:
        st = path.stat()
        return [str(path.resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), -1, -1]


@dataclass
class PackSettings:
    """Everything that changes a pack's content (part of the cache key)."""

    space: str = "auto"
    paired_space: str = "display"
    crops_per_photo: int = 4
    crop_size: int = 80
    scale: tuple[float, float] = (1.0, 1.0)
    seed: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        self.space = check_space(self.space, allow_auto=True)
        self.paired_space = check_space(self.paired_space, allow_auto=True)
        if int(self.crops_per_photo) < 1:
            raise ValueError(f"crops_per_photo must be >= 1, got {self.crops_per_photo}")
        if int(self.crop_size) < 8:
            raise ValueError(f"crop_size must be >= 8, got {self.crop_size}")
        self.scale = (float(self.scale[0]), float(self.scale[1]))


def _crops_of(path: Path, partner: Path | None, name: str, s: PackSettings):
    """Decode one photo (and its partner) into crops; returns (crops, paired_crops or None)."""
    image = read_image(path, s.space, max_pixels=s.max_pixels)
    rng = _file_rng(s.seed, name)
    if partner is None:
        return random_square_crops(image, s.crops_per_photo, s.crop_size, rng, scale=s.scale), None
    target = read_image(partner, s.paired_space, max_pixels=s.max_pixels)
    a_in = image.shape[1] / image.shape[0]
    a_t = target.shape[1] / target.shape[0]
    if abs(a_in - a_t) > 0.02 * max(a_in, a_t):
        raise ImageError(
            partner,
            f"framing differs from its input {path.name} ({target.shape[1]}x{target.shape[0]} vs "
            f"{image.shape[1]}x{image.shape[0]}); paired photos must have the same aspect ratio",
        )
    boxes = square_crop_boxes(image.shape[0], image.shape[1], s.crops_per_photo, rng, s.scale)
    return crop_resize(image, boxes, s.crop_size), crop_resize(target, boxes, s.crop_size)


def pack_files(
    files: list[Path],
    *,
    names: list[str] | None = None,
    paired_files: list[Path | None] | None = None,
    settings: PackSettings | None = None,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    workers: int | None = None,
    label: str = "photos",
) -> tuple[ImagePack | None, Skipped]:
    """Crops of explicit ``files`` (optionally each with a paired ground-truth file).

    ``names`` (default: file names) key each photo's crop positions and label the crops.
    A paired entry that is ``None`` skips that photo. Returns ``(pack or None when nothing
    was usable, skipped)``; the pack is cached (see the module docstring).
    """
    s = settings or PackSettings()
    files = [Path(f) for f in files]
    names = list(names) if names is not None else [f.name for f in files]
    partners = list(paired_files) if paired_files is not None else None
    cache_path = None
    if cache and files:
        key = json.dumps(
            {
                "version": PACK_VERSION,
                "files": [_stamp(f) for f in files],
                "names": names,
                "paired": None if partners is None else [_stamp(p) for p in partners],
                "settings": [s.space, s.paired_space, s.crops_per_photo, s.crop_size, list(s.scale), s.seed, s.max_pixels],
            }
        )
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
        cache_path = Path(cache_dir or default_cache_dir()) / "packs" / f"{digest}.npz"
        cached = _load_cached(cache_path)
        if cached is not None:
            return cached

    def work(i: int):
        partner = None
        if partners is not None:
            partner = partners[i]
            if partner is None:
                return None, "no paired photo"
        try:
            return _crops_of(files[i], partner, names[i], s), None
        except ImageError as exc:
            return None, exc.problem if Path(exc.path) == files[i] else str(exc)
        except MemoryError:
            return None, "not enough memory to decode"

    n_workers = max(1, min(workers or min(4, usable_cpus()), len(files) or 1))
    if n_workers == 1:
        results = [work(i) for i in range(len(files))]
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            results = list(pool.map(work, range(len(files))))

    crops, paired, crop_names, skipped = [], [], [], []
    for f, name, (res, problem) in zip(files, names, results):
        if res is None:
            skipped.append((str(f), problem))
            continue
        crops.append(res[0])
        if res[1] is not None:
            paired.append(res[1])
        crop_names.extend(f"{name}#{k}" for k in range(len(res[0])))
    pack = None
    if crops:
        pack = ImagePack(np.concatenate(crops), np.concatenate(paired) if paired else None, crop_names)
    if cache_path is not None and pack is not None:
        pack.save(cache_path)
        _write_json(cache_path.with_suffix(".skipped.json"), skipped)
    return pack, skipped


def _load_cached(path: Path):
    side = path.with_suffix(".skipped.json")
    if not (path.exists() and side.exists()):
        return None
    try:
        pack = ImagePack.load(path)
        skipped = [(str(p), str(r)) for p, r in json.loads(side.read_text())]
    except (ValueError, OSError, TypeError):
        return None  # a damaged cache entry is rebuilt
    return pack, skipped


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj))


def _warn_skipped(folder, skipped: Skipped, total: int) -> None:
    if skipped:
        lines = "\n".join(f"  {p}: {r}" for p, r in skipped)
        warnings.warn(f"{folder}: skipped {len(skipped)} of {total} photos:\n{lines}", UserWarning, stacklevel=3)


def pack_folder(
    folder: str | Path,
    *,
    paired_folder: str | Path | None = None,
    recursive: bool = True,
    space: str = "auto",
    paired_space: str = "display",
    crops_per_photo: int | None = None,
    crop_size: int = 80,
    scale: tuple[float, float] | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    cache: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    min_crops: int = MIN_CROPS,
) -> tuple[ImagePack, Skipped]:
    """All photos of ``folder`` as one :class:`ImagePack` plus the ``skipped`` list.

    ``crops_per_photo`` / ``scale`` ``None``: :func:`crops_for` the number of photos and
    ``min_crops`` (a given ``crops_per_photo`` alone keeps the largest squares up to 4 and
    takes several scales above).
    With ``paired_folder`` each photo is matched by file stem (:func:`match_pairs`) to its
    ground truth, cropped at the same places into ``pack.paired``; photos without a partner
    and truth files without an input are skipped and reported. Raises ``ValueError`` when
    the folder has no photo, none is usable or (paired) no photo has a partner.
    """
    folder = Path(folder)
    files = list_photos(folder, recursive)
    if not files:
        raise ValueError(f"{folder}: no photos found (looked for TIFF, PNG, JPEG, WebP, BMP and camera RAW files)")
    names = [f.relative_to(folder).as_posix() for f in files]
    partners, orphans = None, []
    if paired_folder is not None:
        paired_folder = Path(paired_folder)
        partners, orphans = match_pairs(folder, paired_folder, files, recursive)
        if not any(p is not None for p in partners):
            raise ValueError(
                f"{folder}: no photo has a ground truth of the same file stem in {paired_folder} "
                f"(e.g. {files[0].name} needs {files[0].stem}.png or .tif there)"
            )
    if crops_per_photo is None:
        n_photos = len(files) if partners is None else sum(p is not None for p in partners)
        crops_per_photo, auto_scale = crops_for(n_photos, min_crops)
        scale = auto_scale if scale is None else scale
    elif scale is None:
        scale = MULTI_SCALE if crops_per_photo > PAPER_CROPS_PER_PHOTO else (1.0, 1.0)
    settings = PackSettings(space, paired_space, crops_per_photo, crop_size, scale, seed, max_pixels)
    pack, skipped = pack_files(
        files, names=names, paired_files=partners, settings=settings, cache_dir=cache_dir, cache=cache, workers=workers
    )
    if partners is not None:
        skipped = [(p, f"{r} in {paired_folder}" if r == "no paired photo" else r) for p, r in skipped]
        skipped += [(str(p), f"no input photo of this stem in {folder}") for p in orphans]
    if pack is None:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise ValueError(f"{folder}: none of the {len(files)} photos could be used{first}")
    _warn_skipped(f"{folder} + {paired_folder}" if partners is not None else folder, skipped, len(files) + len(orphans))
    return pack, skipped


@dataclass
class FolderDataset:
    """Training data from folders: ``inputs`` (and optional ``targets``) as :class:`ImagePack`.

    ``inputs_dir``: photos to retouch (linearised per ``space``); ``targets_dir``: photos in the
    wanted style (read per ``target_space``, ``"display"`` by default; need not show the same
    scenes, SPEC §7); ``paired_dir``: optional ground truth for the inputs (matched by file
    stem), giving ``inputs.paired``. ``crops_per_photo`` / ``scale`` ``None``: chosen per set
    by :func:`crops_for`. ``skipped`` lists ``(path, reason)`` of unusable photos.
    """

    inputs_dir: str | Path
    targets_dir: str | Path | None = None
    recursive: bool = True
    space: str = "auto"
    crops_per_photo: int | None = None  # None: enough for MIN_CROPS per set (crops_for)
    seed: int = 0
    paired_dir: str | Path | None = None
    target_space: str = "display"
    crop_size: int = 80
    scale: tuple[float, float] | None = None
    cache_dir: str | Path | None = None
    cache: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None
    min_crops: int = MIN_CROPS  # inputs: crops wanted when crops_per_photo is None (targets: MIN_CROPS)
    inputs: ImagePack = field(init=False)
    targets: ImagePack | None = field(init=False, default=None)
    skipped: Skipped = field(init=False, default_factory=list)

    def __post_init__(self):
        common = dict(
            recursive=self.recursive,
            crops_per_photo=self.crops_per_photo,
            crop_size=self.crop_size,
            scale=self.scale,
            seed=self.seed,
            cache_dir=self.cache_dir,
            cache=self.cache,
            max_pixels=self.max_pixels,
            workers=self.workers,
        )
        self.inputs, skipped = pack_folder(
            self.inputs_dir, paired_folder=self.paired_dir, space=self.space, paired_space=self.target_space,
            min_crops=self.min_crops, **common,
        )
        self.skipped = list(skipped)
        if self.targets_dir is not None:
            self.targets, skipped_t = pack_folder(self.targets_dir, space=self.target_space, **common)
            self.skipped += skipped_t
