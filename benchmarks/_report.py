"""Shared helpers for benchmark scripts: machine description and ``docs/benchmarks.md`` sections.

Each benchmark owns one ``## Title`` section of ``docs/benchmarks.md`` and replaces only that
section (from its heading to the next ``## `` heading), leaving the others untouched.
"""

from __future__ import annotations

import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

from exposure_env.atomic import atomic_write
from exposure_env.system import usable_cpus

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nMeasured numbers; each section is written by the script named in it.\n"


def cpu_model() -> str:
    """CPU model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    """Name of CUDA device 0 through CuPy or torch, or None."""
    try:
        from exposure_env.backend import cupy_or_none

        cp = cupy_or_none()
        if cp is not None:
            name = cp.cuda.runtime.getDeviceProperties(0)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        pass
    return None


def machine_line() -> str:
    """One line naming the machine: CPU model, usable cores, GPU if any, Python."""
    cores = usable_cpus()
    gpu = gpu_model()
    parts = [f"CPU: {cpu_model()} ({cores} cores usable)", f"GPU: {gpu or 'none'}", f"Python {platform.python_version()}"]
    return "; ".join(parts)


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, sync: Callable[[], None] | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs.

    ``sync`` (e.g. a CUDA stream synchronise) is called after each run, inside the timing.
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table from a header and rows (cells formatted with ``str``)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def replace_section(text: str, title: str, body: str) -> str:
    """``text`` with the ``## title`` section replaced by ``body`` (appended if absent).

    A section runs from its ``## title`` line to the next line starting with ``## `` (or the
    end). Other sections, and anything before the first section, are kept byte for byte.
    """
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _m: section + "\n", text, count=1).rstrip("\n") + "\n"
    if not text.strip():
        text = HEADER
    return text.rstrip("\n") + "\n\n" + section


def write_section(title: str, body: str, path: Path = BENCHMARKS_MD) -> Path:
    """Replace (or add) the ``## title`` section of ``docs/benchmarks.md``; atomic write."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    new = replace_section(old, title, body)
    with atomic_write(path) as tmp:  # creates missing folders
        tmp.write_text(new)
    return path
