"""Where a run's results are kept (``--storage``): a local folder or any pyarrow filesystem URI.

A run always writes into its local run folder (``--results-dir``/NAME, the staging copy);
with a storage target :class:`RunMirror` copies what it writes to ``<storage>/<NAME>/``: each
checkpoint once it is complete, the logs (``progress.csv``, ``hi_curve.csv``, TensorBoard
files, ``run.json``, ``strips/``, ``summary.json``) when they change. Copies are atomic where
the filesystem can rename (local and NFS paths: written under a temporary name, then renamed);
on object stores (``s3://``, ``gs://``) each file is one upload and a checkpoint's run info
(:data:`~tune_configs.run_layout.RUN_INFO_FILE`) goes up last, so a reader never takes a
half-uploaded checkpoint for a checkpoint. Nothing here starts Ray.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .run_layout import (
    CHECKPOINT_PREFIX,
    CHECKPOINTS_DIR,
    DATA_DIR,
    DISCRIMINATOR_STATE_DIR,
    RUN_INFO_FILE,
    TRIALS_DIR,
)

#: Top-level entries of a run folder that are never copied: the data packs (rebuilt from the
#: data source), the critic actor's own restart state, the checkpoints (copied one by one) and
#: Tune trials (each trial mirrors itself).
NOT_MIRRORED = (DATA_DIR, DISCRIMINATOR_STATE_DIR, CHECKPOINTS_DIR, TRIALS_DIR)
#: Where downloaded checkpoints are cached (``--resume URI``): ``$EXPOSURE_RL_CACHE`` or ``~/.cache/exposure-rl``.
CACHE_ENV = "EXPOSURE_RL_CACHE"
_PARTIAL = ".partial-"


def is_uri(target: Any) -> bool:
    """True for ``scheme://...`` text (a storage URI rather than a local path)."""
    return isinstance(target, str) and "://" in target


@dataclass(frozen=True)
class Storage:
    """A folder ``path`` (in the filesystem's own path form) on the pyarrow filesystem ``fs``."""

    fs: Any  # pyarrow.fs.FileSystem
    path: str
    prefix: str = ""  # "scheme://" of the URI it came from ("" for a local path)
    query: str = ""  # "?..." of that URI (e.g. an S3 region), kept for display / reopening

    def child(self, *parts: str) -> "Storage":
        return Storage(self.fs, posixpath.join(self.path, *parts), self.prefix, self.query)

    def __str__(self) -> str:
        """The URI (``s3://bucket/key``, ``file:///dir``), a local path, or ``<FileSystem>:path``."""
        if self.prefix:
            return f"{self.prefix}{self.path}{self.query}"
        return self.path if type(self.fs).__name__ == "LocalFileSystem" else f"{type(self.fs).__name__}:{self.path}"

    def info(self, *parts: str):
        return self.fs.get_file_info(posixpath.join(self.path, *parts))

    def exists(self, *parts: str) -> bool:
        from pyarrow.fs import FileType

        return self.info(*parts).type != FileType.NotFound

    def listdir(self, *parts: str) -> list:
        """FileInfos directly under ``parts`` ([] when it does not exist)."""
        from pyarrow.fs import FileSelector

        return list(self.fs.get_file_info(FileSelector(posixpath.join(self.path, *parts), allow_not_found=True)))

    def local_path(self) -> Path | None:
        """The folder on this machine when the filesystem is the local one, else None."""
        from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

        fs, path = self.fs, self.path
        if isinstance(fs, SubTreeFileSystem) and isinstance(fs.base_fs, LocalFileSystem):
            return Path(posixpath.join(fs.base_path, path.lstrip("/")))
        return Path(path) if isinstance(fs, LocalFileSystem) else None


def open_storage(target: str | os.PathLike | Storage, what: str = "--storage") -> Storage:
    """A :class:`Storage` for a local path, a ``file://`` / ``s3://`` / ``gs://`` / ... URI or a
    :class:`Storage` (returned as is). ``ValueError`` (one line naming ``what`` and ``target``) otherwise."""
    if isinstance(target, Storage):
        return target
    from pyarrow.fs import FileSystem

    text = os.fspath(target)
    if not text.strip():
        raise ValueError(f"{what}: empty path")
    uri = text if is_uri(text) else os.path.abspath(os.path.expanduser(text))
    try:
        fs, path = FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... with multi-line texts
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{what} {text}: not a usable storage location ({first})") from None
    prefix = text.split("://", 1)[0] + "://" if is_uri(text) else ""
    query = "?" + text.split("?", 1)[1] if is_uri(text) and "?" in text else ""
    return Storage(fs, path.rstrip("/") or path, prefix, query)


