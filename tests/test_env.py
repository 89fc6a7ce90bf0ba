"""ExposureEnv ("Exposure-v0"): spaces, episode length, the §4 reward, parameter mapping, penalties."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import exposure_env  # noqa: F401  (registers Exposure-v0)
from exposure_env import filters, penalties
from exposure_env.datasets import ImagePack
from exposure_env.edits import Edit
from exposure_env.env import ExposureEnv
from exposure_env.scorers import PairedTargetScorer, StatisticsScorer
from exposure_env.spaces import OBS_MAX, observe


class MeanScorer:
    """Test scorer with a known value: the mean pixel value of each image."""

    def score(self, images, refs=None):
        return images.reshape(len(images), -1).mean(axis=1).astype(np.float32)


def const_pack(value: float, n: int = 2, size: int = 80) -> ImagePack:
    return ImagePack(np.full((n, size, size, 3), value, np.float32))


@pytest.fixture(scope="module")
def photo_pack():
    """Smooth random colour fields in [0.02, 0.9] (photo-like: no pixel near 0 or above 1)."""
    rng = np.random.default_rng(0)
    low = rng.random((12, 5, 5, 3)).astype(np.float32)
    img = np.kron(low, np.ones((1, 16, 16, 1), np.float32))
    img = 0.02 + 0.6 * img
    return ImagePack(img, paired=img * 1.5)


@pytest.fixture(scope="module")
def stat(photo_pack):
    """A statistics scorer fitted once on the pack's targets (fitting costs ~0.1 s)."""
    return StatisticsScorer(ImagePack(photo_pack.paired), num_crops=256)


def action(filter_short: str, values=(), p: int = 24, filter_list=None) -> dict:
    names = [f.short_name for f in filters.resolve(filter_list)]
    a = np.zeros(p, np.float32)
    a[: len(values)] = values
    return {"filter": names.index(filter_short), "params": a}


def test_registered_and_make(photo_pack, stat):
    env = gym.make("Exposure-v0", source=photo_pack, scorer=stat, max_steps=3)
    assert isinstance(env.unwrapped, ExposureEnv)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert "score" in info


def test_check_env_passes(photo_pack, stat):
    from gymnasium.utils.env_checker import check_env

    env = ExposureEnv(source=photo_pack, scorer=stat)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # check_env cannot re-create an env made without gymnasium.make; that is all it may say
        warnings.filterwarnings("ignore", message=".*alternative render modes.*")
        check_env(env.unwrapped, skip_render_check=False)


