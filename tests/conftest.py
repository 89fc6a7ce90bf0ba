"""Shared fixtures: a single small Ray instance per test session, RNGs, tmp folders."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests share 2 cores with Ray workers: one intra-op thread avoids oversubscription stalls."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """Ray on 2 CPUs, no dashboard, local temp dir; shut down at the end of the session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=1 << 30,
            logging_level=logging.ERROR,
            log_to_driver=False,
            _temp_dir=str(tmp_path_factory.mktemp("ray")),
        )
    yield ray
    ray.shutdown()


def _has_gpu() -> bool:
    from exposure_env.backend import cupy_or_none

    return cupy_or_none() is not None


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU / CuPy on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
