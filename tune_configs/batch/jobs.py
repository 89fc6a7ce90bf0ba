"""What a batch retouches: inputs (files, folders, globs) -> jobs, and the output folder checks.

:func:`collect_inputs` expands the command line into :class:`Job` s (input photo + output stem)
and refuses output folders that would touch the inputs (:class:`RetouchError`); arguments
that name nothing become failed :class:`PhotoResult` s.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from exposure_env import io as image_io


class RetouchError(ValueError):
    """A batch that must not start (unsafe output folder, existing outputs, bad option)."""


@dataclass
class Job:
    """One input photo and the output stem (``out_dir/rel/stem``, no suffix).

    ``source``: where the photo's bytes are read when not at ``input`` (a Ray worker's copy of
    them, :mod:`tune_configs.batch.ray_stages`); records and reasons always name ``input``.
    """

    input: str
    base: str
    key: str
    source: str = ""

    @property
    def path(self) -> str:
        """The file to read: ``source`` when set, else ``input``."""
        return self.source or self.input


@dataclass
class PhotoResult:
    input: str
    status: str  # "done", "skipped" or "failed"
    reason: str = ""
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def collect_inputs(inputs: Iterable[str | Path], out_dir: str | Path) -> tuple[list[Job], list[PhotoResult]]:
    """Expand files, folders (recursive) and globs into jobs; unreadable arguments become failures.

    Folders contribute files with a supported photo suffix (hidden files are ignored); a folder
    ``F`` maps ``F/a/b.tif`` to ``out_dir/a/b``, a file to ``out_dir/stem``. Output stems that
    would collide get the input suffix appended. Raises :class:`RetouchError` when ``out_dir`` is
    an input folder or lies inside one (a folder given as input is searched recursively), or is
    the folder holding an input file (a subfolder of it is fine).
    """
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise RetouchError(f"{out_dir}: output path exists and is not a folder")
    entries: list[tuple[Path, Path]] = []  # (file, output stem)
    failures: list[PhotoResult] = []
    trees: list[Path] = []  # folders given as inputs: out_dir must stay outside them
    file_dirs: list[Path] = []  # folders of single input files: out_dir must differ

    def add_folder(folder: Path):
        folder = folder.resolve()
        trees.append(folder)
        for p in sorted(folder.rglob("*")):
            if p.is_file() and image_io.is_supported(p):
                rel = p.relative_to(folder)
                if not any(part.startswith(".") for part in rel.parts):
                    entries.append((p.resolve(), out / rel.with_suffix("")))

    def add_file(path: Path):
        file_dirs.append(path.resolve().parent)
        entries.append((path.resolve(), out / path.stem))

    def add(arg: Path):
        if arg.is_dir():
            add_folder(arg)
        elif arg.exists():
            add_file(arg)
        else:
            failures.append(PhotoResult(str(arg), "failed", f"{arg}: no such file or folder"))

    for raw in inputs:
        raw = str(raw)
        if _has_magic(raw) and not Path(raw).exists():
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                failures.append(PhotoResult(raw, "failed", f"{raw}: no files match this pattern"))
            for m in matches:
                p = Path(m)
                if p.is_dir():
                    add_folder(p)
                elif image_io.is_supported(p):
                    add_file(p)
        else:
            add(Path(raw))

    for folder in trees:
        if _inside(out, folder):
            raise RetouchError(f"{out_dir}: the output folder is (inside) the input folder {folder}; choose a folder outside the inputs")
    for folder in file_dirs:
        if out == folder:
            raise RetouchError(f"{out_dir}: the output folder holds input photos; choose another folder (a subfolder is fine)")

    jobs: list[Job] = []
    seen: set[Path] = set()
    taken: dict[Path, int] = {}
    for path, stem in entries:
        if path in seen:
            continue
        seen.add(path)
        if stem in taken:
            stem = stem.with_name(f"{stem.name}_{path.suffix.lstrip('.').lower()}")
            while stem in taken:
                stem = stem.with_name(f"{stem.name}_")
        taken[stem] = 1
        jobs.append(Job(str(path), str(stem), str(stem.relative_to(out))))
    return jobs, failures
