"""The ``.exposure`` policy file: its format and its reader (torch + NumPy only, no Ray).

A ``.exposure`` file is a zip archive holding

* ``policy.pt`` -- TorchScript (``torch.jit.trace``, eval mode) of
  ``forward(image (N, S, S, 3) float32 linear RGB, state (N, 3 + F)) -> (logits (N, F),
  actions (N, F, P))``: the filter logits and, for *every* filter, its mean parameters in
  action units clamped to [-1, 1] (filter ``f`` reads ``actions[:, f, :k_f]``; the tail is 0).
  Per-filter means are exported, not only the greedy filter's, because the retoucher masks
  filters already used and may sample the filter: it needs the parameters of whichever filter
  it picks. The batch dimension is dynamic.
* ``policy_dropout.pt`` -- only when the policy has dropout (the paper's one-to-many mapping,
  SPEC §3): the same trace recorded in training mode, so dropout stays active. Its randomness
  comes from torch's global generator (seed it with ``torch.manual_seed``).
* ``policy.onnx`` -- optional, the deterministic graph, dynamic batch.
* ``metadata.json`` -- filters with parameter ranges (:func:`filter_metadata`), thumbnail
  size, state size, input colour space, max steps, per-filter parameter log-stds (for sampling),
  dropout, model config, training info and package versions (written by
  :func:`policies.export.build_metadata`, checked on every load).

:func:`load_policy` reads a file in well under a second; this module imports torch, NumPy and
``exposure_env`` only, so loading a policy never imports Ray (the writer,
:mod:`policies.export`, needs RLlib to read checkpoints). Anything wrong with a file raises
:class:`PolicyFileError` (a ``ValueError``) with one line naming the path and the problem.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exposure_env import filters as filter_registry
from exposure_env.state import state_dim as state_width

FORMAT = "exposure-policy"
FORMAT_VERSION = 1
POLICY_FILE = "policy.pt"
DROPOUT_FILE = "policy_dropout.pt"
ONNX_FILE = "policy.onnx"
METADATA_FILE = "metadata.json"
#: Steps per photo at test time (SPEC §3).
MAX_STEPS = 5


class PolicyFileError(ValueError):
    """A policy file or checkpoint that cannot be used (message: one line, names the path)."""


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line; for multi-line (TorchScript) errors the last ``...Error:`` line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and ln.strip() not in (")", "(")]
    errors = [ln for ln in lines if "Error:" in ln]
    if errors:
        return errors[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def filter_metadata(filter_list) -> list[dict]:
    """JSON description of filters: short/long name, parameter count and ranges."""
    return [
        {
            "short_name": f.short_name,
            "name": f.name,
            "num_params": f.num_params,
            "per_channel": f.per_channel,
            "ranges": [
                {"name": r.name, "low": r.low, "high": r.high, "unit": r.unit, "identity": r.identity} for r in f.ranges
            ],
        }
        for f in filter_list
    ]


_INFERENCE_LOCK = threading.Lock()


@dataclass
class ExportedPolicy:
    """A loaded ``.exposure`` policy (torch + this project only; no Ray).

    Call it with ``(image (N, S, S, 3), state (N, 3 + F))`` (numpy or torch, float32) to get
    ``(logits (N, F), actions (N, F, P))`` as numpy float32. Calls are serialised and run
    with ``threads`` torch threads (1 by default; restored afterwards). ``stochastic=True`` uses the
    dropout trace (falls back to the deterministic one when the policy has no dropout).
    ``backend`` is ``"torchscript"`` or ``"onnx"`` (onnxruntime, deterministic only).
    """

    metadata: dict
    deterministic: Any
    stochastic_net: Any = None
    onnx_session: Any = None
    backend: str = "torchscript"
    source: str = ""
    raw: bytes | None = field(default=None, repr=False)
    #: torch threads for a forward pass: 64x64 thumbnails gain nothing from more, and on a busy
    #: machine extra OpenMP threads cost far more than they give (measured 8 ms vs 450 ms).
    threads: int = 1
    #: From the metadata: the filters, thumbnail size S (pixels), state width 3 + F, steps per
    #: photo and the colour space the policy expects.
    filters: list = field(init=False)
    thumb_size: int = field(init=False)
    state_dim: int = field(init=False)
    max_steps: int = field(init=False)
    input_space: str = field(init=False)

    def __post_init__(self):
        m = self.metadata
        self.filters = filter_registry.resolve([f["short_name"] for f in m["filters"]])
        self.thumb_size, self.state_dim, self.max_steps = (int(m[k]) for k in ("thumb_size", "state_dim", "max_steps"))
        self.input_space = str(m["input_space"])

    @property
    def has_dropout(self) -> bool:
        return self.stochastic_net is not None

    @property
    def param_log_std(self) -> np.ndarray | None:
        v = self.metadata.get("param_log_std")
        return None if v is None else np.asarray(v, np.float32)

    def __call__(self, image, state, *, stochastic: bool = False) -> tuple[np.ndarray, np.ndarray]:
        image = np.ascontiguousarray(image, dtype=np.float32) if not torch.is_tensor(image) else image.float()
        state = np.ascontiguousarray(state, dtype=np.float32) if not torch.is_tensor(state) else state.float()
        s = self.thumb_size
        if tuple(image.shape[1:]) != (s, s, 3) or tuple(state.shape[1:]) != (self.state_dim,) or len(image) != len(state):
            raise ValueError(
                f"policy expects image (N, {s}, {s}, 3) and state (N, {self.state_dim}), "
                f"got {tuple(image.shape)} and {tuple(state.shape)}"
            )
        if self.backend == "onnx" and not stochastic:
            img = image.numpy() if torch.is_tensor(image) else image
            st = state.numpy() if torch.is_tensor(state) else state
            logits, actions = self.onnx_session.run(None, {"image": img, "state": st})
            return np.asarray(logits), np.asarray(actions)
        net = self.stochastic_net if (stochastic and self.stochastic_net is not None) else self.deterministic
        with _INFERENCE_LOCK, torch.no_grad():
            threads = torch.get_num_threads()
            if threads != self.threads:
                torch.set_num_threads(self.threads)
            try:
                logits, actions = net(torch.as_tensor(image), torch.as_tensor(state))
            finally:
                if threads != self.threads:
                    torch.set_num_threads(threads)
        return logits.numpy(), actions.numpy()


def read_metadata(path: str | Path) -> dict:
    """Only the ``metadata.json`` of a ``.exposure`` file (validated)."""
    path = Path(path)
    with _open_zip(path, _read_file(path)) as zf:
        return _check_metadata(path, zf)


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise PolicyFileError(f"{path}: policy file not found")
    if path.is_dir():
        raise PolicyFileError(f"{path}: is a folder; export a checkpoint first with `exposure export`")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _open_zip(path: Path, data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise PolicyFileError(f"{path}: not an .exposure policy file ({one_line(exc)})") from None


def _check_metadata(path: Path, zf: zipfile.ZipFile) -> dict:
    try:
        meta = json.loads(zf.read(METADATA_FILE))
    except KeyError:
        raise PolicyFileError(f"{path}: not an .exposure policy file (no {METADATA_FILE})") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise PolicyFileError(f"{path}: corrupt {METADATA_FILE} ({one_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyFileError(f"{path}: not an .exposure policy file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise PolicyFileError(
            f"{path}: policy format version {meta.get('format_version')} is newer than this exposure-rl supports ({FORMAT_VERSION})"
        )
    missing = [k for k in ("filters", "thumb_size", "state_dim", "max_steps", "input_space") if k not in meta]
    if missing:
        raise PolicyFileError(f"{path}: metadata lacks {', '.join(missing)}")
    try:
        flist = filter_registry.resolve([f["short_name"] for f in meta["filters"]])
    except (KeyError, TypeError) as exc:
        raise PolicyFileError(f"{path}: unknown filter in metadata ({exc.args[0] if exc.args else exc})") from None
    for f, d in zip(flist, meta["filters"]):
        if f.num_params != d.get("num_params"):
            raise PolicyFileError(
                f"{path}: filter {f.short_name} has {f.num_params} parameters here but {d.get('num_params')} in the file"
            )
    if meta["state_dim"] != state_width(len(flist)):
        raise PolicyFileError(f"{path}: state size {meta['state_dim']} does not match {len(flist)} filters")
    return meta


def _load_script(path: Path, zf: zipfile.ZipFile, name: str):
    try:
        data = zf.read(name)
        return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except KeyError:
        raise PolicyFileError(f"{path}: lacks {name}") from None
    except Exception as exc:
        raise PolicyFileError(f"{path}: corrupt {name} ({one_line(exc)})") from None


def load_policy(path: str | Path, *, backend: str = "torchscript") -> ExportedPolicy:
    """Load a ``.exposure`` file; ``backend`` ``"torchscript"`` (default) or ``"onnx"``.

    Checks the format, the filters and that the network answers a dummy input with the
    shapes the metadata promises; raises :class:`PolicyFileError` otherwise.
    """
    path = Path(path)
    return load_policy_bytes(_read_file(path), path, backend=backend)


def load_policy_bytes(data: bytes, source: str | Path = "<bytes>", *, backend: str = "torchscript") -> ExportedPolicy:
    """:func:`load_policy` from the file's bytes (``source`` names it in errors)."""
    path = Path(source)
    if backend not in ("torchscript", "onnx"):
        raise ValueError(f"unknown policy backend {backend!r}; choose torchscript or onnx")
    with _open_zip(path, data) as zf:
        try:
            names = zf.namelist()
            meta = _check_metadata(path, zf)
            det = _load_script(path, zf, POLICY_FILE)
            stoch = _load_script(path, zf, DROPOUT_FILE) if DROPOUT_FILE in names else None
            session = None
            if backend == "onnx":
                session = _onnx_session(path, zf, names)
        except zipfile.BadZipFile as exc:
            raise PolicyFileError(f"{path}: corrupt .exposure file ({one_line(exc)})") from None
    policy = ExportedPolicy(meta, det, stoch, session, backend, str(source), data)
    _smoke_test(policy, path)
    return policy