def _renames(fs) -> bool:
    """True where a rename is atomic (local / NFS paths, a subtree of one, the test mock)."""
    from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

    if isinstance(fs, SubTreeFileSystem):
        return _renames(fs.base_fs)
    return isinstance(fs, LocalFileSystem) or type(fs).__name__ == "_MockFileSystem"


def _put_file(local: Path, target: Storage) -> None:
    """Copy one local file to ``target`` (temporary name + rename where that is atomic)."""
    from pyarrow.fs import LocalFileSystem, copy_files

    fs, dest = target.fs, target.path
    fs.create_dir(posixpath.dirname(dest), recursive=True)
    folder, name = posixpath.split(dest)
    tmp = posixpath.join(folder, f"{_PARTIAL}{name}-{uuid.uuid4().hex[:8]}") if _renames(fs) else dest  # hidden
    copy_files(str(local), tmp, source_filesystem=LocalFileSystem(), destination_filesystem=fs)
    if tmp != dest:
        fs.move(tmp, dest)


def _delete_dir(target: Storage) -> None:
    from pyarrow.fs import FileType

    if target.info().type == FileType.Directory:
        target.fs.delete_dir(target.path)


def put_checkpoint(local: Path, target: Storage) -> None:
    """Copy the checkpoint folder ``local`` to ``target`` (replacing what is there): under a
    temporary name then renamed where renames are atomic, else its run info uploaded last."""
    from pyarrow.fs import LocalFileSystem, copy_files

    fs, local = target.fs, Path(local)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    last = [p for p in files if p.relative_to(local).as_posix() == RUN_INFO_FILE]
    if _renames(fs):
        parent, name = posixpath.split(target.path)
        tmp = Storage(fs, posixpath.join(parent, f"{_PARTIAL}{name}-{uuid.uuid4().hex[:8]}"))
        fs.create_dir(tmp.path, recursive=True)
        copy_files(str(local), tmp.path, source_filesystem=LocalFileSystem(), destination_filesystem=fs)
        old = Storage(fs, posixpath.join(parent, f"{_PARTIAL}old-{name}-{uuid.uuid4().hex[:8]}"))
        replaced = target.exists()
        if replaced:
            fs.move(target.path, old.path)
        fs.move(tmp.path, target.path)
        if replaced:
            _delete_dir(old)
        return
    _delete_dir(target)
    for p in [p for p in files if p not in last] + last:
        _put_file(p, target.child(p.relative_to(local).as_posix()))


class RunMirror:
    """Copies a local run folder to its storage folder as the run writes it (module docstring)."""

    def __init__(self, local_dir: str | os.PathLike, target: Storage):
        self.local_dir = Path(local_dir)
        self.target = target
        here = target.local_path()
        #: The storage folder *is* the run folder: nothing to copy.
        self.same_place = here is not None and here.resolve() == self.local_dir.resolve()
        self._sent: dict[str, tuple[int, int]] = {}

    def holds_run(self) -> bool:
        """True when the storage folder already has a run's files (checkpoints or logs)."""
        return not self.same_place and any(info.base_name != "." for info in self.target.listdir())

    def _log_files(self):
        """``(relative path, path)`` of the files to mirror (hidden ones are temporary files)."""
        tops = sorted(self.local_dir.iterdir()) if self.local_dir.is_dir() else []
        for top in tops:
            if top.name in NOT_MIRRORED:
                continue
            for p in [top] if top.is_file() else sorted(top.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    yield p.relative_to(self.local_dir).as_posix(), p

    def sync_logs(self) -> int:
        """Copy every log file that changed since the last call; returns how many were copied."""
        if self.same_place:
            return 0
        sent = 0
        for rel, p in self._log_files():
            try:
                st = p.stat()
            except FileNotFoundError:  # replaced while we looked
                continue
            key = (st.st_size, st.st_mtime_ns)
            if self._sent.get(rel) != key:
                _put_file(p, self.target.child(rel))
                self._sent[rel] = key
                sent += 1
        return sent

    def put_checkpoint(self, local_checkpoint: Path) -> Storage:
        """Copy one checkpoint folder (``checkpoints/<name>``); returns where it went."""
        dest = self.target.child(CHECKPOINTS_DIR, Path(local_checkpoint).name)
        if not self.same_place:
            put_checkpoint(Path(local_checkpoint), dest)
        return dest

    def prune(self, keep: int) -> None:
        """Keep only the newest ``keep`` ``iter_*`` checkpoints (and leftovers of failed copies
        removed); named ones (``best``) stay."""
        if self.same_place:
            return
        from pyarrow.fs import FileType

        entries = [i for i in self.target.listdir(CHECKPOINTS_DIR) if i.type == FileType.Directory]
        iters = sorted(i.path for i in entries if i.base_name.startswith(CHECKPOINT_PREFIX))
        stale = iters[:-keep] + [i.path for i in entries if i.base_name.startswith(_PARTIAL)]
        for path in stale:
            self.target.fs.delete_dir(path)

    def hydrate(self) -> int:
        """Before a resumed run writes: fetch the storage folder's log files the local run
        folder lacks or holds shorter (the run went on elsewhere); returns how many were fetched.
        A local file is never shortened."""
        if self.same_place or not self.target.exists():
            return 0
        from pyarrow.fs import FileSelector, FileType, copy_files, LocalFileSystem

        got = 0
        selector = FileSelector(self.target.path, recursive=True, allow_not_found=True)
        for info in self.target.fs.get_file_info(selector):
            rel = posixpath.relpath(info.path, self.target.path)
            if info.type != FileType.File or rel.split("/")[0] in NOT_MIRRORED or info.base_name.startswith("."):
                continue
            local = self.local_dir / rel
            if not local.is_file() or local.stat().st_size < info.size:
                local.parent.mkdir(parents=True, exist_ok=True)
                copy_files(info.path, str(local), source_filesystem=self.target.fs, destination_filesystem=LocalFileSystem())
                got += 1
            st = local.stat()
            if st.st_size == info.size:  # a longer local file goes up with the next copy
                self._sent[rel] = (st.st_size, st.st_mtime_ns)
        return got


# --------------------------------------------------------------------------- resume from storage
def find_checkpoint(target: Storage) -> Storage:
    """``target`` when it is a checkpoint (has a run info file), else the newest complete
    ``checkpoints/iter_*`` of the run folder ``target``; ``ValueError`` otherwise."""
    from pyarrow.fs import FileType

    if target.info(RUN_INFO_FILE).type == FileType.File:
        return target
    names = sorted(i.base_name for i in target.listdir(CHECKPOINTS_DIR)
                   if i.type == FileType.Directory and i.base_name.startswith(CHECKPOINT_PREFIX))
    for name in reversed(names):
        if target.info(CHECKPOINTS_DIR, name, RUN_INFO_FILE).type == FileType.File:
            return target.child(CHECKPOINTS_DIR, name)
    raise ValueError(f"{target}: not a checkpoint (no {RUN_INFO_FILE}) nor a run folder with checkpoints")


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "exposure-rl") / "checkpoints"


