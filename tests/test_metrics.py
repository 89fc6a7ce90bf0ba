"""rewards.metrics against hand computations."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from rewards import metrics


def _const(colour, n=1, h=96, w=128):
    return np.broadcast_to(np.asarray(colour, np.float32), (n, h, w, 3)).copy()


def test_hls_saturation_matches_colorsys(rng):
    px = rng.random((200, 3))
    px[:5] = [[0, 0, 0], [1, 1, 1], [0.3, 0.3, 0.3], [1, 0, 0], [0.9, 0.95, 1.0]]
    expected = np.array([colorsys.rgb_to_hls(*p)[2] for p in px])
    np.testing.assert_allclose(metrics.hls_saturation(px), expected, atol=1e-12)


def test_crop_statistics_hand_values():
    # constant (0.2, 0.4, 0.6): L = 0.054 + 0.268 + 0.036 = 0.358, no contrast, S = 0.4 / 0.8
    s = metrics.crop_statistics(_const([0.2, 0.4, 0.6]))
    np.testing.assert_allclose(s, [[0.358, 0.0, 0.5]], atol=1e-9)
    # black/white checkerboard: mean 0.5, std 0.5 -> contrast 1.0, greys -> saturation 0
    board = np.indices((8, 8)).sum(axis=0) % 2
    img = np.repeat(board[None, :, :, None], 3, axis=-1).astype(np.float32)
    np.testing.assert_allclose(metrics.crop_statistics(img), [[0.5, 1.0, 0.0]], atol=1e-9)
    # values are clipped to [0, 1] first
    np.testing.assert_allclose(metrics.crop_statistics(_const([3.0, 3.0, 3.0]))[0], [1.0, 0.0, 0.0], atol=1e-9)


def test_evaluation_crops_shape_and_content(rng):
    photos = [_const([0.1, 0.5, 0.9], h=300, w=200)[0], _const([0.7, 0.2, 0.3], h=70, w=90)[0]]
    crops = metrics.evaluation_crops(photos, rng)
    assert crops.shape == (2 * 16, 64, 64, 3) and crops.dtype == np.float32
    np.testing.assert_allclose(crops[:16], _const([0.1, 0.5, 0.9], n=16, h=64, w=64), atol=1e-6)
    np.testing.assert_allclose(crops[16:], _const([0.7, 0.2, 0.3], n=16, h=64, w=64), atol=1e-6)
    # a horizontal ramp keeps its range and its order inside every crop
    ramp = np.broadcast_to(np.linspace(0, 1, 400, dtype=np.float32)[None, :, None], (300, 400, 3))
    c = metrics.evaluation_crops([ramp], np.random.default_rng(0))
    assert c.min() >= 0.0 and c.max() <= 1.0
    assert np.all(np.diff(c[..., 0], axis=2) >= -1e-6)


def test_identical_sets_score_100(rng):
    imgs = rng.random((3, 100, 120, 3)).astype(np.float32) ** 2
    hi = metrics.histogram_intersection(imgs, imgs.copy(), seed=7)
    assert hi == {"luminance": 100.0, "contrast": 100.0, "saturation": 100.0, "average": 100.0}


def test_disjoint_and_partial_overlap():
    black, white = _const([0, 0, 0], n=2), _const([1, 1, 1], n=3)
    hi = metrics.histogram_intersection(black, white)
    # luminance 0 vs 1: disjoint; contrast and saturation are 0 in both sets
    assert hi["luminance"] == 0.0 and hi["contrast"] == 100.0 and hi["saturation"] == 100.0
    assert hi["average"] == pytest.approx(200.0 / 3.0)
    # half of the output photos match the target luminance bin
    out = np.concatenate([_const([0.1] * 3), _const([0.9] * 3)])
    assert metrics.histogram_intersection(out, _const([0.1] * 3, n=4))["luminance"] == pytest.approx(50.0)


def test_intersection_from_statistics_bins():
    # 0.01 and 0.02 share bin 0 of 32; 0.5 is in bin 16: 2 of 4 crops agree -> 50 %
    a = np.array([[0.01, 0, 0], [0.02, 0, 0], [0.5, 0, 0], [0.5, 0, 0]])
    b = np.array([[0.02, 0, 0], [0.03, 0, 0]])
    r = metrics.intersection_from_statistics(a, b)
    assert r["luminance"] == pytest.approx(50.0)


def test_psnr_hand_values(rng):
    a = np.zeros((8, 8, 3))
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0)
    assert metrics.psnr(a, a + 0.01) == pytest.approx(40.0)
    assert metrics.psnr(a, a) == np.inf
    # batches average per-image PSNR; values above 1 are clipped (so 2.0 vs 1.0 is identical)
    batch_a = np.stack([a, a])
    batch_b = np.stack([a + 0.1, a + 0.01])
    assert metrics.psnr(batch_a, batch_b) == pytest.approx(30.0)
    with pytest.raises(ValueError, match="psnr"):
        metrics.psnr(a, np.zeros((4, 4, 3)))


def test_delta_e76_hand_values():
    black, white = np.zeros((4, 4, 3)), np.ones((4, 4, 3))
    assert metrics.delta_e76(black, white) == pytest.approx(100.0, abs=0.01)
    assert metrics.delta_e76(white, white) == 0.0
    # sRGB mid grey 0.5 has L* = 53.39 (the value is sRGB-encoded, not linear)
    grey = np.full((4, 4, 3), 0.5)
    assert metrics.delta_e76(black, grey) == pytest.approx(53.39, abs=0.01)
