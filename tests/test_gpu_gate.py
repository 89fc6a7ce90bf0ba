"""The GPU gate of tests/conftest.py: torch-CUDA tests run on any CUDA machine, CuPy tests need CuPy too."""

from tests.conftest import gpu_skip_reason


def test_torch_cuda_tests_run_without_cupy():
    assert gpu_skip_reason({"gpu"}, cuda=True, cupy=False) is None


def test_cupy_tests_need_cupy():
    assert "CuPy" in gpu_skip_reason({"gpu", "cupy"}, cuda=True, cupy=False)
    assert gpu_skip_reason({"gpu", "cupy"}, cuda=True, cupy=True) is None


def test_everything_gpu_skips_without_cuda():
    assert "no CUDA GPU" in gpu_skip_reason({"gpu"}, cuda=False, cupy=False)
    assert "no CUDA GPU" in gpu_skip_reason({"cupy"}, cuda=False, cupy=False)


def test_cpu_tests_never_skip():
    assert gpu_skip_reason({"slow"}, cuda=False, cupy=False) is None
