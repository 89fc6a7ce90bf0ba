"""The discriminator as a named Ray actor, and the Scorer over it."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest

from exposure_env.datasets.pack import ImagePack
from exposure_env.scorers import Scorer
from rewards.discriminator import Discriminator, load_weights

#: A small critic so CPU tests stay fast (same code as the paper-sized one).
TINY = dict(channels=(8, 8, 8), out_channels=16, hidden=16, batch_size=4, pool_size=256, seed=5)


@pytest.fixture(scope="module")
def pack_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    pack = ImagePack(rng.uniform(0.3, 0.9, (6, 80, 80, 3)).astype(np.float32))
    return str(pack.save(tmp_path_factory.mktemp("pack") / "targets.npz"))


@pytest.fixture
def make_actor(ray_session, pack_path):
    """Factory for uniquely named actors, killed for good after the test."""
    from rewards.actor import get_or_create_discriminator, kill_discriminator

    names = []

    def make(name, **kw):
        names.append(name)
        kw.setdefault("config", TINY)
        return get_or_create_discriminator(name, pack_path, **kw)

    yield make
    for n in names:
        kill_discriminator(n)


@pytest.fixture(scope="module")
def shared(ray_session, pack_path):
    """One actor for the tests that only read deltas of its counters (an actor start costs seconds)."""
    from rewards.actor import get_or_create_discriminator, kill_discriminator

    yield get_or_create_discriminator("d_shared", pack_path, TINY)
    kill_discriminator("d_shared")


def _images(rng, n):
    return rng.random((n, 64, 64, 3), dtype=np.float32)


def test_score_shape_and_named_lookup(ray_session, shared, pack_path, rng):
    from rewards.actor import get_or_create_discriminator

    h = shared
    pool = ray_session.get(h.metrics.remote())["pool_size"]
    out = ray_session.get(h.score.remote(_images(rng, 37)))
    assert out.shape == (37,) and out.dtype == np.float32 and np.isfinite(out).all()
    # The same name gives the same actor (its state is shared), no target pack needed.
    again = get_or_create_discriminator("d_shared")
    ray_session.get(again.add_fake.remote(_images(rng, 5)))
    assert ray_session.get(h.metrics.remote())["pool_size"] == pool + 5
    info = ray_session.get(h.ready.remote())
    assert info["device"] == "cpu" and info["restored_from"] is None and info["pid"] != os.getpid()
    with pytest.raises(ValueError, match="does not exist and no target_pack"):
        get_or_create_discriminator("d_missing")
    with pytest.raises(ValueError, match="unknown setting"):
        get_or_create_discriminator("d_bad", pack_path, config={"nope": 1})
    with pytest.raises(ValueError, match="nonexistent.npz: target image pack not found"):
        get_or_create_discriminator("d_bad", "/nonexistent.npz")


def test_n_critic_schedule_counts_updates(ray_session, shared, rng):
    h = shared
    ray_session.get(h.add_fake.remote(_images(rng, 16)))
    before = ray_session.get(h.metrics.remote())
    counts = [ray_session.get(h.train.remote(it, 20_000))["updates"] for it in (0, 10, 500)]
    assert counts == [100, 5, 100]
    m = ray_session.get(h.metrics.remote())
    assert m["total_updates"] - before["total_updates"] == 205
    assert m["train_calls"] - before["train_calls"] == 3
    assert m["lr"] == pytest.approx(5e-5 * 0.1 ** (3 * 500 / 20_000))


def test_weights_give_a_frozen_local_copy(ray_session, shared, rng):
    h = shared
    ray_session.get(h.add_fake.remote(_images(rng, 8)))
    ray_session.get(h.train.remote(20, 100))
    local = load_weights(Discriminator(TINY), ray_session.get(h.get_weights.remote()))
    x = _images(rng, 6)
    import torch

    with torch.no_grad():
        np.testing.assert_allclose(local(torch.from_numpy(x)).numpy(), ray_session.get(h.score.remote(x)),
                                   rtol=1e-5, atol=1e-6)


def test_scorer_is_picklable_and_makes_one_call_per_batch(ray_session, shared, rng):
    from rewards.scorer import DiscriminatorScorer

    h = shared
    scorer = pickle.loads(pickle.dumps(DiscriminatorScorer("d_shared")))
    assert isinstance(scorer, Scorer) and scorer._handle is None  # resolved lazily, by name
    x = _images(rng, 24)
    before = ray_session.get(h.metrics.remote())
    s = scorer.score(x)
    after = ray_session.get(h.metrics.remote())
    assert s.shape == (24,) and s.dtype == np.float32
    np.testing.assert_allclose(s, ray_session.get(h.score.remote(x)), rtol=1e-6)
    assert after["score_calls"] - before["score_calls"] == 1  # one remote call for the batch
    assert after["images_scored"] - before["images_scored"] == 24
    assert after["fakes_added"] - before["fakes_added"] == 24  # and the batch went to the pool
    assert after["pool_size"] == min(TINY["pool_size"], before["pool_size"] + 24)
    # Pickling after use drops the live handle again.
    assert pickle.loads(pickle.dumps(scorer))._handle is None
    no_feed = DiscriminatorScorer("d_shared", feed_fakes=False)
    no_feed.score(x[:4])
    assert ray_session.get(h.metrics.remote())["fakes_added"] == after["fakes_added"]
    with pytest.raises(ValueError, match="'d_nobody' not found"):
        DiscriminatorScorer("d_nobody").score(x[:1])


@pytest.mark.slow
def test_scorer_works_inside_another_worker(ray_session, shared, rng):
    from rewards.scorer import DiscriminatorScorer

    h = shared
    before = ray_session.get(h.metrics.remote())["fakes_added"]

    @ray_session.remote(num_cpus=0)
    def use(scorer, images):
        return scorer.score(images)

    x = _images(rng, 8)
    s = ray_session.get(use.remote(DiscriminatorScorer("d_shared"), x))
    np.testing.assert_allclose(s, ray_session.get(h.score.remote(x)), rtol=1e-6)
    assert ray_session.get(h.metrics.remote())["fakes_added"] == before + 8


@pytest.mark.slow
def test_killed_actor_restarts_from_its_last_checkpoint(ray_session, make_actor, rng, tmp_path):
    h = make_actor("d_restart", config=dict(TINY, checkpoint_every=1), state_dir=tmp_path)
    ray_session.get(h.add_fake.remote(_images(rng, 16)))
    m = ray_session.get(h.train.remote(11, 100))
    weights = ray_session.get(h.get_weights.remote())
    first = ray_session.get(h.ready.remote())
    ray_session.kill(h, no_restart=False)  # the process dies; Ray re-runs __init__

    deadline = time.monotonic() + 120  # kill is asynchronous: wait for the new process
    while True:
        info = ray_session.get(h.ready.remote())  # retried across the restart (max_task_retries)
        if info["pid"] != first["pid"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert info["pid"] != first["pid"], "actor was not restarted"
    assert info["restored_from"] == str(tmp_path / "discriminator.pt")
    assert info["total_updates"] == m["total_updates"] == 5
    restored = ray_session.get(h.get_weights.remote())
    assert restored.keys() == weights.keys()
    for k in weights:
        np.testing.assert_array_equal(restored[k], weights[k])
    # It keeps working: the pool refills from the env and training continues.
    ray_session.get(h.add_fake.remote(_images(rng, 4)))
    assert ray_session.get(h.train.remote(12, 100))["total_updates"] == 10


@pytest.mark.gpu
def test_gpu_actor_scores_and_trains(ray_session, make_actor, rng):
    h = make_actor("d_gpu", config=None, num_gpus=1)
    assert ray_session.get(h.ready.remote())["device"].startswith("cuda")
    ray_session.get(h.add_fake.remote(_images(rng, 64)))
    m = ray_session.get(h.train.remote(11, 100))
    assert m["updates"] == 5 and np.isfinite(m["loss"])
    assert ray_session.get(h.score.remote(_images(rng, 64))).shape == (64,)
