"""Training data for a run: where it comes from, checked and written as packs before Ray starts.

A :class:`DataSpec` names the source -- the bundled demo set, a pair of photo folders
(inputs to retouch, photos in the wanted style), a folder of inputs with their paired
ground truth (supervised: ``source="paired"``) or the MIT-Adobe FiveK recipe -- and
:func:`prepare_data` turns it into three ``.npz`` :class:`ImagePack` files in the run's
folder (env runners and the discriminator actor load them by path) plus a fixed validation
set for the histogram intersection of SPEC §8:

``inputs.npz``   crops the agent edits (env)
``targets.npz``  crops in the target style (discriminator's "real" images; paired: the
                 training inputs' ground truth)
``val.npz``      validation crops (``images``) with, when known, their ground truth (``paired``)

Validation: the demo's held-out paired crops; FiveK: the first ``val_photos`` test photos
(paired with expert C); folders and paired folders: ``val_fraction`` of the input *photos*
held out whole (at least one, no more than ``max_val`` crops need; at most ``max_val``
crops of them kept), compared with the target set or, paired, with their own ground truth. A single input photo can only lend
validation crops of itself (a random ``val_fraction`` of its crops).

Folders get enough crops from a handful of photos (``exposure_env.datasets.folder.crops_for``);
:class:`PreparedData` counts photos and crops of each set for the run header.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from exposure_env.datasets.pack import ImagePack

SOURCES = ("demo", "folders", "paired", "fivek")


@dataclass(frozen=True)
class DataSpec:
    """``source`` in :data:`SOURCES`; ``inputs`` / ``targets`` (or ``paired``) folders or the FiveK ``root``."""

    source: str
    inputs: str | None = None
    targets: str | None = None
    root: str | None = None
    seed: int = 0
    limit: int | None = None  # FiveK: first ids of each split (quick runs)
    val_photos: int = 16  # FiveK test photos used for validation (4 crops each)
    val_fraction: float = 0.1  # folders: share of input crops held out
    max_val: int = 64
    style: str | None = None  # demo: a style of exposure_env.datasets.demo.STYLES (None: its default)
    paired: str | None = None  # paired: folder of the inputs' ground truth (matched by file stem)

    @classmethod
    def demo(cls, seed: int = 0, style: str | None = None) -> "DataSpec":
        return cls("demo", seed=seed, style=style)

    @classmethod
    def folders(cls, inputs, targets, seed: int = 0) -> "DataSpec":
        return cls("folders", inputs=str(inputs), targets=str(targets), seed=seed)

    @classmethod
    def paired_folders(cls, inputs, paired, seed: int = 0) -> "DataSpec":
        """Supervised: ``inputs`` with their retouched versions in ``paired`` (same file stems)."""
        return cls("paired", inputs=str(inputs), paired=str(paired), seed=seed)

    @property
    def scorer(self) -> str | None:
        """The reward this data calls for: ``"paired"`` for paired folders, else None (the recipe's)."""
        return "paired" if self.source == "paired" else None

    @classmethod
    def fivek(cls, root, seed: int = 0, limit: int | None = None) -> "DataSpec":
        return cls("fivek", root=str(root), seed=seed, limit=limit)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.source == "demo":
            return "bundled demo set" + (f" ({self.style} style)" if self.style else "")
        if self.source == "folders":
            return f"inputs {self.inputs}, targets {self.targets}"
        if self.source == "paired":
            return f"inputs {self.inputs}, paired ground truth {self.paired}"
        return f"FiveK at {self.root}" + (f" (first {self.limit} photos per split)" if self.limit else "")


def check_data_spec(spec: DataSpec) -> None:
    """Cheap checks (no decoding): known source, folders exist. ``ValueError`` with one line."""
    if spec.source not in SOURCES:
        raise ValueError(f"data source {spec.source!r} unknown; choose one of {', '.join(SOURCES)}")
    if spec.source in ("folders", "paired"):
        other = "targets" if spec.source == "folders" else "paired"
        for what, folder in (("inputs", spec.inputs), (other, getattr(spec, other))):
            if not folder:
                raise ValueError(f"--{what} is required with --inputs/--{other} training")
            if not Path(folder).is_dir():
                raise ValueError(f"{folder}: {what} folder not found")
    if spec.source == "fivek":
        if not spec.root or not Path(spec.root).is_dir():
            raise ValueError(f"{spec.root}: FiveK folder not found (expected a folder with input/ and expertC/ photos)")
    if spec.source == "demo" and spec.style is not None:
        from exposure_env.datasets.demo.styles import get_style

        get_style(spec.style)
    if not 0.0 < spec.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {spec.val_fraction}")


@dataclass
class PreparedData:
    """Pack paths plus the loaded validation pack, with photo and crop counts of each set."""

    inputs: Path
    targets: Path
    val: Path
    num_inputs: int
    num_targets: int
    val_pack: ImagePack
    description: str
    num_input_photos: int = 0
    num_target_photos: int = 0

    @classmethod
    def from_packs(cls, paths: dict, inputs: ImagePack, targets: ImagePack, val: ImagePack, description: str):
        return cls(
            paths["inputs"], paths["targets"], paths["val"], len(inputs), len(targets), val, description,
            len(inputs.photos()), len(targets.photos()),
        )

    def counts_line(self) -> str:
        """``N input photos -> M crops, K target photos -> L crops, V validation crops (P photos)``."""
        def photos(n: int, what: str) -> str:
            return f"{n} {what}photo{'' if n == 1 else 's'}"

        return (
            f"{photos(self.num_input_photos, 'input ')} -> {self.num_inputs} crops, "
            f"{photos(self.num_target_photos, 'target ')} -> {self.num_targets} crops, "
            f"{len(self.val_pack)} validation crops ({photos(len(self.val_pack.photos()), '')}"
            f"{', paired' if self.val_pack.paired is not None else ''})"
        )

    def summary(self) -> dict:
        return {
            "inputs": str(self.inputs),
            "targets": str(self.targets),
            "val": str(self.val),
            "num_inputs": self.num_inputs,
            "num_targets": self.num_targets,
            "num_input_photos": self.num_input_photos,
            "num_target_photos": self.num_target_photos,
            "num_val": len(self.val_pack),
            "num_val_photos": len(self.val_pack.photos()),
            "val_paired": self.val_pack.paired is not None,
            "description": self.description,
        }


def hold_out(inputs: ImagePack, spec: DataSpec) -> tuple[ImagePack, ImagePack]:
    """``(train, val)``: whole photos held out (module docstring), crops of one photo else."""
    if len(inputs.photos()) >= 2:
        return inputs.split_photos(spec.val_fraction, seed=spec.seed, max_second=spec.max_val)
    train, val = inputs.split(min(spec.val_fraction, spec.max_val / max(len(inputs), 1)), seed=spec.seed)
    if len(train) == 0:
        raise ValueError(f"{spec.inputs}: too few photos to hold out a validation set")
    return train, val


def _packs(spec: DataSpec) -> tuple[ImagePack, ImagePack, ImagePack]:
    if spec.source == "demo":
        from exposure_env.datasets.demo import DEFAULT_STYLE, demo_packs

        d = demo_packs(spec.seed, style=spec.style or DEFAULT_STYLE)
        return d.train_inputs, d.train_targets, d.val
    if spec.source in ("folders", "paired"):
        from exposure_env.datasets.folder import MIN_CROPS, FolderDataset, crops_for, list_photos, match_pairs
        from exposure_env.datasets.pack import held_out_count

        files = list_photos(spec.inputs)  # enough crops left for training after the hold-out
        n = len(files) if spec.source == "folders" else sum(
            p is not None for p in match_pairs(Path(spec.inputs), Path(spec.paired), files)[0]
        )
        min_crops = MIN_CROPS
        if n >= 2:
            k = held_out_count(n, spec.val_fraction, spec.max_val, crops_for(n)[0])
            min_crops = -(-MIN_CROPS * n // (n - k))
        if spec.source == "folders":
            ds = FolderDataset(spec.inputs, spec.targets, seed=spec.seed, min_crops=min_crops)
            train, val = hold_out(ds.inputs, spec)
            return train, ds.targets, val
        ds = FolderDataset(spec.inputs, paired_dir=spec.paired, seed=spec.seed, min_crops=min_crops)
        train, val = hold_out(ds.inputs, spec)
        return train, ImagePack(train.paired, None, train.names), val
    from exposure_env.datasets.fivek import FiveKDataset

    ds = FiveKDataset(spec.root, seed=spec.seed, limit=spec.limit)
    val_ds = FiveKDataset(spec.root, seed=spec.seed, limit=spec.val_photos)
    return ds.train_inputs, ds.train_targets, val_ds.test


def prepare_data(spec: DataSpec, data_dir: str | Path) -> PreparedData:
    """Build (or reuse) the three packs of ``spec`` in ``data_dir`` (see module docstring).

    An existing ``data_dir`` whose ``spec.json`` matches ``spec`` is reused as is (resume).
    Raises ``ValueError`` naming the folder when a set is empty or unusable.
    """
    check_data_spec(spec)
    data_dir = Path(data_dir)
    paths = {k: data_dir / f"{k}.npz" for k in ("inputs", "targets", "val")}
    stamp = data_dir / "spec.json"
    if stamp.exists() and all(p.exists() for p in paths.values()):
        try:
            same = json.loads(stamp.read_text()) == spec.to_dict()
        except (OSError, ValueError):
            same = False
        if same:
            packs = {k: ImagePack.load(p) for k, p in paths.items()}
            return PreparedData.from_packs(paths, packs["inputs"], packs["targets"], packs["val"], spec.describe())
    inputs, targets, val = _packs(spec)
    for what, pack in (("input", inputs), ("target", targets), ("validation", val)):
        if pack is None or len(pack) == 0:
            raise ValueError(f"{spec.describe()}: the {what} set is empty")
    data_dir.mkdir(parents=True, exist_ok=True)
    inputs.save(paths["inputs"])
    targets.save(paths["targets"])
    val.save(paths["val"])
    stamp.write_text(json.dumps(spec.to_dict(), indent=1))
    return PreparedData.from_packs(paths, inputs, targets, val, spec.describe())


def validation_targets(val: ImagePack, targets: ImagePack, max_crops: int = 256, seed: int = 0) -> np.ndarray:
    """What validation outputs are compared with: the paired ground truth when the validation
    set has it, else up to ``max_crops`` crops of the target pack (fixed by ``seed``)."""
    if val.paired is not None:
        return val.paired
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(targets), size=min(max_crops, len(targets)), replace=False)
    return targets.images[np.sort(idx)]
