"""The fused CPU pass: generated from the filters' pixel formulas, equal to the NumPy reference,
vectorisable math, one-pass quantisation, the thumbnail kernel, and the NumPy fallback."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exposure_env import codegen, filters, fused_cpu, resample
from exposure_env import edits as E
from exposure_env.edits import Edit, apply_edits

pytestmark = pytest.mark.skipif(not fused_cpu.available(), reason="numba not importable: the fused pass is off")

TOL = 1e-5  # |fused - reference| <= TOL * max(1, |reference|)


def _edit(f, action) -> Edit:
    a = np.asarray(action, np.float32).reshape(1, -1)[:, : f.num_params]
    return Edit(f.short_name, tuple(np.asarray(f.params_from_action(a))[0]))


def _close(got, ref):
    err = np.abs(got.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))
    assert err.max() <= TOL, f"max relative error {err.max():.3g}"


def test_kernel_source_is_traced_from_every_pixel_formula():
    src = codegen.kernel_source()
    for code, f in enumerate(filters.ALL_FILTERS):
        assert f"op == {code}:  # {f.short_name}: {f.name}" in src
    # the traced lines compute what pixel() computes, run here as plain NumPy scalars
    rng = np.random.default_rng(0)
    scope = {"_f32": np.float32, "_exp": np.exp, "_log": np.log, "_tanh": np.tanh, "_cos": np.cos,
             "_pow": np.power, "_floor": np.floor}
    for f in filters.ALL_FILTERS:
        uniform, pixel, outs = codegen.trace_filter(f)
        params = np.asarray(f.params_from_action(rng.uniform(-1, 1, (1, f.num_params)).astype(np.float32)))[0]
        img = rng.uniform(0, 1.3, (5, 3)).astype(np.float32)
        want = f.pixel(*(img[:, c] for c in range(3)), [np.float32(p) for p in params])
        for i in range(len(img)):
            env = dict(scope, r=img[i, 0], g=img[i, 1], b=img[i, 2], **{f"q{j}": np.float32(p) for j, p in enumerate(params)})
            for line in uniform + pixel:
                exec(line, env)
            got = [env[name] for name in outs]
            np.testing.assert_allclose(got, [w[i] for w in want], rtol=1e-5, atol=1e-6, err_msg=f.short_name)


def test_codegen_refuses_branching_on_pixels():
    class Branchy(filters.Filter):
        short_name, name, num_params = "X", "Branchy", 1

        def pixel(self, r, g, b, p):
            return (r if r > 0.5 else g), g, b

    with pytest.raises(TypeError, match="ops.where"):
        codegen.trace_filter(Branchy())


@pytest.mark.parametrize("f", filters.ALL_FILTERS, ids=lambda f: f.short_name)
def test_every_filter_matches_the_reference(f, rng):
    img = rng.uniform(0.0, 1.5, (70, 90, 3)).astype(np.float32)
    img[0, :3] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]  # black, white, grey
    for action in (rng.uniform(-1, 1, 24), np.ones(24), -np.ones(24), np.zeros(24)):
        edit = _edit(f, action)
        ref = E._apply_sequential(img[None], [edit])[0]
        _close(apply_edits(img, [edit], fused=True), ref)


_filter_index = st.integers(0, len(filters.ALL_FILTERS) - 1)
_action = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=24, max_size=24)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(_filter_index, _action), min_size=0, max_size=6),
       seed=st.integers(0, 2**31 - 1), shape=st.tuples(st.integers(1, 40), st.integers(1, 40)))
def test_random_edit_lists_match_the_reference(steps, seed, shape):
    img = np.random.default_rng(seed).uniform(0.0, 1.5, shape + (3,)).astype(np.float32)
    edits = [_edit(filters.ALL_FILTERS[i], a) for i, a in steps]
    ref = E._apply_sequential(img[None], edits)[0] if edits else img
    _close(apply_edits(img, edits, fused=True), ref)


def test_bands_batches_and_threads_agree(rng):
    img = rng.uniform(0, 1.2, (2, 300, 700, 3)).astype(np.float32)  # > 2 bands per photo
    edits = [Edit.parse("E:+0.5"), Edit.parse("G:0.6"), Edit("S+", (0.4,)), Edit("Ct", (0.3,)), Edit("T", tuple(np.linspace(0.6, 1.9, 8)))]
    many = fused_cpu.apply_fused(img, edits)
    one = fused_cpu.apply_fused(img, edits, workers=1)
    np.testing.assert_array_equal(many, one)
    np.testing.assert_array_equal(many[1], apply_edits(img[1], edits))
    _close(many, E._apply_sequential(img, edits))
    out = np.empty_like(img)
    assert fused_cpu.apply_fused(img, edits, out=out) is out


def test_quantised_output_is_the_write_formula(rng):
    img = rng.uniform(-0.2, 1.3, (50, 40, 3)).astype(np.float32)
    img[0, 0] = [0.5 / 65535, 1.5 / 65535, 0.5]  # ties round half to even
    edits = [Edit.parse("W:1.1,1.0,0.9"), Edit("BW", (0.2,))]
    flt = fused_cpu.apply_fused(img, edits)
    for bits, dtype in ((16, np.uint16), (8, np.uint8)):
        want = np.round(np.clip(flt, 0.0, 1.0) * float(np.iinfo(dtype).max)).astype(dtype)
        got = fused_cpu.apply_fused(img, edits, out_dtype=dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(fused_cpu.quantize(flt, bits), want)
    bad = img.copy()
    bad[3, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        fused_cpu.quantize(bad, 16)


def test_vecmath_against_float64():
    from numba import njit

    from exposure_env import vecmath as vm

    @njit
    def run(x, y, out):
        for i in range(x.shape[0]):
            out[0, i] = vm.exp(x[i])
            out[1, i] = vm.log(y[i])
            out[2, i] = vm.pow(y[i], x[i])
            out[3, i] = vm.cos(x[i])
            out[4, i] = vm.tanh(x[i])
            out[5, i] = vm.floor(x[i])

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-20, 20, 4000), rng.uniform(-1e-3, 1e-3, 100), [0.0, 3.0, -2.0]]).astype(np.float32)
    y = np.concatenate([rng.uniform(1e-6, 50, 4000), rng.uniform(0.0, 1e-30, 100), [0.0, -2.0, -2.0]]).astype(np.float32)
    out = np.empty((6, x.size), np.float32)
    with np.errstate(all="ignore"):
        run(x, y, out)
        xd, yd = x.astype(np.float64), y.astype(np.float64)
        want = [np.exp(xd), np.log(yd), np.power(yd, xd), np.cos(xd), np.tanh(xd), np.floor(xd)]
        want32 = [w.astype(np.float32) for w in want]
    for name, got, ref, ref32 in zip(["exp", "log", "pow", "cos", "tanh", "floor"], out, want, want32):
        same_special = (np.isnan(got) == np.isnan(ref32)).all() and (got[np.isinf(ref32)] == ref32[np.isinf(ref32)]).all()
        assert same_special, name
        fin = np.isfinite(ref32) & (np.abs(ref32) > 1e-30)
        rel = np.abs(got[fin] - ref[fin]) / np.abs(ref[fin])
        if name == "pow":  # float32 arithmetic: ~2**-24 (|y log x| + 4), the module's contract
            t = np.abs(xd[fin] * np.log(np.where(yd[fin] != 0, np.abs(yd[fin]), 1.0)))
            bound = 2.0**-24 * (1.5 * t + 4 * np.abs(xd[fin]) + 8)
            assert (rel <= bound).all(), (name, (rel / bound).max())
            gamma = (np.abs(xd[fin]) < 3.5) & (yd[fin] > 0.05) & (yd[fin] < 2)  # Gamma's exponents on photo values
            assert rel[gamma].max() < 6e-7, (name, rel[gamma].max())  # a few ulp
        else:
            assert rel.max() < 3e-7, (name, rel.max())  # within ~2 float32 ulp


def test_vecmath_pow_special_cases_are_numpys():
    from numba import njit

    from exposure_env import vecmath as vm

    @njit
    def run(x, y, out):
        for i in range(x.shape[0]):
            out[i] = vm.pow(x[i], y[i])

    inf, nan = np.inf, np.nan
    cases = [(0, 2), (0, 0), (0, -1), (-0.0, 0.5), (1, nan), (1, inf), (-1, inf), (-1, 3), (2, inf), (2, -inf),
             (0.5, inf), (0.5, -inf), (inf, 0.5), (inf, -2), (-inf, 3), (-inf, 2), (nan, 0), (nan, 2), (1, -inf),
             (-2, 0.5), (-2, 1e30), (-8, 1 / 3), (-2, 3), (-2, -2), (1e-40, 0.5), (1e-45, 2), (3e38, 2), (0.25, 0.5)]
    x, y = (np.array(c, np.float32) for c in zip(*cases))
    out = np.empty_like(x)
    run(x, y, out)
    with np.errstate(all="ignore"):
        want = np.power(x, y)
    np.testing.assert_allclose(out, want, rtol=2e-6, equal_nan=True)


def test_thumbnail_kernel_matches_numpy(rng):
    for h, w in ((300, 451), (97, 64), (64, 200)):
        img = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
        ref = resample.resize_area(img, 64, 64, resample.centre_square(h, w))
        np.testing.assert_allclose(resample.thumbnail(img), ref, atol=1e-6)


def test_numpy_fallback_when_numba_is_missing(monkeypatch, caplog, rng):
    img = rng.uniform(0, 1.2, (400, 500, 3)).astype(np.float32)
    edits = [Edit.parse("E:+0.7"), Edit.parse("G:0.45"), Edit("C", tuple(np.linspace(0.9, 1.1, 24)))]
    fused = apply_edits(img, edits)
    thumb = resample.thumbnail(img)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    fused_cpu.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="exposure_env.fused_cpu"):
            assert not fused_cpu.available() and fused_cpu.engine() == "numpy-tiled"
        assert "numba not importable" in caplog.text
        got = apply_edits(img, edits)  # automatic: the NumPy tiled path
        np.testing.assert_array_equal(got, apply_edits(img, edits, fused=False))
        _close(fused, got)
        with pytest.raises(RuntimeError, match="not available"):
            apply_edits(img, edits, fused=True)
        np.testing.assert_array_equal(fused_cpu.quantize(got, 16), np.round(np.clip(got, 0, 1) * 65535.0).astype(np.uint16))
        np.testing.assert_allclose(resample.thumbnail(img), thumb, atol=1e-6)
    finally:
        monkeypatch.undo()
        fused_cpu.reset()
    assert fused_cpu.available()


def test_switch_off_by_environment(monkeypatch):
    monkeypatch.setenv("EXPOSURE_FUSED", "0")
    fused_cpu.reset()
    try:
        assert fused_cpu.engine() == "numpy-tiled"
    finally:
        monkeypatch.undo()
        fused_cpu.reset()
    assert fused_cpu.engine() == "numba-fused"


def test_write_image_takes_quantised_samples(tmp_path, rng):
    from exposure_env import io as image_io

    img = rng.uniform(-0.1, 1.1, (40, 50, 3)).astype(np.float32)
    for name, bits, dtype in (("a.tif", 16, np.uint16), ("a.jpg", 8, np.uint8), ("a.png", 8, np.uint8)):
        image_io.write_image(tmp_path / f"f_{name}", img, bits=bits)
        image_io.write_image(tmp_path / f"s_{name}", fused_cpu.quantize(img, 8 if dtype is np.uint8 else 16), bits=bits)
        assert (tmp_path / f"f_{name}").read_bytes() == (tmp_path / f"s_{name}").read_bytes(), name
    with pytest.raises(ValueError, match="cannot be written with 16 bits"):
        image_io.write_image(tmp_path / "x.tif", fused_cpu.quantize(img, 8), bits=16)
    with pytest.raises(ValueError, match="compression"):
        image_io.write_image(tmp_path / "x.jpg", img, compression="lzw")
    image_io.write_image(tmp_path / "z.tif", img, compression="deflate")
    np.testing.assert_array_equal(image_io.read_image(tmp_path / "z.tif", "linear"), image_io.read_image(tmp_path / "f_a.tif", "linear"))
