"""The ``.exposure`` policy file: a traced policy plus metadata, loadable without Ray.

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
* ``policy.onnx`` -- optional (``onnx=True``), the deterministic graph, dynamic batch.
* ``metadata.json`` -- see :func:`build_metadata`: filters with parameter ranges, thumbnail
  size, state size, input colour space, max steps, per-filter parameter log-stds (for sampling),
  dropout, model config, training info and package versions.

:func:`load_policy` needs torch and this project only (no Ray) and reads a file in well under
a second. Anything wrong with a file or a checkpoint raises :class:`PolicyFileError` (a
``ValueError``) with one line naming the path and the problem.
"""

from __future__ import annotations

import copy
import io
import json
import threading
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
#: Where an RLlib algorithm checkpoint keeps the policy module, and the other layouts accepted.
MODULE_SUBDIRS = ("learner_group/learner/rl_module/default_policy", "rl_module/default_policy", "default_policy", ".")
#: Run info ``exposure train`` writes into each checkpoint (``tune_configs.training.RUN_FILE``).
RUN_INFO_FILE = "exposure_run.json"


class PolicyFileError(ValueError):
    """A policy file or checkpoint that cannot be used (message: one line, names the path)."""


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line; for multi-line (TorchScript) errors the last ``...Error:`` line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and ln.strip() not in (")", "(")]
    errors = [ln for ln in lines if "Error:" in ln]
    if errors:
        return errors[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------
class PolicyForward(nn.Module):
    """``(image, state) -> (logits (N, F), actions (N, F, P) clamped to [-1, 1])``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, image: torch.Tensor, state: torch.Tensor):
        logits, means, _ = self.module.policy_heads(image, state)
        return logits, means.clamp(-1.0, 1.0)


def load_module(checkpoint: str | Path) -> nn.Module:
    """The policy RLModule from an algorithm checkpoint, an RLModule checkpoint or its parent.

    Uses ``RLModule.from_checkpoint`` (no Ray cluster is started). Raises
    :class:`PolicyFileError` for a missing, foreign or unreadable checkpoint.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise PolicyFileError(f"{path}: checkpoint not found")
    if not path.is_dir():
        raise PolicyFileError(f"{path}: not a checkpoint folder (expected an RLlib algorithm or RLModule checkpoint)")
    for sub in MODULE_SUBDIRS:
        cand = path / sub
        if (cand / "class_and_ctor_args.pkl").is_file():
            break
    else:
        raise PolicyFileError(f"{path}: no RLModule found (looked for class_and_ctor_args.pkl in {', '.join(MODULE_SUBDIRS)})")
    try:
        from ray.rllib.core.rl_module.rl_module import RLModule

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = RLModule.from_checkpoint(cand.resolve())
    except Exception as exc:  # pickled class missing, truncated state, version mismatch ...
        raise PolicyFileError(f"{cand}: cannot load the RLModule ({_one_line(exc)})") from exc
    return module


def _policy_net(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` without its non-inference parts (value net, target copy)."""
    if not isinstance(module, nn.Module) or not callable(getattr(module, "policy_heads", None)):
        raise PolicyFileError(
            f"{type(module).__name__}: incompatible module (needs an ExposureRLModule-like torch module with policy_heads)"
        )
    net = copy.deepcopy(module)
    for name in getattr(module, "get_non_inference_attributes", lambda: [])():
        owner, _, attr = name.rpartition(".")
        target = net.get_submodule(owner) if owner else net
        if hasattr(target, attr):
            delattr(target, attr)
    return net.eval()


def _module_config(module: nn.Module) -> dict:
    cfg = getattr(module, "resolved_config", None) or dict(getattr(module, "model_config", None) or {})
    return json.loads(json.dumps(cfg, default=lambda o: list(o) if isinstance(o, (tuple, set)) else str(o)))


def _dropout_rate(module: nn.Module) -> float:
    return max((m.p for m in module.modules() if isinstance(m, nn.Dropout)), default=0.0)


def _versions() -> dict:
    out = {}
    for dist in ("exposure-rl", "torch", "ray", "numpy", "gymnasium"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = None
    return out


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


def build_metadata(module: nn.Module, extra: dict | None = None) -> dict:
    """The ``metadata.json`` of a module: everything a loader needs besides the weights.

    ``extra`` keys ``input_space``, ``max_steps`` and ``thumb_size`` override the defaults;
    every other key goes under ``training`` (e.g. ``data``, ``iterations``, ``metrics``).
    """
    extra = dict(extra or {})
    cfg = _module_config(module)
    names = cfg.get("filters") or [f.short_name for f in filter_registry.DEFAULT_FILTERS]
    try:
        flist = filter_registry.resolve(names)
    except KeyError as exc:
        raise PolicyFileError(f"module config: {exc.args[0]}") from None
    act = getattr(module, "action_space", None)
    width = int(act["params"].shape[0]) if act is not None else filter_registry.max_params(flist)
    obs = getattr(module, "observation_space", None)
    thumb = int(extra.pop("thumb_size", None) or cfg.get("thumb_size") or (obs["image"].shape[0] if obs is not None else 64))
    log_std = None
    pi = getattr(module, "pi", None)
    if pi is not None and isinstance(getattr(pi, "log_std", None), torch.Tensor):
        log_std = pi.log_std.detach().cpu().double().numpy().round(6).tolist()
    rate = _dropout_rate(module)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "filters": filter_metadata(flist),
        "action_width": width,
        "thumb_size": thumb,
        "state_dim": state_width(len(flist)),
        "input_space": extra.pop("input_space", "linear"),
        "max_steps": int(extra.pop("max_steps", MAX_STEPS)),
        "outputs": {
            "logits": "(N, F) filter logits",
            "actions": "(N, F, P) per-filter mean parameters, action units, clamped to [-1, 1]",
        },
        "param_log_std": log_std,
        "dropout": {"rate": rate, "stochastic_trace": rate > 0},
        "module_class": f"{type(module).__module__}.{type(module).__qualname__}",
        "model_config": cfg,
        "training": extra,
        "versions": _versions(),
    }


def _trace(net: nn.Module, thumb: int, state_dim: int, *, train: bool) -> torch.jit.ScriptModule:
    """Trace at batch 2; the deterministic trace is checked against eager code at batch 3
    (same outputs, dynamic batch). ``train=True`` keeps dropout active."""
    fwd = PolicyForward(net).train(train)
    example = (torch.rand(2, thumb, thumb, 3), torch.zeros(2, state_dim))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(fwd, example, check_trace=False)
        if not train:
            probe = (torch.rand(3, thumb, thumb, 3), torch.rand(3, state_dim))
            for a, b in zip(fwd(*probe), traced(*probe)):
                if a.shape != b.shape or not torch.allclose(a, b, atol=1e-5, rtol=1e-5):
                    raise PolicyFileError(f"{type(net).__name__}: the traced policy disagrees with the module")
    net.eval()
    return traced


def _script_bytes(traced) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def _onnx_bytes(net: nn.Module, thumb: int, state_dim: int) -> bytes:
    buf = io.BytesIO()
    example = (torch.rand(2, thumb, thumb, 3), torch.zeros(2, state_dim))
    axes = {k: {0: "batch"} for k in ("image", "state", "logits", "actions")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PolicyForward(net).eval(), example, buf, input_names=["image", "state"],
            output_names=["logits", "actions"], dynamic_axes=axes, dynamo=False,
        )
    return buf.getvalue()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"{path}: expected a JSON object")
    return data


def _training_info(checkpoint: Path) -> dict:
    """Training metadata found beside a checkpoint written by ``exposure train``.

    ``<ckpt>/exposure_run.json`` (:data:`RUN_INFO_FILE`: iteration, elapsed time, algorithm,
    recipe, data, seed) and, when the run's ``summary.json`` (two folders up) names this
    checkpoint, its final validation and baseline scores as ``metrics``.
    """
    info: dict[str, Any] = {}
    run_file = checkpoint / RUN_INFO_FILE
    if run_file.is_file():
        run = _read_json(run_file)
        if "iteration" in run:
            info["iterations"] = run.pop("iteration")
        info.update(run)
    summary_file = checkpoint.resolve().parent.parent / "summary.json"
    if summary_file.is_file():
        summary = _read_json(summary_file)
        named = summary.get("checkpoint")
        if named and Path(named).resolve() == checkpoint.resolve():
            info["metrics"] = {"validation": summary.get("final_scores"), "baselines": summary.get("baseline_scores")}
    return info


def export_policy(checkpoint_path_or_module, out_path, *, onnx: bool = False, metadata: dict | None = None) -> Path:
    """Write one self-contained ``.exposure`` file (see module docstring); returns its path.

    ``checkpoint_path_or_module``: an RLlib algorithm checkpoint folder, an RLModule checkpoint
    folder or an in-memory ``ExposureRLModule``. ``metadata`` adds training info (and may set
    ``input_space`` / ``max_steps``); the run info that ``exposure train`` writes into a checkpoint
    (``exposure_run.json``, and the run's ``summary.json`` scores) is read too.
    The file is written atomically (temp file + rename).
    """
    extra: dict[str, Any] = {}
    if isinstance(checkpoint_path_or_module, (str, Path)):
        ckpt = Path(checkpoint_path_or_module)
        module = load_module(ckpt)
        extra.update(_training_info(ckpt))
        extra.setdefault("checkpoint", str(ckpt.resolve()))
    else:
        module = checkpoint_path_or_module
    extra.update(metadata or {})
    net = _policy_net(module)
    meta = build_metadata(module, extra)
    thumb, sdim = meta["thumb_size"], meta["state_dim"]
    try:
        files = {POLICY_FILE: _script_bytes(_trace(net, thumb, sdim, train=False))}
        if meta["dropout"]["stochastic_trace"]:
            files[DROPOUT_FILE] = _script_bytes(_trace(net, thumb, sdim, train=True))
        if onnx:
            files[ONNX_FILE] = _onnx_bytes(net, thumb, sdim)
    except PolicyFileError:
        raise
    except Exception as exc:
        raise PolicyFileError(f"{type(module).__name__}: cannot trace the policy ({_one_line(exc)})") from exc
    meta["files"] = sorted(files)

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA_FILE, json.dumps(meta, indent=2))
        for name, data in files.items():
            zf.writestr(name, data)
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------
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
    filters: list = field(init=False)

    def __post_init__(self):
        self.filters = filter_registry.resolve([f["short_name"] for f in self.metadata["filters"]])

    @property
    def thumb_size(self) -> int:
        return int(self.metadata["thumb_size"])

    @property
    def state_dim(self) -> int:
        return int(self.metadata["state_dim"])

    @property
    def max_steps(self) -> int:
        return int(self.metadata["max_steps"])

    @property
    def input_space(self) -> str:
        return str(self.metadata["input_space"])

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
        raise PolicyFileError(f"{path}: not an .exposure policy file ({_one_line(exc)})") from None


def _check_metadata(path: Path, zf: zipfile.ZipFile) -> dict:
    try:
        meta = json.loads(zf.read(METADATA_FILE))
    except KeyError:
        raise PolicyFileError(f"{path}: not an .exposure policy file (no {METADATA_FILE})") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise PolicyFileError(f"{path}: corrupt {METADATA_FILE} ({_one_line(exc)})") from None
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
        raise PolicyFileError(f"{path}: corrupt {name} ({_one_line(exc)})") from None


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
            raise PolicyFileError(f"{path}: corrupt .exposure file ({_one_line(exc)})") from None
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
        raise PolicyFileError(f"{path}: corrupt {ONNX_FILE} ({_one_line(exc)})") from None


def _smoke_test(policy: ExportedPolicy, path: Path) -> None:
    n_f = len(policy.filters)
    width = int(policy.metadata.get("action_width", filter_registry.max_params(policy.filters)))
    s = policy.thumb_size
    try:
        logits, actions = policy(np.full((1, s, s, 3), 0.25, np.float32), np.zeros((1, policy.state_dim), np.float32))
    except Exception as exc:
        raise PolicyFileError(f"{path}: the policy network fails on a test input ({_one_line(exc)})") from None
    if logits.shape != (1, n_f) or actions.shape != (1, n_f, width):
        raise PolicyFileError(
            f"{path}: network outputs {logits.shape} and {actions.shape}, metadata promises (1, {n_f}) and (1, {n_f}, {width})"
        )
