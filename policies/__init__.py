"""Policies: RLlib RLModules and learners, the ``.exposure`` file (export, load), the retoucher.

``policies.Retoucher(path).retouch(image) -> (image, edits)`` and ``policies.load_policy(path)``
are the Python API for applying an exported policy (imported lazily: ``import policies`` stays
light until one of them is used).
"""

from __future__ import annotations

_LAZY = {"Retoucher": "policies.retoucher", "load_policy": "policies.policy_file", "export_policy": "policies.export"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
