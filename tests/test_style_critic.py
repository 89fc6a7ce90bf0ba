"""Style statistics, the feature critic, the ``stats`` policy trunk and the episode update."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exposure_env import filters as F
from exposure_env.state import NUM_FIXED, STEP, make_state
from exposure_env.style_features import feature_dim, style_features
from policies.exposure_algo.episode_update import _unused_mixture_log_probs, episode_losses
from policies.exposure_algo.update_parts import UpdateSettings, frozen_copy
from policies.rl_module import PolicyNet, ValueNet, resolve_model_config
from rewards.critic_trainer import LocalDiscriminator
from rewards.discriminator import Discriminator, critic_loss
from exposure_env.datasets.pack import ImagePack


# --- style features -----------------------------------------------------------------------
def test_style_features_values_of_a_known_image():
    # left half black, right half white (pool 1: 8x8 samples): quantiles split at the median
    x = torch.zeros(1, 8, 8, 3)
    x[:, :, 4:] = 1.0
    f = style_features(x, quantiles=4, pool=1)
    assert f.shape == (1, feature_dim(4)) == (1, 31)
    red_q, lum_q, sat_q = f[0, 0:4], f[0, 12:16], f[0, 16:20]
    assert red_q.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert torch.allclose(lum_q, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert sat_q.abs().max() < 1e-6  # grey: no saturation
    log_lum = f[0, 20:24] * 8
    assert log_lum[0] == pytest.approx(-14.0) and log_lum[-1] == pytest.approx(0.0, abs=1e-6)
    means = f[0, 24:27]
    assert torch.allclose(means, torch.full((3,), 0.5))


def test_style_features_see_a_cast_and_exposure():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0.05, 0.6, (2, 64, 64, 3)).astype(np.float32))
    base = style_features(x)
    blue = style_features(x * torch.tensor([0.8, 1.0, 1.25]))
    assert float((blue[:, -1] - base[:, -1]).min()) == pytest.approx(math.log(1.25), abs=0.02)  # log(B/G) mean
    brighter = style_features(x * 2.0)
    lum_log = slice(5 * 16, 6 * 16)
    assert torch.allclose(brighter[:, lum_log] - base[:, lum_log], torch.full_like(base[:, lum_log], 1 / 8), atol=1e-4)


def test_style_features_are_differentiable():
    x = torch.rand(3, 64, 64, 3, requires_grad=True)
    style_features(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


# --- the feature critic ---------------------------------------------------------------------
def test_feature_critic_learns_brightness_and_is_cheap_to_train():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    dark = rng.uniform(0.0, 0.2, (256, 80, 80, 3)).astype(np.float32)
    bright = rng.uniform(0.4, 0.9, (256, 80, 80, 3)).astype(np.float32)
    d = LocalDiscriminator(ImagePack(bright), {"kind": "features", "batch_size": 32, "pool_size": 256, "lr": 1e-3})
    d.add_fake(dark[:, :64, :64])
    for _ in range(60):
        m = d.update()
    assert float(m["wasserstein"]) > 0.5
    scores_dark = d.score(dark[:32, :64, :64])
    scores_bright = d.score(bright[:32, :64, :64])
    assert scores_bright.mean() > scores_dark.mean() + 0.5
    # its gradient tells a dark image to get brighter
    x = torch.from_numpy(dark[:4, :64, :64]).requires_grad_(True)
    d.model(x).sum().backward()
    assert float(x.grad.sum()) > 0


def test_feature_critic_gradient_penalty_is_on_the_statistics():
    D = Discriminator({"kind": "features"})
    real, fake = torch.rand(8, 64, 64, 3), torch.rand(8, 64, 64, 3) * 0.1
    loss, m = critic_loss(D, real, fake, gp_weight=10.0)
    loss.backward()
    assert all(p.grad is not None for p in D.parameters())
    assert set(m) >= {"wasserstein", "gp", "grad_norm"}
    assert D.embed(real).shape == (8, feature_dim())


def test_discriminator_kind_is_validated():
    with pytest.raises(ValueError, match="kind"):
        Discriminator({"kind": "transformer"})


# --- the stats policy trunk -------------------------------------------------------------------
def test_stats_preset_policy_shapes_and_size():
    cfg = resolve_model_config({"preset": "stats"})
    assert cfg["encoder"] == "stats"
    flist = F.resolve(None)
    net = PolicyNet(NUM_FIXED + len(flist), 64, tuple(f.num_params for f in flist), 24, cfg)
    logits, means, _ = net(torch.rand(4, 64, 64, 3), torch.zeros(4, NUM_FIXED + len(flist)))
    assert logits.shape == (4, 8) and means.shape == (4, 8, 24)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    with pytest.raises(ValueError, match="encoder"):
        resolve_model_config({"encoder": "vit"})


# --- the episode update -----------------------------------------------------------------------
def _nets(seed=0):
    torch.manual_seed(seed)
    flist = F.resolve(None)
    cfg = resolve_model_config({"preset": "stats"})
    sd = NUM_FIXED + len(flist)
    return flist, PolicyNet(sd, 64, tuple(f.num_params for f in flist), 24, cfg), ValueNet(sd, 64, cfg)


def test_unused_mixture_never_picks_a_used_filter():
    logits = torch.zeros(2, 4)
    used = torch.tensor([[True, False, True, False], [False, False, False, False]])
    p = _unused_mixture_log_probs(logits, used, 0.05).exp()
    assert torch.allclose(p.sum(-1), torch.ones(2))
    assert p[0, 0] == 0 and p[0, 2] == 0 and p[0, 1] == pytest.approx(0.5)
    logits.requires_grad_(True)
    _unused_mixture_log_probs(logits, used, 0.05).sum().backward()
    assert torch.isfinite(logits.grad).all()  # no NaN from the masked entries


def test_episode_update_plays_every_state_to_the_end_without_reuse():
    flist, pi, vf = _nets()
    critic = frozen_copy(Discriminator({"kind": "features"}))
    rng = np.random.default_rng(1)
    steps = np.array([0, 1, 2, 3, 4, 0])
    used = np.zeros((6, 8), bool)
    for i, s in enumerate(steps):
        used[i, rng.choice(8, s, replace=False)] = True
    state = torch.from_numpy(make_state(steps, used))
    image = torch.from_numpy(rng.uniform(0.05, 0.8, (6, 64, 64, 3)).astype(np.float32))
    out = episode_losses(lambda i, s: pi(i, s)[:2], vf, lambda x, r: critic(x), flist, image, state, progress=0.0)
    assert out.next_state[:, STEP].tolist() == [5.0] * 6
    # each filter at most once per episode: 5 distinct flags set
    assert out.next_state[:, NUM_FIXED:].sum(-1).tolist() == [5.0] * 6
    assert out.done.all() and not out.reused.any()
    # the return of the first step is the telescoped critic gain minus penalties
    gain = 0.05 * out.score_gain
    assert torch.all(out.reward <= gain + 1e-6)
    out.total.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in pi.param_heads.parameters())
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in vf.parameters())


def test_episode_update_moves_exposure_towards_what_the_critic_prefers():
    """A critic that scores mean luminance: a few updates must raise the exposure the policy picks."""
    flist, pi, vf = _nets(2)
    only_e = [f for f in flist if f.short_name == "E"]
    pi_e = PolicyNet(NUM_FIXED + 1, 64, (1,), 1, resolve_model_config({"preset": "stats"}))

    def score(x, refs=None):
        lum = 0.27 * x[..., 0] + 0.67 * x[..., 1] + 0.06 * x[..., 2]
        return -((lum.mean((1, 2)) - 0.4) ** 2) * 100

    rng = np.random.default_rng(3)
    image = torch.from_numpy(rng.uniform(0.02, 0.1, (32, 64, 64, 3)).astype(np.float32))
    state = torch.from_numpy(make_state(np.zeros(32, int), np.zeros((32, 1), bool)))
    opt = torch.optim.Adam(pi_e.parameters(), 3e-3)
    settings = UpdateSettings(max_steps=1, reward_scale=1.0)
    first = None
    for _ in range(40):
        out = episode_losses(lambda i, s: pi_e(i, s)[:2], vf_for(pi_e), score, only_e, image, state, progress=0.0, settings=settings)
        first = float(out.actions[:, 0].mean()) if first is None else first
        opt.zero_grad()
        out.actor.backward()
        opt.step()
    assert float(out.actions[:, 0].mean()) > first + 0.1
    assert float(out.score_gain.mean()) > 0


def vf_for(pi_net):
    return ValueNet(pi_net.param_encoder.stats.net[0].in_features - feature_dim(), 64, resolve_model_config({"preset": "stats"}))
