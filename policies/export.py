"""Write a ``.exposure`` policy file from a checkpoint or an in-memory module.

:func:`export_policy` traces the policy (:class:`PolicyForward`), describes it
(:func:`build_metadata`) and writes the archive that :mod:`policies.policy_file` defines and
reads. Reading a checkpoint needs RLlib (``RLModule.from_checkpoint``, imported on use; no Ray
cluster is started); an in-memory module needs torch only. The writer knows nothing of a
training run's folders: run information (iterations, scores) arrives as ``metadata`` from the
caller (``exposure export`` reads it with :func:`tune_configs.run_layout.checkpoint_info`).
Problems raise :class:`~policies.policy_file.PolicyFileError` (one line naming the path).
"""

from __future__ import annotations

import copy
import io
import json
import warnings
import zipfile
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from exposure_env import filters as filter_registry
from exposure_env.atomic import atomic_write
from exposure_env.state import state_dim as state_width

from .policy_file import (
    DROPOUT_FILE,
    FORMAT,
    FORMAT_VERSION,
    MAX_STEPS,
    METADATA_FILE,
    ONNX_FILE,
    POLICY_FILE,
    PolicyFileError,
    filter_metadata,
    one_line,
)

#: Where an RLlib algorithm checkpoint keeps the policy module, and the other layouts accepted.
MODULE_SUBDIRS = ("learner_group/learner/rl_module/default_policy", "rl_module/default_policy", "default_policy", ".")


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
        raise PolicyFileError(f"{cand}: cannot load the RLModule ({one_line(exc)})") from exc
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


def export_policy(checkpoint_path_or_module, out_path, *, onnx: bool = False, metadata: dict | None = None) -> Path:
    """Write one self-contained ``.exposure`` file (see module docstring); returns its path.

    ``checkpoint_path_or_module``: an RLlib algorithm checkpoint folder, an RLModule checkpoint
    folder or an in-memory ``ExposureRLModule``. ``metadata`` adds training info (and may set
    ``input_space`` / ``max_steps``); a checkpoint's own path is recorded as ``checkpoint``
    unless ``metadata`` names one. The file is written atomically
    (:func:`exposure_env.atomic.atomic_write`).
    """
    extra: dict[str, Any] = {}
    if isinstance(checkpoint_path_or_module, (str, Path)):
        ckpt = Path(checkpoint_path_or_module)
        module = load_module(ckpt)
        extra["checkpoint"] = str(ckpt.resolve())
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
        raise PolicyFileError(f"{type(module).__name__}: cannot trace the policy ({one_line(exc)})") from exc
    meta["files"] = sorted(files)

    out = Path(out_path)
    with atomic_write(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(METADATA_FILE, json.dumps(meta, indent=2))
        for name, data in files.items():
            zf.writestr(name, data)
    return out