def download_checkpoint(target: str | Storage) -> Path:
    """The checkpoint (or a run folder's newest) at storage ``target`` as a local folder under
    :func:`cache_root`; fetched again only when its run info changed. ``ValueError`` when the
    location cannot be opened or holds no checkpoint."""
    from pyarrow.fs import LocalFileSystem, copy_files

    ckpt = find_checkpoint(open_storage(target, "--resume"))
    with ckpt.fs.open_input_stream(posixpath.join(ckpt.path, RUN_INFO_FILE)) as f:
        info = f.read()
    key = hashlib.sha1(str(ckpt).encode()).hexdigest()[:16]
    local = cache_root() / key / posixpath.basename(ckpt.path)
    if (local / RUN_INFO_FILE).is_file() and (local / RUN_INFO_FILE).read_bytes() == info:
        return local
    tmp = local.parent / f"{_PARTIAL}{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        copy_files(ckpt.path, str(tmp), source_filesystem=ckpt.fs, destination_filesystem=LocalFileSystem())
        if not (tmp / RUN_INFO_FILE).is_file():
            raise ValueError(f"{ckpt}: the checkpoint changed while it was downloaded; try again")
        if local.exists():
            shutil.rmtree(local)
        tmp.rename(local)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return local


def storage_of_checkpoint(target: str | Storage) -> Storage:
    """The storage root a stored checkpoint's run lives in (``<root>/<run>/checkpoints/<ckpt>``)."""
    ckpt = find_checkpoint(open_storage(target, "--resume"))
    root = posixpath.dirname(posixpath.dirname(posixpath.dirname(ckpt.path)))
    return Storage(ckpt.fs, root, ckpt.prefix, ckpt.query)


def mirror_for(s) -> RunMirror | None:
    """The :class:`RunMirror` of a run's settings ``s`` (:class:`~tune_configs.settings.TrainSettings`):
    to ``<s.storage>/<name>``, or, resuming from a storage URI without ``storage``, back to the
    storage root the checkpoint came from; None without either. ``ValueError`` when a new run
    would write into a storage folder that already holds a run (nothing stored is overwritten)."""
    storage = getattr(s, "storage", None)
    if storage is not None:
        root = open_storage(storage)
    elif isinstance(s.resume, Storage) or is_uri(s.resume):
        root = storage_of_checkpoint(s.resume)
    else:
        return None
    mirror = RunMirror(s.run_dir, root.child(s.run_name))
    if s.resume is None and mirror.holds_run():
        raise ValueError(f"--storage {root}: {mirror.target} already holds a run; continue it with "
                         f"--resume {mirror.target} or choose another --name")
    return mirror
