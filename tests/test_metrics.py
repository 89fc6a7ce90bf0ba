"""rewards.metrics and exposure_env.image_statistics against hand computations."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from exposure_env import image_statistics
from rewards import metrics


def _const(colour, n=1, h=96, w=128):
    return np.broadcast_to(np.asarray(colour, np.float32), (n, h, w, 3)).copy()


def test_hls_saturation_matches_colorsys(rng):
    px = rng.random((200, 3))
    px[:5] = [[0, 0, 0], [1, 1, 1], [0.3, 0.3, 0.3], [1, 0, 0], [0.9, 0.95, 1.0]]
    expected = np.array([colorsys.rgb_to_hls(*p)[2] for p in px])
    np.testing.assert_allclose(image_statistics.hls_saturation(px), expected, atol=1e-12)


def test_crop_statistics_hand_values():
    # constant (0.2, 0.4, 0.6): L = 0.054 + 0.268 + 0.036 = 0.358, no contrast, S = 0.4 / 0.8
    s = image_statistics.crop_statistics(_const([0.2, 0.4, 0.6]))
    np.testing.assert_allclose(s, [[0.358, 0.0, 0.5]], atol=1e-9)
    # black/white checkerboard: mean 0.5, std 0.5 -> contrast 1.0, greys -> saturation 0
    board = np.indices((8, 8)).sum(axis=0) % 2
    img = np.repeat(board[None, :, :, None], 3, axis=-1).astype(np.float32)
    np.testing.assert_allclose(image_statistics.crop_statistics(img), [[0.5, 1.0, 0.0]], atol=1e-9)
    # values are clipped to [0, 1] first
    np.testing.assert_allclose(image_statistics.crop_statistics(_const([3.0, 3.0, 3.0]))[0], [1.0, 0.0, 0.0], atol=1e-9)


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


# --------------------------------------------------------------------------- colour metrics
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
_D65 = np.array([0.95047, 1.0, 1.08883])


def _lab_reference(rgb):
    """CIELAB of sRGB-encoded values written out by hand (exact EOTF, D65): the stated convention."""
    c = np.asarray(rgb, np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = lin @ _SRGB_TO_XYZ.T / _D65
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def test_display_to_lab_is_the_stated_srgb_d65_convention(rng):
    px = rng.random((50, 3))
    np.testing.assert_allclose(metrics.display_to_lab(px), _lab_reference(px), atol=1e-2)
    # values outside [0, 1] are clipped like every written photo
    np.testing.assert_allclose(metrics.display_to_lab([[1.5, -0.2, 0.5]]), _lab_reference([[1.0, 0.0, 0.5]]), atol=1e-2)


# Sharma, Wu & Dalal (2005) CIEDE2000 test pairs that lie inside the sRGB gamut: (Lab1, Lab2, dE00).
_SHARMA = [
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (50.0, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
]


@pytest.mark.parametrize("lab1, lab2, expected", _SHARMA)
def test_delta_e2000_published_pairs(lab1, lab2, expected):
    from skimage.color import lab2rgb

    a = np.broadcast_to(lab2rgb(np.array(lab1)[None, None]), (4, 5, 3))
    b = np.broadcast_to(lab2rgb(np.array(lab2)[None, None]), (4, 5, 3))
    assert metrics.delta_e2000(a, b) == pytest.approx(expected, abs=1e-3)
    # CIE76 of the same pair is the Euclidean Lab distance
    assert metrics.delta_e76(a, b) == pytest.approx(np.linalg.norm(np.subtract(lab1, lab2)), abs=1e-3)


def test_identical_images_have_no_colour_difference_or_cast(rng):
    img = rng.random((2, 20, 30, 3))
    assert metrics.delta_e2000(img, img) == 0.0 and metrics.delta_e76(img, img) == 0.0
    cast = metrics.colour_cast(img, img.copy())
    assert cast["a_bias"] == 0.0 and cast["b_bias"] == 0.0
    assert cast["neutral_chroma_shift"] == 0.0 or np.isnan(cast["neutral_chroma_shift"])


def test_blue_cast_gives_negative_b_bias_of_the_computed_size():
    grey = np.full((10, 12, 3), 0.5)
    blue = grey.copy()
    blue[..., 2] = 0.6  # the same grey with more blue: a pure blue cast
    expected_b = _lab_reference([0.5, 0.5, 0.6])[2] - _lab_reference([0.5, 0.5, 0.5])[2]
    expected_a = _lab_reference([0.5, 0.5, 0.6])[1] - _lab_reference([0.5, 0.5, 0.5])[1]
    assert expected_b < -8.0  # about -10.3 Delta E units
    cast = metrics.colour_cast(blue, grey)
    assert cast["b_bias"] == pytest.approx(expected_b, abs=0.01)
    assert cast["a_bias"] == pytest.approx(expected_a, abs=0.01)
    # every truth pixel is neutral (C* = 0, L* = 53.4): the shift is the chroma of the cast
    assert cast["neutral_share"] == 1.0
    assert cast["neutral_chroma_shift"] == pytest.approx(np.hypot(expected_a, expected_b), abs=0.01)
    # the opposite direction: a yellow cast is positive b*
    assert metrics.colour_cast(grey, blue)["b_bias"] > 8.0


def test_neutral_pixels_only_count_for_the_chroma_shift():
    truth = np.zeros((2, 10, 3))
    truth[0] = 0.5  # neutral grey row
    truth[1] = [0.8, 0.2, 0.2]  # saturated red row (C* ~ 60): not neutral
    out = truth.copy()
    out[1] = [0.9, 0.1, 0.1]  # change only the red row
    cast = metrics.colour_cast(out, truth)
    assert cast["neutral_share"] == pytest.approx(0.5)
    assert cast["neutral_chroma_shift"] == pytest.approx(0.0, abs=1e-9)
    assert cast["a_bias"] > 0  # redder on average
    # no neutral pixel at all (black and white are excluded): NaN, not 0
    assert np.isnan(metrics.colour_cast(np.zeros((4, 4, 3)), np.ones((4, 4, 3)))["neutral_chroma_shift"])


def test_paired_scores_equal_the_single_metrics(rng):
    outs = [rng.random((12, 16, 3)), rng.random((8, 8, 3))]
    truths = [np.clip(o + rng.normal(0, 0.05, o.shape), 0, 1) for o in outs]
    got = metrics.paired_scores(outs, truths)
    assert tuple(got) == metrics.PAIRED_KEYS
    assert got["psnr"] == pytest.approx(np.mean([metrics.psnr(o, t) for o, t in zip(outs, truths)]))
    assert got["delta_e76"] == pytest.approx(np.mean([metrics.delta_e76(o, t) for o, t in zip(outs, truths)]))
    assert got["delta_e2000"] == pytest.approx(np.mean([metrics.delta_e2000(o, t) for o, t in zip(outs, truths)]))
    cast = [metrics.colour_cast(o, t) for o, t in zip(outs, truths)]
    assert got["b_bias"] == pytest.approx(np.mean([c["b_bias"] for c in cast]))
    with pytest.raises(ValueError, match="paired_scores"):
        metrics.paired_scores(outs, truths[:1])
