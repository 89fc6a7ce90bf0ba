"""Sidecar files on disk: names, atomic writes, and reading the JSON edit record ``exposure retouch`` writes.

Names (beside the JSON record ``<stem>.json`` of one retouched photo):
``<stem>.darktable.xmp``, ``<stem>.rawtherapee.pp3``, ``<stem>.lightroom.xmp``. They describe
edits of the *original* photo, so they deliberately do not use the editors' automatic names
(``photo.tif.xmp``, ``photo.tif.pp3``): an editor must never apply them to our already
retouched output that sits beside them. The README says how to open them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .. import filters
from ..atomic import atomic_write
from ..edits import Edit
from .darktable import sidecar as darktable_sidecar
from .decoding import DecodingError, InputDecoding
from .lightroom import sidecar as lightroom_sidecar
from .rawtherapee import sidecar as rawtherapee_sidecar

EDITORS = ("darktable", "rawtherapee", "lightroom")
SUFFIXES = {"darktable": ".darktable.xmp", "rawtherapee": ".rawtherapee.pp3", "lightroom": ".lightroom.xmp"}
#: Version of the JSON record: 1 = no ``record_version`` key; 2 = ``record_version``, and with
#: ``--sidecar`` the input ``decoding`` (older records: read from the photo again).
RECORD_VERSION = 2


class SidecarError(ValueError):
    """A sidecar that cannot be read or written; ``str(err)`` is one line naming the file."""


def parse_editors(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"darktable,rawtherapee"`` (or a list) -> validated editor names, in the given order, no repeats."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for raw in items:
        name = str(raw).strip().lower()
        if not name:
            continue
        if name not in EDITORS:
            raise ValueError(f"unknown editor {raw!r}; choose from {', '.join(EDITORS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"no editor given; choose from {', '.join(EDITORS)}")
    return tuple(names)


def sidecar_paths(stem: str | Path, editors: Iterable[str]) -> dict[str, Path]:
    """``{editor: <stem><suffix>}`` for an output stem (no suffix)."""
    stem = Path(stem)
    return {e: stem.with_name(stem.name + SUFFIXES[e]) for e in editors}


def render(editor: str, decoding: InputDecoding, edits: Sequence[Edit], source_name: str) -> bytes:
    """The bytes of one editor's sidecar."""
    if editor == "darktable":
        return darktable_sidecar(decoding, edits, source_name)
    if editor == "rawtherapee":
        return rawtherapee_sidecar(decoding, edits)
    if editor == "lightroom":
        return lightroom_sidecar(decoding, edits)
    raise ValueError(f"unknown editor {editor!r}; choose from {', '.join(EDITORS)}")


def write_sidecars(stem, editors: Iterable[str], decoding: InputDecoding, edits: Sequence[Edit], source_name: str,
                   *, overwrite: bool = False) -> list[str]:
    """Write each editor's sidecar beside ``stem`` atomically; existing files only with ``overwrite``."""
    paths = sidecar_paths(stem, editors)
    if not overwrite:
        for path in paths.values():
            if path.exists():
                raise SidecarError(f"{path}: already exists (use --overwrite to replace it)")
    written = []
    for editor, path in paths.items():
        data = render(editor, decoding, edits, source_name)
        try:
            with atomic_write(path) as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            raise SidecarError(f"{path}: cannot be written ({exc.strerror or exc})") from None
        written.append(str(path))
    return written


@dataclass
class EditRecord:
    """What a JSON record says: the edits, the original photo and how it was decoded (if recorded)."""

    path: Path
    edits: list[Edit]
    input: Path | None
    input_space: str
    decoding: InputDecoding | None
    version: int


def _fail(path, problem: str) -> SidecarError:
    return SidecarError(f"{path}: {' '.join(str(problem).split())}")


def _nan_to_str(value: str):
    raise ValueError(f"{value} is not a number JSON allows")


