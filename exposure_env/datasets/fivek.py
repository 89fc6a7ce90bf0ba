"""The MIT-Adobe FiveK recipe of the paper (SPEC §7) as :class:`ImagePack` s.

Layout: a root folder holding an *input* folder (linear 16-bit ProPhoto TIFF exports of the
RAW files; one of ``INPUT_DIRS``, case-insensitive) and an *expert C* folder (the expert's
retouches; one of ``EXPERT_C_DIRS``). A photo's FiveK id (1..5000) is

* the number in its name when files are named like the dataset, ``a0001-jmac_DSC1459.tif``
  (any subset of the photos may be present), or
* its 1-based position in the sorted file listing when the folder holds all 5,000 photos
  under other names (the split lists index the FiveK listing order).

Splits (copies shipped in ``exposure_env/data/fivek_folds``): ``train_inputs`` = inputs of
``FiveK_train_first2k``; ``train_targets`` = expert C of ``FiveK_train_second2k`` (different
photos: unpaired); ``test`` = inputs of ``FiveK_test`` paired with their expert-C versions.
Inputs are linearised (``space="auto"``: 16-bit TIFF -> ProPhoto ``x ** 1.8``); expert
photos are read display-referred (their pixel values are the target look).
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources
from pathlib import Path

from ..io import DEFAULT_MAX_PIXELS
from .folder import PackSettings, Skipped, list_photos, pack_files
from .pack import ImagePack

NUM_PHOTOS = 5000
INPUT_DIRS = ("input", "inputs", "raw", "linear", "InputAsShotZeroed", "InputZeroed", "original")
EXPERT_C_DIRS = ("expertC", "expert_c", "expert-c", "expert c", "c", "tiff16_c", "retouched_c")
SPLITS = {
    "train_inputs": "FiveK_train_first2k.txt",
    "train_targets": "FiveK_train_second2k.txt",
    "test": "FiveK_test.txt",
    "test_amt": "FiveK_test_AMT.txt",
}
_ID_NAME = re.compile(r"^a(\d{4})(?:[-_.]|$)", re.IGNORECASE)


def folds_dir() -> Path:
    """Folder of the shipped split lists."""
    return Path(str(resources.files("exposure_env") / "data" / "fivek_folds"))


def read_split(path: str | Path) -> list[int]:
    """Ids (1..5000, in file order) of a split list; ``#`` lines are comments. ``ValueError`` if malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: split list not found")
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.isdigit() or not 1 <= int(line) <= NUM_PHOTOS:
            raise ValueError(f"{path}:{lineno}: expected a FiveK id in 1..{NUM_PHOTOS}, got {line!r}")
        ids.append(int(line))
    if not ids:
        raise ValueError(f"{path}: split list has no ids")
    return ids


def find_subfolder(root: Path, candidates, what: str) -> Path:
    """The child folder of ``root`` whose name matches one of ``candidates`` (case-insensitive)."""
    wanted = {c.lower() for c in candidates}
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in wanted:
            return child
    looked = ", ".join(f"{c}/" for c in candidates)
    raise ValueError(f"{root}: FiveK layout not found: no {what} folder (looked for {looked})")


def index_photos(folder: Path) -> dict[int, Path]:
    """FiveK id -> file for one folder (names ``aNNNN-*`` or the full sorted 5,000 listing)."""
    files = list_photos(folder, recursive=False)
    named = {}
    for f in files:
        m = _ID_NAME.match(f.name)
        if m:
            i = int(m.group(1))
            if i in named:
                raise ValueError(f"{folder}: FiveK id {i} appears twice ({named[i].name}, {f.name})")
            named[i] = f
    if named:
        return named
    if len(files) == NUM_PHOTOS:
        return {i + 1: f for i, f in enumerate(files)}
    raise ValueError(
        f"{folder}: cannot tell FiveK ids: name the photos like the dataset (a0001-*.tif ... a5000-*.tif) "
        f"or keep all {NUM_PHOTOS} so their sorted listing gives the ids ({len(files)} photos found)"
    )


class FiveKDataset:
    """Packs of the paper's FiveK recipe, built lazily (each on first access) and cached.

    ``limit`` keeps only the first ``limit`` ids of each split (quick runs); ``folds`` points
    to another folder of split lists. ``skipped`` collects ``(path or id, reason)``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        folds: str | Path | None = None,
        limit: int | None = None,
        crops_per_photo: int = 4,
        crop_size: int = 80,
        seed: int = 0,
        input_space: str = "auto",
        target_space: str = "display",
        cache_dir: str | Path | None = None,
        cache: bool = True,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"{self.root}: FiveK folder not found")
        self.input_dir = find_subfolder(self.root, INPUT_DIRS, "input")
        self.expert_dir = find_subfolder(self.root, EXPERT_C_DIRS, "expert C")
        self.inputs_by_id = index_photos(self.input_dir)
        self.expert_by_id = index_photos(self.expert_dir)
        self.folds = Path(folds) if folds is not None else folds_dir()
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self.cache_dir, self.cache, self.workers = cache_dir, cache, workers
        self._input_settings = PackSettings(input_space, target_space, crops_per_photo, crop_size, (1.0, 1.0), seed, max_pixels)
        self._target_settings = PackSettings(target_space, target_space, crops_per_photo, crop_size, (1.0, 1.0), seed, max_pixels)
        self.skipped: Skipped = []

    def split_ids(self, split: str) -> list[int]:
        """Ids of a split (``train_inputs``, ``train_targets``, ``test``, ``test_amt``), after ``limit``."""
        if split not in SPLITS:
            raise ValueError(f"unknown FiveK split {split!r}; choose one of: {', '.join(SPLITS)}")
        ids = read_split(self.folds / SPLITS[split])
        return ids[: self.limit] if self.limit else ids

    def _pack(self, split: str, source: dict[int, Path], paired: dict[int, Path] | None, settings) -> ImagePack:
        ids = self.split_ids(split)
        folder = self.expert_dir if source is self.expert_by_id else self.input_dir
        present = [i for i in ids if i in source]
        self.skipped += [(f"FiveK id {i}", f"missing from {folder}") for i in ids if i not in source]
        files = [source[i] for i in present]
        names = [f"{i:04d}" for i in present]
        partners = None if paired is None else [paired.get(i) for i in present]
        pack, skipped = pack_files(
            files,
            names=names,
            paired_files=partners,
            settings=settings,
            cache_dir=self.cache_dir,
            cache=self.cache,
            workers=self.workers,
        )
        if paired is not None:
            skipped = [(p, f"no expert C version in {self.expert_dir}" if r == "no paired photo" else r) for p, r in skipped]
        self.skipped += skipped
        if pack is None:
            raise ValueError(f"{self.root}: no usable photo for the FiveK {split} split ({len(ids)} ids, {len(present)} present in {folder})")
        return pack

    @cached_property
    def train_inputs(self) -> ImagePack:
        """Linear input crops of the first 2k training photos."""
        return self._pack("train_inputs", self.inputs_by_id, None, self._input_settings)

    @cached_property
    def train_targets(self) -> ImagePack:
        """Expert-C crops of the second 2k training photos (the target style, unpaired)."""
        return self._pack("train_targets", self.expert_by_id, None, self._target_settings)

    @cached_property
    def test(self) -> ImagePack:
        """Test inputs (``images``) with their expert-C versions (``paired``), same crops."""
        return self._pack("test", self.inputs_by_id, self.expert_by_id, self._input_settings)
