"""WGAN-GP critic (SPEC §5-6): loss and penalty, statistics planes, training, pool, state, lr schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from exposure_env.datasets.pack import ImagePack
from rewards import schedule
from rewards.critic_trainer import CHECKPOINT_NAME, LocalDiscriminator
from rewards.discriminator import (
    Discriminator,
    DiscriminatorConfig,
    critic_loss,
    image_statistics,
    load_weights,
)
from rewards.fake_pool import FakePool

@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Two OpenMP threads on a shared 2-core machine make tiny convolutions ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: A small critic so CPU tests stay fast (same code path as the paper-sized one).
TINY = dict(channels=(8, 8, 8), out_channels=16, hidden=16, batch_size=4, pool_size=64, seed=3)


def _pack(rng, n=6, lo=0.0, hi=1.0, size=80):
    return ImagePack(rng.uniform(lo, hi, (n, size, size, 3)).astype(np.float32))


def _fakes(rng, n=32, lo=0.0, hi=1.0, size=64):
    return rng.uniform(lo, hi, (n, size, size, 3)).astype(np.float32)


# ---- critic_loss -------------------------------------------------------------------------


class _Linear(nn.Module):
    """``D(x) = <w, x> + b`` per image: its input gradient is ``w`` everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


class _Square(nn.Module):
    """``D(x) = 0.5 * c * ||x||^2``: input gradient ``c x``, so the norm depends on the interpolation."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x):
        return 0.5 * self.c * x.flatten(1).pow(2).sum(1)


@pytest.mark.parametrize("w_norm", [2.5, 0.5])
def test_gradient_penalty_linear_critic_matches_hand_computation(rng, w_norm):
    shape = (2, 2, 3)
    w = torch.from_numpy(rng.normal(size=shape).astype(np.float32))
    w = w * (w_norm / w.norm())
    real = torch.from_numpy(rng.random((5, *shape), dtype=np.float32))
    fake = torch.from_numpy(rng.random((5, *shape), dtype=np.float32))
    D = _Linear(w)
    loss, m = critic_loss(D, real, fake, gp_weight=10.0)

    gp = max(w_norm - 1.0, 0.0) ** 2  # one-sided: zero below norm 1
    wass = float((real * w).sum() / 5 - (fake * w).sum() / 5)
    assert m["gp"].item() == pytest.approx(gp, rel=1e-5, abs=1e-7)
    assert m["grad_norm"].item() == pytest.approx(w_norm, rel=1e-5)
    assert m["wasserstein"].item() == pytest.approx(wass, rel=1e-5, abs=1e-6)
    assert loss.item() == pytest.approx(-wass + 10.0 * gp, rel=1e-5, abs=1e-6)

    # The penalty is part of the graph: d loss / d w = mean(fake) - mean(real) + 10 d gp / d w.
    loss.backward()
    d_gp = 2.0 * max(w_norm - 1.0, 0.0) * w / w_norm
    expect = fake.mean(0) - real.mean(0) + 10.0 * d_gp
    np.testing.assert_allclose(D.w.grad.numpy(), expect.numpy(), rtol=1e-4, atol=1e-6)
    assert D.b.grad.item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_uses_per_image_interpolations(rng):
    real = torch.from_numpy(rng.random((6, 4, 4, 3), dtype=np.float32))
    fake = torch.from_numpy(rng.random((6, 4, 4, 3), dtype=np.float32)) * 0.1
    alpha = torch.from_numpy(rng.random(6, dtype=np.float32))
    c = 0.4
    _, m = critic_loss(_Square(c), real, fake, gp_weight=10.0, alpha=alpha)

    a = alpha.numpy()[:, None, None, None]
    x = a * real.numpy() + (1 - a) * fake.numpy()
    norms = c * np.sqrt((x.reshape(6, -1) ** 2).sum(1))
    assert norms.min() < 1.0 < norms.max()  # both sides of the hinge are exercised
    gp = np.mean(np.maximum(norms - 1.0, 0.0) ** 2)
    assert m["gp"].item() == pytest.approx(gp, rel=1e-5)
    assert m["grad_norm"].item() == pytest.approx(norms.mean(), rel=1e-5)


def test_critic_loss_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="differ"):
        critic_loss(_Square(1.0), torch.zeros(2, 4, 4, 3), torch.zeros(3, 4, 4, 3))


# ---- statistics planes and network --------------------------------------------------------


def test_image_statistics_match_numpy_reference(rng):
    img = rng.uniform(-0.2, 1.4, (4, 16, 16, 3)).astype(np.float32)  # out of [0, 1] on purpose
    img[1] = 0.25  # grey: zero variance, zero saturation
    got = image_statistics(torch.from_numpy(img)).numpy()

    lum = 0.27 * img[..., 0] + 0.67 * img[..., 1] + 0.06 * img[..., 2]  # unclipped
    c = np.clip(img, 0, 1)
    mx, mn = c.max(-1), c.min(-1)
    sat = (mx - mn) / (np.minimum(mx + mn, 2 - mx - mn) + 0.01)
    ref = np.stack([lum.mean((1, 2)), lum.var((1, 2)), sat.mean((1, 2))], 1)
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert got[1, 1] == pytest.approx(0.0, abs=1e-9) and got[1, 2] == pytest.approx(0.0, abs=1e-9)


def test_image_statistics_are_differentiable(rng):
    x = torch.from_numpy(rng.random((2, 8, 8, 3), dtype=np.float32)).requires_grad_(True)
    image_statistics(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_discriminator_shape_and_paper_feature_width(rng):
    D = Discriminator()
    assert D.encoder.feature_dim == 4096  # SPEC §5: 4x4x256 at 64x64
    assert D.encoder.net[0].in_channels == 6  # RGB + 3 statistics planes
    out = D(torch.from_numpy(_fakes(rng, 3)))
    assert out.shape == (3,) and torch.isfinite(out).all()


# ---- config and n_critic schedule -------------------------------------------------------


def test_n_critic_schedule():
    cfg = DiscriminatorConfig()
    counts = {i: cfg.critic_updates(i) for i in (0, 1, 9, 10, 11, 499, 500, 501, 1000)}
    assert counts == {0: 100, 1: 100, 9: 100, 10: 5, 11: 5, 499: 5, 500: 100, 501: 5, 1000: 100}


def test_config_errors_name_the_setting():
    with pytest.raises(ValueError, match="unknown setting.*'bogus'"):
        DiscriminatorConfig.from_any({"bogus": 1})
    with pytest.raises(ValueError, match="batch_size"):
        DiscriminatorConfig(batch_size=0)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="lr_after_schedule"):
            DiscriminatorConfig(lr_after_schedule=bad)
    with pytest.raises(ValueError, match="input_size"):
        DiscriminatorConfig(input_size=48, channels=(8, 8, 8, 8))


# ---- fake pool --------------------------------------------------------------------------


def test_fake_pool_is_a_bounded_fifo(rng):
    pool = FakePool(10)
    batches = [np.full((n, 2, 2, 3), k, np.float32) for k, n in enumerate([4, 4, 4, 25, 3])]
    for b in batches[:3]:
        pool.add(b)
    assert len(pool) == 10
    assert sorted(set(pool.sample(rng, 200)[:, 0, 0, 0])) == [0.0, 1.0, 2.0]
    assert (pool._data[:, 0, 0, 0] == 0).sum() == 2  # the two oldest were overwritten
    pool.add(batches[3])  # more than the capacity at once: keep the newest 10
    pool.add(batches[4])
    assert len(pool) == 10
    values = pool._data[:, 0, 0, 0]
    assert (values == 4).sum() == 3 and (values == 3).sum() == 7
    with pytest.raises(ValueError, match="shape"):
        pool.add(np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        FakePool(4).sample(rng, 1)


def test_local_discriminator_pool_bounded_and_input_checked(rng):
    d = LocalDiscriminator(_pack(rng), TINY, device="cpu")
    for _ in range(5):
        size = d.add_fake(_fakes(rng, 20))
    assert size == len(d.pool) == TINY["pool_size"]
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        d.score(np.zeros((2, 80, 80, 3), np.float32))


# ---- training ---------------------------------------------------------------------------


def test_toy_separation_bright_real_vs_dark_fake():
    """A few hundred CPU updates (32x32 crops to stay quick): target crops bright, generated dark."""
    rng = np.random.default_rng(7)
    cfg = dict(TINY, input_size=32, lr=1e-3, lr_decay=False, n_critic=200, warmup_iterations=0, batch_size=8)
    d = LocalDiscriminator(_pack(rng, 16, 0.55, 0.95, size=40), cfg, device="cpu")
    d.add_fake(_fakes(rng, 64, 0.02, 0.35, size=32))
    real_test, _ = _pack(rng, 8, 0.55, 0.95, size=40).sample(rng, 32, 32)
    fake_test = _fakes(rng, 32, 0.02, 0.35, size=32)
    before = d.score(real_test).mean() - d.score(fake_test).mean()
    m = d.train(1, 1000)
    assert m["updates"] == 200 and d.total_updates == 200
    s_real, s_fake = d.score(real_test), d.score(fake_test)
    assert s_real.min() > s_fake.max(), (before, s_real, s_fake)
    assert s_real.mean() - s_fake.mean() > before + 1.0
    assert m["wasserstein"] > 0 and np.isfinite(m["gp"])


def test_train_sets_decayed_lr_and_skips_without_fakes(rng):
    d = LocalDiscriminator(_pack(rng), dict(TINY, n_critic=2), device="cpu")
    m = d.train(10, 30)
    assert m["updates"] == 0 and d.total_updates == 0  # empty pool: nothing to train on
    d.add_fake(_fakes(rng, 8))
    m = d.train(10, 30)
    assert m["updates"] == 2
    assert m["lr"] == pytest.approx(5e-5 * 0.1 ** (3 * 10 / 30))
    assert d.optimizer.param_groups[0]["lr"] == pytest.approx(m["lr"])


def test_lr_after_schedule_scales_the_rate_once_the_schedule_has_ended(rng):
    """A run longer than its schedules (``Recipe.schedule_iterations``) trains its critic at
    ``lr(T) * lr_after_schedule`` from iteration T on; before T the rate is untouched."""
    const = LocalDiscriminator(None, dict(TINY, lr=5e-4, lr_decay=False, lr_after_schedule=0.1), device="cpu")
    assert [const.lr_at(i, 400) for i in (0, 399)] == [5e-4, 5e-4]
    assert [const.lr_at(i, 400) for i in (400, 2000)] == pytest.approx([5e-5, 5e-5])
    decayed = LocalDiscriminator(None, dict(TINY, lr=5e-4, lr_after_schedule=0.5), device="cpu")
    assert decayed.lr_at(30, 30) == pytest.approx(5e-4 * 1e-3 * 0.5)
    assert LocalDiscriminator(None, dict(TINY, lr=5e-4, lr_decay=False), device="cpu").lr_at(900, 400) == 5e-4  # default: held
    d = LocalDiscriminator(_pack(rng), dict(TINY, n_critic=1, lr_after_schedule=0.1), device="cpu")
    d.add_fake(_fakes(rng, 8))
    assert d.train(30, 30)["lr"] == pytest.approx(5e-5 * 1e-3 * 0.1)
    assert d.optimizer.param_groups[0]["lr"] == pytest.approx(5e-5 * 1e-3 * 0.1)


# ---- state ------------------------------------------------------------------------------


def _assert_same_state(a: LocalDiscriminator, b: LocalDiscriminator):
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i, st in sa["state"].items():
        for k, v in st.items():
            assert torch.equal(v, sb["state"][i][k]), (i, k)


def test_save_restore_round_trip_and_identical_continuation(rng, tmp_path):
    pack = _pack(rng)
    cfg = dict(TINY, n_critic=2, warmup_iterations=0)
    a = LocalDiscriminator(pack, cfg, device="cpu")
    a.add_fake(_fakes(rng, 40))
    for it in range(1, 4):
        a.train(it, 50)
    path = a.save(tmp_path / "d.pt")

    b = LocalDiscriminator(pack, dict(cfg, seed=99), device="cpu")  # different init and RNG
    b.restore(path)
    _assert_same_state(a, b)
    assert (b.train_calls, b.total_updates, b.iteration) == (3, 6, 3)
    assert len(b.pool) == 40
    # Same weights, Adam moments, RNG and pool: the next update is bit-identical.
    a.train(4, 50), b.train(4, 50)
    _assert_same_state(a, b)
    x = _fakes(rng, 4)
    np.testing.assert_array_equal(a.score(x), b.score(x))


def test_state_dir_checkpoint_resumes_on_construction(rng, tmp_path):
    pack = _pack(rng)
    cfg = dict(TINY, n_critic=1, warmup_iterations=0, checkpoint_every=2)
    a = LocalDiscriminator(pack, cfg, state_dir=tmp_path, device="cpu")
    assert a.restored_from is None
    a.add_fake(_fakes(rng, 16))
    a.train(1, 10)
    assert not (tmp_path / CHECKPOINT_NAME).exists()  # every 2nd call
    a.train(2, 10)
    saved = a.get_weights()
    a.train(3, 10)  # not yet checkpointed: lost on restart

    b = LocalDiscriminator(pack, cfg, state_dir=tmp_path, device="cpu")
    assert b.restored_from == str(tmp_path / CHECKPOINT_NAME)
    assert b.train_calls == 2 and len(b.pool) == 0  # pool not in periodic checkpoints by default
    for k, v in b.get_weights().items():
        np.testing.assert_array_equal(v, saved[k])


def test_restore_errors_name_the_file(rng, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    d = LocalDiscriminator(None, TINY, device="cpu")
    with pytest.raises(ValueError, match="garbage.pt: not a discriminator checkpoint"):
        d.restore(bad)
    other = LocalDiscriminator(None, dict(TINY, hidden=32), device="cpu").save(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: discriminator hidden is 32"):
        d.restore(other)


def test_get_weights_gives_a_frozen_copy(rng):
    d = LocalDiscriminator(_pack(rng), TINY, device="cpu")
    copy = load_weights(Discriminator(TINY), d.get_weights())
    x = _fakes(rng, 5)
    with torch.no_grad():
        np.testing.assert_allclose(copy(torch.from_numpy(x)).numpy(), d.score(x), rtol=1e-6, atol=1e-7)


# ---- lr schedule ------------------------------------------------------------------------


def test_lr_schedule():
    base = schedule.DISCRIMINATOR_LR
    T = 20_000
    assert schedule.learning_rate(base, 0, T) == pytest.approx(5e-5)
    assert schedule.learning_rate(base, T / 3, T) == pytest.approx(5e-6)
    assert schedule.learning_rate(base, T, T) == pytest.approx(5e-8)
    assert schedule.learning_rate(base, 2 * T, T) == pytest.approx(5e-8)  # clamped
    lrs = schedule.base_lrs()
    assert lrs == pytest.approx({"discriminator": 5e-5, "policy": 1.5e-5, "value": 1.5e-4})
    assert schedule.lr_lambda(T)(T // 3 * 2) == pytest.approx(0.1 ** (3 * (T // 3 * 2) / T))
    pts = schedule.piecewise_schedule(lrs["policy"], T)
    assert pts[0] == [0, pytest.approx(1.5e-5)] and pts[-1][0] == T
    t = np.arange(0, T + 1, 97)
    approx = np.interp(t, [p[0] for p in pts], [p[1] for p in pts])
    exact = np.array([schedule.learning_rate(lrs["policy"], s, T) for s in t])
    assert np.max(np.abs(approx / exact - 1)) < 0.01
    with pytest.raises(ValueError, match="total_steps"):
        schedule.learning_rate(1.0, 0, 0)
    assert math.isclose(schedule.ADAM_BETAS[0], 0.5) and math.isclose(schedule.ADAM_BETAS[1], 0.9)
