"""Docstring examples run: every filter module has some, and every module with ``>>>`` passes."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import exposure_env.filters

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exposure_env", "rewards", "policies", "tune_configs")
#: Modules whose examples need CuPy and a CUDA GPU.
GPU_MODULES = {"exposure_env.filters.cupy_fused"}

FILTER_MODULES = ["exposure_env.filters"] + [
    f"exposure_env.filters.{m.name}" for m in pkgutil.iter_modules(exposure_env.filters.__path__)
]


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _param(name: str):
    return pytest.param(name, marks=[pytest.mark.gpu, pytest.mark.cupy], id=name) if name in GPU_MODULES else pytest.param(name, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in sorted(set(FILTER_MODULES) | set(_modules_with_examples()))])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (run python -m doctest -v)"
    assert result.attempted > 0, f"{name}: no runnable examples in its docstrings"