def test_spaces(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    obs_space, act_space = env.observation_space, env.action_space
    assert obs_space["image"].shape == (64, 64, 3) and obs_space["image"].dtype == np.float32
    assert obs_space["image"].high.max() == OBS_MAX and obs_space["image"].low.min() == 0
    assert obs_space["state"].shape == (3 + 8,)
    assert obs_space["state"].high[2] == 5  # the step count
    assert act_space["filter"].n == 8
    assert act_space["params"].shape == (24,) and act_space["params"].low.min() == -1
    small = ExposureEnv(source=photo_pack, scorer=stat, filters=["E", "G"], max_steps=3, thumb_size=32)
    assert small.action_space["params"].shape == (1,)
    assert small.observation_space["state"].shape == (5,)
    obs, _ = small.reset(seed=1)
    assert obs["image"].shape == (32, 32, 3)


def test_episode_terminates_at_max_steps(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    obs, _ = env.reset(seed=3)
    assert obs["state"][2] == 0
    for k in range(1, 6):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs["state"][2] == k and info["step"] == k
        assert not truncated
        assert terminated == (k == 5)
        assert env.observation_space.contains(obs)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    obs, _ = env.reset()
    assert obs["state"][2] == 0 and obs["state"][3:].sum() == 0


def test_reward_is_scaled_score_change_minus_penalties():
    # Constant 0.6 image; MeanScorer score = mean pixel value.
    env = ExposureEnv(source=const_pack(0.6), scorer=MeanScorer(), reward_scale=0.1, overexposure_weight=2.0, reuse_penalty=0.5)
    env.reset(seed=0)
    # Exposure +1 EV (action 1/3.5): 0.6 -> 1.2; score +0.6; over-exposure 0.2**2 = 0.04.
    _, r, _, _, info = env.step(action("E", [1 / 3.5]))
    assert info["params"] == pytest.approx([1.0], abs=1e-6)
    assert info["penalty_overexposure"] == pytest.approx(0.04, rel=1e-5)
    assert info["penalty_reuse"] == 0.0
    assert info["score_before"] == pytest.approx(0.6) and info["score"] == pytest.approx(1.2, rel=1e-6)
    assert r == pytest.approx(0.1 * 0.6 - 2.0 * 0.04, abs=1e-6)
    # Exposure again, identity parameters: no score change, still over-exposed, reused.
    _, r, _, _, info = env.step(action("E", [0.0]))
    assert info["penalty_reuse"] == 0.5
    assert r == pytest.approx(0.0 - 2.0 * 0.04 - 0.5, abs=1e-6)
    # Exposure -1 EV back to 0.6: score -0.6, no over-exposure, reused again.
    _, r, _, _, info = env.step(action("E", [-1 / 3.5]))
    assert info["penalty_overexposure"] == 0.0
    assert r == pytest.approx(0.1 * -0.6 - 0.5, abs=1e-6)
    # A new filter (Black & white, no change on grey): reward exactly 0.
    _, r, _, _, info = env.step(action("BW", [1.0]))
    assert info["penalty_reuse"] == 0.0 and r == pytest.approx(0.0, abs=1e-6)


def test_identity_actions_leave_images_unchanged(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat, max_steps=8)
    env.reset(seed=5)
    for f in filters.DEFAULT_FILTERS:
        before = env.image
        env.step(action(f.short_name, f.identity_action()))
        # White balance divides by 1e-5 + (luminance of the multipliers): identity up to 1e-5
        np.testing.assert_allclose(env.image, before, rtol=2e-5, atol=2e-6, err_msg=f.name)


def test_exposure_identity_is_exact(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    env.reset(seed=2)
    before = env.image
    _, _, _, _, info = env.step(action("E", [0.0]))
    np.testing.assert_array_equal(env.image, before)
    assert info["text"] == "Exposure +0.00 EV"


@pytest.mark.parametrize(
    "short, lo, hi",
    [("E", [-3.5], [3.5]), ("G", [1 / 3], [3.0]), ("T", [0.5] * 8, [2.0] * 8), ("C", [0.9] * 24, [1.1] * 24), ("Ct", [-1.0], [1.0])],
)
def test_params_mapping_reaches_range_ends(photo_pack, stat, short, lo, hi):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    k = filters.get(short).num_params
    for a, expect in ((-1.0, lo), (1.0, hi)):
        env.reset(seed=0)
        _, _, _, _, info = env.step(action(short, [a] * k))
        assert info["filter"] == short
        np.testing.assert_allclose(info["params"], expect, rtol=1e-5)
        assert isinstance(info["edit"], Edit) and info["edit"].filter == short
        assert info["text"] == filters.get(short).describe(np.asarray(info["params"]))


def test_only_the_first_params_are_used(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    env.reset(seed=0)
    a = action("E", [0.5])
    a["params"][1:] = 0.9  # ignored by a 1-parameter filter
    _, _, _, _, info = env.step(a)
    assert info["params"] == pytest.approx([1.75], abs=1e-5)


def test_observation_is_clipped_but_internal_image_is_not():
    env = ExposureEnv(source=const_pack(0.6), scorer=MeanScorer())
    env.reset(seed=0)
    obs, _, _, _, _ = env.step(action("E", [1.0]))  # +3.5 EV: 0.6 * 2**3.5 = 6.79
    assert env.image.max() == pytest.approx(0.6 * 2**3.5, rel=1e-5)
    assert obs["image"].max() == OBS_MAX
    np.testing.assert_array_equal(obs["image"], observe(env.image))
    # and nothing is lost: -3.5 EV brings the exact image back
    env.step(action("G", [0.0]))
    env.step(action("E", [-1.0]))
    np.testing.assert_allclose(env.image, 0.6, rtol=1e-5)


def test_render_and_history(photo_pack, stat):
    env = ExposureEnv(source=photo_pack, scorer=stat)
    env.reset(seed=4)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
    np.testing.assert_array_equal(frame, np.round(np.clip(env.image, 0, 1) * 255).astype(np.uint8))
    env.step(action("E", [0.2]))
    env.step(action("G", [-0.5]))
    frames, labels = env.history()
    assert len(frames) == 3 and labels[0] == "input" and labels[1].startswith("Exposure")
    np.testing.assert_array_equal(frames[-1], env.image)
    assert [e.filter for e in env.edits()] == ["E", "G"]


def test_seeding_is_deterministic(photo_pack, stat):
    a, b = ExposureEnv(source=photo_pack, scorer=stat), ExposureEnv(source=photo_pack, scorer=stat, seed=11)
    oa, _ = a.reset(seed=11)
    ob, _ = b.reset()  # constructor seed used on the first reset
    np.testing.assert_array_equal(oa["image"], ob["image"])
    oc, _ = a.reset(seed=12)
    assert not np.array_equal(oa["image"], oc["image"])


def test_paired_source_passes_refs_to_scorer(photo_pack):
    env = ExposureEnv(source=photo_pack, scorer=PairedTargetScorer("l1"))
    env.reset(seed=0)
    # targets are the inputs x1.5 (+0.585 EV): moving towards them is rewarded, away is not
    _, r_toward, _, _, info = env.step(action("E", [math.log2(1.5) / 3.5]))
    assert r_toward > 0 and info["score"] > info["score_before"]
    env.reset(seed=0)
    _, r_away, _, _, _ = env.step(action("E", [-0.3]))
    assert r_away < 0


def test_default_scorer_fits_the_paired_targets(photo_pack):
    env = ExposureEnv(source=photo_pack)
    scorer = env.engine.scorer
    assert isinstance(scorer, StatisticsScorer)
    # fitted on the targets: they score better than the (darker) inputs
    crops, refs = photo_pack.sample(np.random.default_rng(0), 16)
    assert scorer.score(refs).mean() > scorer.score(crops).mean()


def test_default_source_is_the_demo_set():
    env = ExposureEnv()
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and np.isfinite(info["score"])
    assert isinstance(env.engine.scorer, StatisticsScorer)


def test_source_and_targets_from_saved_packs(photo_pack, tmp_path):
    src = photo_pack.save(tmp_path / "inputs.npz")
    tgt = ImagePack(photo_pack.paired).save(tmp_path / "targets.npz")
    env = ExposureEnv(source=str(src), targets=tgt)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(env.engine.scorer.mean, StatisticsScorer(ImagePack.load(tgt)).mean, rtol=1e-6)
    with pytest.raises(ValueError, match="missing.npz"):
        ExposureEnv(source=tmp_path / "missing.npz", scorer=MeanScorer())
    with pytest.raises(ValueError, match="either scorer or targets"):
        ExposureEnv(source=src, targets=tgt, scorer=MeanScorer())


def test_configuration_errors(photo_pack):
    unpaired = ImagePack(photo_pack.images)
    with pytest.raises(ValueError, match="paired"):
        ExposureEnv(source=unpaired, scorer=PairedTargetScorer())
    with pytest.raises(ValueError, match="target"):
        ExposureEnv(source=unpaired)
    with pytest.raises(ValueError, match="source must be"):
        ExposureEnv(source=photo_pack.images, scorer=MeanScorer())
    with pytest.raises(ValueError, match="thumb_size"):
        ExposureEnv(source=photo_pack, thumb_size=96)
    with pytest.raises(ValueError, match="max_steps"):
        ExposureEnv(source=photo_pack, max_steps=0)
    with pytest.raises(KeyError, match="unknown filter"):
        ExposureEnv(source=photo_pack, filters=["E", "nope"])
    env = ExposureEnv(source=photo_pack, scorer=PairedTargetScorer())
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step({"filter": 8, "params": np.zeros(24, np.float32)})


# --- exposure_env.penalties: one formula, NumPy and torch -------------------------------------


def test_penalties_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1.6, (3, 8, 8, 3)).astype(np.float32)
    expect = np.array([np.mean(np.maximum(im - 1, 0) ** 2) for im in x])
    np.testing.assert_allclose(penalties.overexposure(x), expect, rtol=1e-5)
    np.testing.assert_allclose(penalties.overexposure(torch.from_numpy(x)).numpy(), expect, rtol=1e-5)
    used = np.array([True, False, True])
    np.testing.assert_array_equal(penalties.reuse(used, 0.5), [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(penalties.reuse(torch.from_numpy(used), 0.5).numpy(), [0.5, 0.0, 0.5])
    h = np.array([0.0, math.log(8), 1.0])
    np.testing.assert_allclose(penalties.entropy(h, 8, 0.0), 0.05 * (math.log(8) - h))
    np.testing.assert_allclose(penalties.entropy(torch.from_numpy(h), 8, 0.5).numpy(), 0.025 * (math.log(8) - h))
    assert penalties.entropy(h, 8, 1.0).max() == 0.0
    stopped, step = np.array([1, 1, 0]), np.array([2, 5, 1])
    np.testing.assert_array_equal(penalties.early_stop(stopped, step, 5), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(penalties.early_stop(torch.tensor(stopped), torch.tensor(step), 5).numpy(), [1.0, 0.0, 0.0])
    r = penalties.step_reward(np.array([1.0]), np.array([3.0]), np.array([0.1]), np.array([1.0]))
    np.testing.assert_allclose(r, [0.05 * 2 - 0.1 - 1.0])


def test_overexposure_has_gradients_in_torch():
    x = torch.full((1, 4, 4, 3), 1.5, requires_grad=True)
    penalties.overexposure(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 0.5 / 48, rtol=1e-6)
