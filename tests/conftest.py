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


def gpu_skip_reason(keywords, cuda: bool, cupy: bool) -> str | None:
    """Why a test with these markers cannot run here (None: it can).

    ``gpu`` needs a CUDA GPU that torch sees; ``cupy`` needs CuPy on a GPU as well. A torch-CUDA
    test is therefore not skipped on a CUDA machine without CuPy.
    """
    if ("gpu" in keywords or "cupy" in keywords) and not cuda:
        return "no CUDA GPU on this machine"
    if "cupy" in keywords and not cupy:
        return "CuPy is not installed (pip install '.[gpu]')"
    return None


def pytest_collection_modifyitems(config, items):
    from exposure_env.backend import cupy_or_none
    from exposure_env.system import usable_gpus

    cuda = usable_gpus() > 0
    cupy = cuda and cupy_or_none() is not None
    for item in items:
        reason = gpu_skip_reason(item.keywords, cuda, cupy)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
