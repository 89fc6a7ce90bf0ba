"""What this machine offers: usable CPU cores and visible CUDA GPUs (one definition each)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPU cores this process may run on (the scheduler's affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def usable_gpus() -> int:
    """CUDA GPUs torch can see (0 on a CPU-only machine or a CPU build of torch)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
