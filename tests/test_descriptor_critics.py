"""Style descriptors and the critics built on them (``kind="descriptors"`` and ``"gaussian"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exposure_env.datasets.pack import ImagePack
from exposure_env.style_features import DESCRIPTORS, style_descriptors
from rewards.critic_trainer import LocalDiscriminator
from rewards.discriminator import Discriminator, critic_loss


def test_descriptors_of_a_known_image():
    x = torch.zeros(1, 4, 4, 3)
    x[0, :, :2] = torch.tensor([0.2, 0.4, 0.8])  # half a blue-ish colour, half black
    d = style_descriptors(x)[0]
    lum = 0.27 * 0.2 + 0.67 * 0.4 + 0.06 * 0.8
    assert d.shape == (len(DESCRIPTORS),)
    assert d[0] == pytest.approx(lum / 2, abs=1e-6)
    assert d[1] == pytest.approx(lum / 2, abs=1e-6)  # population std of {0, lum}
    assert d[2] == pytest.approx(math.log((0.1 + 1e-3) / (0.2 + 1e-3)), abs=1e-5)
    assert d[3] == pytest.approx(math.log((0.4 + 1e-3) / (0.2 + 1e-3)), abs=1e-5)
    assert d[4] == pytest.approx(0.5 * (0.8 - 0.2) / (0.8 + 1e-3), abs=1e-6)


def _pack(rng, n=64, mean=0.4, cast=(1.0, 1.0, 1.0)):
    img = rng.uniform(0.5 * mean, 1.5 * mean, (n, 80, 80, 3)).astype(np.float32) * np.float32(cast)
    return ImagePack(np.clip(img, 0, 1).astype(np.float32))


def test_gaussian_critic_prefers_the_targets_statistics_and_has_nothing_to_train():
    rng = np.random.default_rng(0)
    d = LocalDiscriminator(_pack(rng), {"kind": "gaussian"})
    assert d.optimizer is None
    like = _pack(np.random.default_rng(1)).images[:16, :64, :64]
    dark = like * 0.25
    blue = np.clip(like * np.float32([0.8, 1.0, 1.4]), 0, 1)
    s_like, s_dark, s_blue = d.score(like).mean(), d.score(dark).mean(), d.score(blue).mean()
    assert s_like > -3.0 and s_dark < s_like - 5 and s_blue < s_like - 5
    d.add_fake(dark)
    m = d.train(0, 10)
    assert m["updates"] == 0
    # the statistics travel with the weights: a bare copy scores identically
    copy = Discriminator({"kind": "gaussian"})
    copy.load_state_dict({k: torch.as_tensor(v) for k, v in d.get_weights().items()})
    assert np.allclose(copy(torch.from_numpy(like)).detach().numpy(), d.score(like), atol=1e-5)


def test_descriptor_wgan_learns_to_separate_a_cast():
    rng = np.random.default_rng(0)
    d = LocalDiscriminator(_pack(rng), {"kind": "descriptors", "hidden": 32, "lr": 1e-3, "batch_size": 32,
                                         "n_critic": 20, "n_critic_warmup": 20})
    real = _pack(np.random.default_rng(2)).images[:32, :64, :64]
    fake = np.clip(real * np.float32([1.3, 1.0, 0.7]), 0, 1)
    d.add_fake(fake)
    before = d.score(real).mean() - d.score(fake).mean()
    for i in range(5):
        d.train(i, 10)
    after = d.score(real).mean() - d.score(fake).mean()
    assert after > before + 0.5
    loss, metrics = critic_loss(d.model, torch.from_numpy(real), torch.from_numpy(fake))
    assert float(metrics["wasserstein"]) > 0.5