def load_record(path: str | Path) -> EditRecord:
    """Read and check a JSON record of ``exposure retouch`` (or a bare edit list); one-line errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        obj = json.loads(text, parse_constant=_nan_to_str)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # NaN / Infinity literals
        raise _fail(path, f"parameters must be finite numbers: {exc}") from None
    if isinstance(obj, list):
        obj = {"edits": obj}
    if not isinstance(obj, dict) or not isinstance(obj.get("edits"), list):
        raise _fail(path, "not an exposure-rl edit record (expected an object with an 'edits' list)")
    version = obj.get("record_version", 1)
    if not isinstance(version, int) or version < 1:
        raise _fail(path, f"record_version {version!r} is not a positive integer")
    if version > RECORD_VERSION:
        raise _fail(path, f"record_version {version} is newer than this exposure-rl reads ({RECORD_VERSION}); upgrade exposure-rl")
    edits = []
    for k, d in enumerate(obj["edits"], 1):
        if not isinstance(d, dict):
            raise _fail(path, f"step {k}: expected an object with 'filter' and 'params', got {type(d).__name__}")
        try:  # name the unknown filter (not a "missing field")
            if "filter" in d:
                filters.get(str(d["filter"]))
        except KeyError as exc:
            raise _fail(path, f"step {k}: {exc.args[0]}") from None
        params = d.get("params")
        if isinstance(params, list) and any(isinstance(v, (int, float)) and not math.isfinite(v) for v in params):
            raise _fail(path, f"step {k}: parameters must be finite numbers, got {params}")
        try:
            edits.append(Edit.from_dict(d))
        except (KeyError, ValueError, TypeError) as exc:
            raise _fail(path, f"step {k}: {exc.args[0] if exc.args else exc}") from None
    decoding = None
    if "decoding" in obj:
        try:
            decoding = InputDecoding.from_dict(obj["decoding"])
        except (ValueError, TypeError) as exc:
            raise _fail(path, f"bad 'decoding' record: {exc}") from None
    raw_input = obj.get("input")
    input_path = Path(raw_input) if isinstance(raw_input, str) and raw_input else None
    space = obj.get("input_space", "auto")
    return EditRecord(path, edits, input_path, str(space), decoding, version)


def resolve_decoding(record: EditRecord, photo: str | Path | None = None, space: str | None = None) -> InputDecoding:
    """The record's decoding, or (older records, or an explicit ``photo``/``space``) one read from the photo."""
    if record.decoding is not None and photo is None and space is None:
        return record.decoding
    photo = Path(photo) if photo is not None else record.input
    if photo is None:
        raise _fail(record.path, "no input photo recorded (an older record?); pass the photo with --input")
    if not photo.exists():
        hint = " (written by an older exposure-rl: no 'decoding' record)" if record.decoding is None else ""
        raise _fail(record.path, f"its input photo {photo} is not there{hint}; pass the photo with --input")
    try:
        return InputDecoding.for_file(photo, space or record.input_space)
    except (DecodingError, ValueError) as exc:
        raise SidecarError(" ".join(str(exc).split())) from None


def export_record(json_path, editors: Sequence[str], *, out_dir=None, photo=None, space=None,
                  overwrite: bool = False) -> list[str]:
    """Sidecars for a JSON record, beside it (or in ``out_dir``); never into the photo's own folder."""
    record = load_record(json_path)
    decoding = resolve_decoding(record, photo, space)
    source = Path(photo) if photo is not None else record.input
    folder = Path(out_dir) if out_dir is not None else record.path.parent
    if source is not None and source.exists() and folder.resolve() == source.resolve().parent:
        raise _fail(folder, "is the folder of the input photo; sidecars go beside the outputs (choose --out)")
    stem = folder / record.path.stem
    return write_sidecars(stem, editors, decoding, record.edits, source.name if source else record.path.stem,
                          overwrite=overwrite)