def _onnx_session(path: Path, zf: zipfile.ZipFile, names: list[str]):
    if ONNX_FILE not in names:
        raise PolicyFileError(f"{path}: has no ONNX graph; re-export with --onnx")
    try:
        import onnxruntime as ort
    except ImportError:
        raise PolicyFileError(f"{path}: the onnx backend needs onnxruntime (pip install exposure-rl[onnx])") from None
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # see ExportedPolicy.threads
        return ort.InferenceSession(zf.read(ONNX_FILE), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise PolicyFileError(f"{path}: corrupt {ONNX_FILE} ({one_line(exc)})") from None


def _smoke_test(policy: ExportedPolicy, path: Path) -> None:
    n_f = len(policy.filters)
    width = int(policy.metadata.get("action_width", filter_registry.max_params(policy.filters)))
    s = policy.thumb_size
    try:
        logits, actions = policy(np.full((1, s, s, 3), 0.25, np.float32), np.zeros((1, policy.state_dim), np.float32))
    except Exception as exc:
        raise PolicyFileError(f"{path}: the policy network fails on a test input ({one_line(exc)})") from None
    if logits.shape != (1, n_f) or actions.shape != (1, n_f, width):
        raise PolicyFileError(
            f"{path}: network outputs {logits.shape} and {actions.shape}, metadata promises (1, {n_f}) and (1, {n_f}, {width})"
        )
