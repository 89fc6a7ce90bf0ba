"""Every filter on every backend against the independent float64 reference of SPEC §2."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exposure_env import filters as F
from exposure_env.backend import to_numpy
from exposure_env.colour import hsv_to_rgb, rgb_to_hsv

from . import reference_filters as ref

NAMES = [f.short_name for f in F.ALL_FILTERS]
TOL = 1e-5


def _inputs(rng, f, n=3, size=6):
    images = rng.uniform(0.0, 1.5, (n, size, size, 3)).astype(np.float32)
    raw = rng.normal(0.0, 1.5, (n, f.num_params)).astype(np.float32)
    return images, raw


def test_default_order_and_registry():
    assert [f.short_name for f in F.DEFAULT_FILTERS] == ["E", "G", "W", "S+", "T", "Ct", "BW", "C"]
    assert F.get("E").name == "Exposure" and F.get("s+").short_name == "S+" and F.get("Level").short_name == "L"
    assert F.max_params() == 24
    with pytest.raises(KeyError, match="unknown filter"):
        F.get("X")


@pytest.mark.parametrize("name", NAMES)
def test_params_mapping_matches_spec(name, rng):
    f = F.get(name)
    _, raw = _inputs(rng, f, n=16)
    np.testing.assert_allclose(f.params(raw), ref.params_raw(name, raw), atol=TOL, rtol=0)
    got_t = f.params(torch.from_numpy(raw))
    np.testing.assert_allclose(got_t.numpy(), ref.params_raw(name, raw), atol=TOL, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", NAMES)
def test_filter_matches_reference(name, backend, rng):
    f = F.get(name)
    images, raw = _inputs(rng, f)
    params64 = ref.params_raw(name, raw)
    expected = ref.apply(name, images, params64)
    params = params64.astype(np.float32)
    if backend == "torch":
        got = f.apply(torch.from_numpy(images), torch.from_numpy(params)).numpy()
    else:
        got = f.apply(images, params)
    assert got.dtype == np.float32 and got.shape == images.shape
    assert np.abs(got - expected).max() <= TOL * max(1.0, np.abs(expected).max() / 4)


@pytest.mark.gpu
@pytest.mark.cupy
@pytest.mark.parametrize("name", NAMES)
def test_filter_cupy_fused_matches_reference(name, rng):
    cp = pytest.importorskip("cupy")
    f = F.get(name)
    images, raw = _inputs(rng, f)
    params64 = ref.params_raw(name, raw)
    expected = ref.apply(name, images, params64)
    got = f.apply(cp.asarray(images), cp.asarray(params64.astype(np.float32)))
    assert np.abs(to_numpy(got) - expected).max() <= TOL * max(1.0, np.abs(expected).max() / 4)


@pytest.mark.gpu
@pytest.mark.cupy
def test_cupy_params_and_unfused_ops(rng):
    cp = pytest.importorskip("cupy")
    from exposure_env.backend import merge_channels, param_columns, split_channels

    for f in F.ALL_FILTERS:
        images, raw = _inputs(rng, f)
        p = f.params(cp.asarray(raw))
        np.testing.assert_allclose(to_numpy(p), ref.params_raw(f.short_name, raw), atol=TOL)
        r, g, b = split_channels(cp.asarray(images))  # the generic (non-fused) op path
        out = merge_channels(*f.pixel(r, g, b, param_columns(p, f.num_params)))
        np.testing.assert_allclose(to_numpy(out), f.apply(images, to_numpy(p)), atol=TOL)


def test_hsv_round_trip_and_against_colorsys(rng):
    rgb = rng.uniform(0, 1, (500, 3))
    rgb[:5] = [[0.3, 0.3, 0.3], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]  # greys and primaries
    h, s, v = rgb_to_hsv(rgb[:, 0], rgb[:, 1], rgb[:, 2])
    expected = np.array([colorsys.rgb_to_hsv(*px) for px in rgb])
    np.testing.assert_allclose(np.stack([h, s, v], 1), expected, atol=1e-12)
    back = np.stack(hsv_to_rgb(h, s, v), 1)
    np.testing.assert_allclose(back, rgb, atol=1e-12)
    ht, st_, vt = rgb_to_hsv(*torch.from_numpy(rgb.T.copy()))
    np.testing.assert_allclose(np.stack(hsv_to_rgb(ht, st_, vt), 1), rgb, atol=1e-12)


@pytest.mark.parametrize("name", ["E", "C"])
def test_identity_at_raw_zero(name, rng):
    f = F.get(name)
    images = rng.uniform(0, 1, (2, 5, 5, 3)).astype(np.float32)
    out = f.apply(images, f.params(np.zeros((2, f.num_params), np.float32)))
    np.testing.assert_allclose(out, images, atol=1e-6)


@pytest.mark.parametrize("name", [f.short_name for f in F.DEFAULT_FILTERS])
def test_identity_at_action_zero(name, rng):
    """Action 0 is the identity for every default filter on [0.002, 1] images (Gamma's 0.001 floor, WB's 1e-5)."""
    f = F.get(name)
    images = rng.uniform(0.002, 1.0, (2, 5, 5, 3)).astype(np.float32)
    out = f.apply(images, f.params_from_action(np.zeros((2, f.num_params), np.float32)))
    np.testing.assert_allclose(out, images, atol=2e-5)


@pytest.mark.parametrize("name", NAMES)
def test_actions_reach_the_whole_range(name):
    f = F.get(name)
    lo = f.params_from_action(-np.ones((1, f.num_params), np.float32))[0]
    hi = f.params_from_action(np.ones((1, f.num_params), np.float32))[0]
    for i, r in enumerate(f.ranges):
        if name == "W":
            continue  # normalised multipliers: checked below
        if name == "L" and i == 0:  # black point: open interval [0, 1), actions stop at 0.999
            assert (lo[0], hi[0]) == (0.0, pytest.approx(0.999))
            continue
        assert min(lo[i], hi[i]) == pytest.approx(r.low, abs=1e-5) and max(lo[i], hi[i]) == pytest.approx(r.high, abs=1e-5)
    if name == "W":  # every raw WB value the spec allows is reachable: same normalisation, a in [-1, 1]
        a = np.array([[0.0, 1.0, -1.0]], np.float32)
        spec = ref.params_raw("W", np.array([[0.0, 50.0, -50.0]]))
        np.testing.assert_allclose(f.params_from_action(a), spec, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    slopes=arrays(np.float32, 24, elements=st.floats(-3, 3, width=32)),
    xs=arrays(np.float32, 64, elements=st.floats(-0.5, 1.5, width=32)),
)
def test_curves_monotone_and_normalised(slopes, xs):
    xs = np.sort(xs)
    for f, raw in ((F.get("T"), slopes[:8]), (F.get("C"), slopes)):
        p = f.params(raw[None])
        img = np.repeat(xs[None, :, None, None], 3, axis=-1).reshape(1, 8, 8, 3)
        out = f.apply(img, p).reshape(-1, 3)
        assert np.all(np.diff(out, axis=0) >= -1e-6)
        end = f.apply(np.ones((1, 1, 1, 3), np.float32), p)
        np.testing.assert_allclose(end, 1.0, atol=1e-5)
        start = f.apply(np.zeros((1, 1, 1, 3), np.float32), p)
        np.testing.assert_allclose(start, 0.0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(raw=arrays(np.float32, 24, elements=st.floats(-20, 20, width=32)))
def test_params_stay_in_range(raw):
    for f in F.ALL_FILTERS:
        p = f.params(raw[None, : f.num_params])[0]
        for v, r in zip(p, f.ranges):
            assert r.low - 5e-3 <= v <= r.high + 5e-3, (f.short_name, r.name, v)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name, rng):
    f = F.get(name)
    img = torch.tensor(rng.uniform(0.05, 0.95, (2, 3, 3, 3)), dtype=torch.float64, requires_grad=True)
    raw = torch.tensor(rng.normal(0, 0.7, (2, f.num_params)), dtype=torch.float64, requires_grad=True)

    def fn(i, r):
        return f.apply(i, f.params(r))

    assert torch.autograd.gradcheck(fn, (img, raw), eps=1e-6, atol=1e-5)
    out = fn(img, raw).sum()
    gi, gr = torch.autograd.grad(out, (img, raw))
    assert torch.isfinite(gi).all() and torch.isfinite(gr).all()


def test_gradients_finite_at_greys_and_zeros():
    """Grey pixels (HSV hue undefined) and black pixels must not give NaN gradients."""
    img = torch.zeros((1, 2, 2, 3), dtype=torch.float32)
    img[0, 0, 0] = 0.4  # grey
    img.requires_grad_(True)
    for f in F.ALL_FILTERS:
        raw = torch.zeros((1, f.num_params), requires_grad=True)
        out = f.apply(img, f.params(raw)).sum()
        gi, gr = torch.autograd.grad(out, (img, raw), allow_unused=True)
        assert torch.isfinite(gi).all(), f.short_name
        assert gr is None or torch.isfinite(gr).all(), f.short_name


def test_describe_and_units():
    assert F.get("E").describe([1.25]) == "Exposure +1.25 EV"
    assert F.get("G").describe([1 / 0.77]) == "Gamma 1/0.77"
    assert F.get("W").to_dict([1.1, 1.0, 0.9]) == {"multipliers": [1.1, 1.0, 0.9]}
    assert F.get("BW").describe([0.4]) == "Black & white 40%"
    pts = F.get("T").to_dict([1.0] * 8)["curve"]
    assert pts[0] == [0.0, 0.0] and pts[-1] == [1.0, 1.0] and pts[4] == [0.5, 0.5]
    assert set(F.get("C").to_dict([1.0] * 24)) == {"r", "g", "b"}
    with pytest.raises(ValueError, match="expected 1 parameters"):
        F.get("E").describe([1.0, 2.0])


def test_apply_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected images of shape"):
        F.get("E").apply(np.zeros((4, 4, 3), np.float32), np.zeros((1, 1), np.float32))
    with pytest.raises(ValueError, match="expected 3 parameters"):
        F.get("W").apply(np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2), np.float32))
