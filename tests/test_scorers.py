"""Scorers: the protocol, PairedTargetScorer values, StatisticsScorer fit and ordering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exposure_env.datasets import ImagePack
from exposure_env.image_statistics import crop_statistics
from exposure_env.scorers import PairedTargetScorer, Scorer, StatisticsScorer, requires_refs


def test_protocol_and_requires_refs():
    paired = PairedTargetScorer()
    assert isinstance(paired, Scorer) and requires_refs(paired)
    stats = StatisticsScorer(np.full((4, 16, 16, 3), 0.5, np.float32))
    assert isinstance(stats, Scorer) and not requires_refs(stats)


def test_paired_target_scorer_values():
    img = np.full((2, 8, 8, 3), 0.5, np.float32)
    ref = img.copy()
    ref[0] = 0.25
    ref[1, :4] = 0.9  # half the pixels differ by 0.4
    l1 = PairedTargetScorer("l1").score(img, ref)
    l2 = PairedTargetScorer("l2").score(img, ref)
    assert l1.shape == (2,) and l1.dtype == np.float32
    np.testing.assert_allclose(l1, [-0.25, -0.2], rtol=1e-6)
    np.testing.assert_allclose(l2, [-0.25, -np.sqrt(0.5 * 0.16)], rtol=1e-6)
    # compared as written: values above 1 are clipped
    assert PairedTargetScorer().score(np.full((1, 4, 4, 3), 3.0, np.float32), np.ones((1, 4, 4, 3), np.float32))[0] == 0
    # same numbers on torch tensors
    t = PairedTargetScorer("l2").score(torch.from_numpy(img), torch.from_numpy(ref))
    np.testing.assert_allclose(t.numpy(), l2, rtol=1e-6)


def test_paired_target_scorer_errors():
    img = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="paired targets"):
        PairedTargetScorer().score(img)
    with pytest.raises(ValueError, match="differ"):
        PairedTargetScorer().score(img, np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="distance"):
        PairedTargetScorer("cosine")


def test_statistics_scorer_is_a_mahalanobis_distance():
    rng = np.random.default_rng(0)
    # targets: grey-ish images with varying brightness, contrast and colour
    base = rng.uniform(0.2, 0.6, (300, 1, 1, 3)).astype(np.float32)
    noise = rng.normal(0, 1, (300, 16, 16, 3)).astype(np.float32) * rng.uniform(0.02, 0.15, (300, 1, 1, 1)).astype(np.float32)
    targets = np.clip(base + noise, 0, 1)
    scorer = StatisticsScorer(targets, ridge=1e-9)
    stats = crop_statistics(targets)
    np.testing.assert_allclose(scorer.mean, stats.mean(axis=0), rtol=1e-9)
    # on its own fitting set the mean squared Mahalanobis distance is (n - 1) / n * dim
    d2 = scorer.distance(targets) ** 2
    assert d2.mean() == pytest.approx(3 * 299 / 300, rel=1e-4)
    s = scorer.score(targets[:5])
    assert s.shape == (5,) and s.dtype == np.float32 and (s <= 0).all()


def test_statistics_scorer_prefers_target_like_images():
    rng = np.random.default_rng(1)
    bright = np.clip(rng.uniform(0.4, 0.8, (64, 80, 80, 3)), 0, 1).astype(np.float32)
    scorer = StatisticsScorer(ImagePack(bright), num_crops=256, seed=3)
    dark = bright * 0.1
    assert scorer.score(bright[:8, :64, :64]).mean() > scorer.score(dark[:8, :64, :64]).mean() + 5
    # monotone along the way from dark to target brightness
    ramp = np.stack([bright[0, :64, :64] * k for k in (0.1, 0.3, 0.6, 1.0)])
    assert np.all(np.diff(scorer.score(ramp)) > 0)


def test_statistics_scorer_handles_one_flat_target_and_bad_input():
    scorer = StatisticsScorer(np.full((1, 8, 8, 3), 0.5, np.float32))  # ridge keeps it invertible
    s = scorer.score(np.stack([np.full((8, 8, 3), 0.5, np.float32), np.full((8, 8, 3), 0.4, np.float32)]))
    assert s[0] == pytest.approx(0.0, abs=1e-3) and s[1] < -1
    with pytest.raises(ValueError, match="StatisticsScorer"):
        StatisticsScorer(np.zeros((8, 8, 3), np.float32))
