"""ExposureVectorEnv: gymnasium VectorEnv contract, equivalence with single envs, one scorer call per step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import DictInfoToList

import exposure_env  # noqa: F401  (registers Exposure-v0)
from exposure_env import filters
from exposure_env.datasets import ImagePack
from exposure_env.env import ExposureEnv
from exposure_env.scorers import PairedTargetScorer, StatisticsScorer
from exposure_env.vector_env import ExposureVectorEnv, benchmark_env


class CountingScorer:
    """Wraps a real scorer and counts calls and scored images."""

    def __init__(self, scorer):
        self.scorer, self.calls, self.images = scorer, 0, 0
        self.requires_refs = getattr(scorer, "requires_refs", False)

    def score(self, images, refs=None):
        self.calls += 1
        self.images += len(images)
        return self.scorer.score(images, refs)


@pytest.fixture(scope="module")
def pack():
    rng = np.random.default_rng(1)
    low = rng.random((10, 5, 5, 3)).astype(np.float32)
    img = 0.02 + 0.7 * np.kron(low, np.ones((1, 16, 16, 1), np.float32))
    return ImagePack(img, paired=np.clip(img**0.6, 0, 1))


@pytest.fixture(scope="module")
def stat(pack):
    return StatisticsScorer(ImagePack(pack.paired), num_crops=256)


def random_actions(space, steps, seed):
    space.seed(seed)
    return [space.sample() for _ in range(steps)]


def test_vector_spaces_and_metadata(pack, stat):
    env = ExposureVectorEnv(4, source=pack, scorer=stat)
    assert env.num_envs == 4
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.single_observation_space["image"].shape == (64, 64, 3)
    assert env.observation_space["image"].shape == (4, 64, 64, 3)
    assert env.observation_space["state"].shape == (4, 11)
    assert env.single_action_space["params"].shape == (24,)
    assert env.action_space["params"].shape == (4, 24)
    assert env.action_space["filter"].nvec.tolist() == [8] * 4
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["score"].shape == (4,)
    obs, reward, term, trunc, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert reward.shape == (4,) and reward.dtype == np.float32 and term.dtype == bool and not trunc.any()


def test_make_vec_uses_the_vector_entry_point(pack, stat):
    env = gym.make_vec("Exposure-v0", num_envs=8, vectorization_mode="vector_entry_point", source=pack, scorer=stat)
    assert isinstance(env.unwrapped, ExposureVectorEnv) and env.num_envs == 8
    obs, _ = env.reset(seed=1)
    assert obs["image"].shape == (8, 64, 64, 3)
    env.step(env.action_space.sample())
    # RLlib wraps vector envs in DictInfoToList: per-env info dicts, edits only where applied
    # ... and names the env "module:id" so that each env runner imports the registering package
    wrapped = DictInfoToList(
        gym.make_vec("exposure_env:Exposure-v0", num_envs=3, vectorization_mode=gym.VectorizeMode("vector_entry_point"), source=pack, scorer=stat)
    )
    wrapped.reset(seed=0)
    _, _, _, _, infos = wrapped.step(wrapped.action_space.sample())
    assert len(infos) == 3 and all(i["filter"] in {f.short_name for f in filters.DEFAULT_FILTERS} for i in infos)
    assert all(i["params"].shape == (24,) and "penalty_reuse" in i for i in infos)


def test_vector_env_equals_single_envs(pack, stat):
    n, seed, steps = 4, 7, 13  # 13 steps: two full episodes and their autoreset steps
    vec = ExposureVectorEnv(n, source=pack, scorer=stat)
    singles = [ExposureEnv(source=pack, scorer=stat) for _ in range(n)]
    vobs, _ = vec.reset(seed=seed)
    sobs = [e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(vobs["image"], np.stack([o["image"] for o in sobs]))
    done = np.zeros(n, bool)
    for actions in random_actions(vec.action_space, steps, seed):
        vobs, vrew, vterm, _, _ = vec.step(actions)
        for i, env in enumerate(singles):
            if done[i]:  # next-step autoreset: the vector env restarted env i, reward 0
                obs, _ = env.reset()
                rew, term = 0.0, False
            else:
                obs, rew, term, _, _ = env.step({"filter": actions["filter"][i], "params": actions["params"][i]})
            np.testing.assert_allclose(vobs["image"][i], obs["image"], rtol=1e-6, atol=1e-7)
            np.testing.assert_array_equal(vobs["state"][i], obs["state"])
            assert vrew[i] == pytest.approx(rew, rel=1e-5, abs=1e-6)
            assert vterm[i] == term
            done[i] = term


def test_scorer_called_once_per_vector_step(pack, stat):
    counter = CountingScorer(stat)
    env = ExposureVectorEnv(8, source=pack, scorer=counter)
    env.reset(seed=0)
    assert counter.calls == 1 and counter.images == 8
    for k, a in enumerate(random_actions(env.action_space, 12, 0), start=1):
        env.step(a)
        assert counter.calls == 1 + k
    assert counter.images == 8 * 13


def test_one_filter_call_per_distinct_filter(pack, stat, monkeypatch):
    env = ExposureVectorEnv(6, source=pack, scorer=stat)
    env.reset(seed=0)
    calls = []
    for f in env.filters:
        orig = f.apply
        monkeypatch.setattr(f, "apply", lambda images, params, _f=f, _o=orig: calls.append((_f.short_name, len(images))) or _o(images, params))
    chosen = np.array([0, 4, 0, 7, 4, 0])  # E x3, T x2, C x1
    env.step({"filter": chosen, "params": np.zeros((6, 24), np.float32)})
    assert sorted(calls) == [("C", 1), ("E", 3), ("T", 2)]


def test_autoreset_step_has_zero_reward(pack, stat):
    env = ExposureVectorEnv(3, source=pack, scorer=stat, max_steps=2)
    env.reset(seed=0)
    acts = random_actions(env.action_space, 3, 1)
    env.step(acts[0])
    _, _, term, _, _ = env.step(acts[1])
    assert term.all()
    obs, reward, term, trunc, info = env.step(acts[2])
    assert (reward == 0).all() and not term.any() and not trunc.any()
    assert (obs["state"][:, 2] == 0).all() and (obs["state"][:, 3:] == 0).all()
    assert not info["_filter"].any()  # no edit was applied on the autoreset step


def test_mixed_autoreset_and_partial_reset(pack, stat):
    env = ExposureVectorEnv(4, source=pack, scorer=stat, max_steps=2)
    env.reset(seed=3)
    a = random_actions(env.action_space, 1, 0)[0]
    env.step(a)
    before = env.engine.images.copy()
    obs, _ = env.reset(options={"reset_mask": np.array([False, True, False, False])})
    assert (obs["state"][[0, 2, 3], 2] == 1).all() and obs["state"][1, 2] == 0
    np.testing.assert_array_equal(env.engine.images[[0, 2, 3]], before[[0, 2, 3]])
    _, _, term, _, _ = env.step(a)
    assert term.tolist() == [True, False, True, True]
    _, reward, term, _, info = env.step(a)  # 0, 2, 3 restart; 1 finishes its episode
    assert info["_filter"].tolist() == [False, True, False, False]
    assert reward[[0, 2, 3]].tolist() == [0, 0, 0] and term.tolist() == [False, True, False, False]


def test_vector_paired_reward_and_history(pack):
    env = ExposureVectorEnv(2, source=pack, scorer=PairedTargetScorer("l2"), keep_frames=True)
    env.reset(seed=0)
    # targets are inputs ** 0.6 (brighter): Gamma 0.6 moves exactly there, Gamma 2 away
    g = np.log(np.array([0.6, 2.0])) / np.log(3.0)
    params = np.zeros((2, 24), np.float32)
    params[:, 0] = g
    _, reward, _, _, info = env.step({"filter": np.array([1, 1]), "params": params})
    assert reward[0] > 0 > reward[1]
    np.testing.assert_allclose(info["params"][:, 0], [0.6, 2.0], rtol=1e-5)
    assert info["score"][0] == pytest.approx(0.0, abs=1e-3)  # reached the target (up to the 0.001 floor)
    frames, labels = env.history(1)
    assert len(frames) == 2 and labels[1] == "Gamma 1/0.50"


def test_render_returns_one_frame_per_env(pack, stat):
    env = ExposureVectorEnv(3, source=pack, scorer=stat)
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 3 and all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)


def test_benchmark_env_runs(pack, stat):
    assert benchmark_env(4, 12, source=pack, scorer=stat, blocks=2) > 0
    assert benchmark_env(1, 12, vector=False, source=pack, scorer=stat, blocks=2) > 0
