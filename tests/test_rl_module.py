"""ExposureRLModule: shapes, the filter-then-params distribution, tracing, APPO target nets, rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exposure_env import filters as filter_registry
from exposure_env.spaces import action_space, observation_space
from policies.action_dist import FilterParamsDistribution, filter_params_distribution, param_mask

FILTERS = filter_registry.DEFAULT_FILTERS
F, P = len(FILTERS), filter_registry.max_params()
NUM_PARAMS = tuple(f.num_params for f in FILTERS)


def make_module(preset="small", inference_only=False, **model):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from policies.rl_module import ExposureRLModule

    torch.manual_seed(0)
    return RLModuleSpec(
        module_class=ExposureRLModule,
        observation_space=observation_space(F, 5, 64),
        action_space=action_space(FILTERS),
        model_config={"preset": preset, **model},
        inference_only=inference_only,
    ).build()


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = torch.zeros(n, 3 + F)
    state[:, 2] = torch.arange(n) % 5
    return {"obs": {"image": torch.rand(n, 64, 64, 3, generator=g), "state": state}}


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_forward_shapes_and_values(preset):
    m = make_module(preset)
    b = batch()
    out = m.forward_exploration(b)
    assert out["action_dist_inputs"].shape == (6, F + 2 * F * P)
    assert m.compute_values(b).shape == (6,)
    logits, mean = m.policy_outputs(b["obs"]["image"], b["obs"]["state"])
    assert logits.shape == (6, F) and mean.shape == (6, P)
    # the greedy filter's mean: zero beyond its own parameters
    f = logits.argmax(-1)
    for i in range(6):
        assert torch.all(mean[i, NUM_PARAMS[f[i]] :] == 0)


def test_action_dist_class_from_the_dict_space():
    m = make_module()
    cls = m.get_exploration_action_dist_cls()
    assert issubclass(cls, FilterParamsDistribution)
    assert cls.num_params == NUM_PARAMS and cls.width == P
    assert cls.required_input_dim(action_space(FILTERS)) == F + 2 * F * P
    assert m.get_train_action_dist_cls() is cls and m.get_inference_action_dist_cls() is cls


def test_sampling_logp_entropy_kl():
    m = make_module()
    inputs = m.forward_exploration(batch(64))["action_dist_inputs"]
    d = m.action_dist_cls.from_logits(inputs)
    a = d.sample()
    assert a["filter"].shape == (64,) and a["params"].shape == (64, P)
    # samples put 0 in the tail beyond the chosen filter's parameters
    for i in range(64):
        assert torch.all(a["params"][i, NUM_PARAMS[a["filter"][i]] :] == 0)
    lp = d.logp(a)
    flat = torch.cat([a["filter"][:, None].float(), a["params"]], -1)
    torch.testing.assert_close(d.logp(flat), lp)
    # the tail carries no likelihood
    noisy = {"filter": a["filter"], "params": a["params"] + (1 - torch.as_tensor(param_mask(NUM_PARAMS, P))[a["filter"]]) * 5}
    torch.testing.assert_close(d.logp(noisy), lp)
    # log-probability = categorical + Gaussian of the chosen filter's own params
    f0 = int(a["filter"][0])
    k = NUM_PARAMS[f0]
    normal = torch.distributions.Normal(d.mean[0, f0, :k], d.log_std[0, f0, :k].exp())
    expect = torch.log_softmax(d.logits[0], -1)[f0] + normal.log_prob(a["params"][0, :k]).sum()
    torch.testing.assert_close(lp[0], expect)
    # joint entropy: the filter-choice entropy plus the chosen filter Gaussian's, in expectation;
    # the bonus (entropy()) acts on the filter choice only
    p = torch.softmax(d.logits, -1)
    gauss = ((0.5 * np.log(2 * np.pi * np.e) + d.log_std) * d.mask).sum(-1)
    torch.testing.assert_close(d.joint_entropy(), -(p * p.log()).sum(-1) + (p * gauss).sum(-1))
    torch.testing.assert_close(d.entropy(), -(p * p.log()).sum(-1))
    assert torch.allclose(d.kl(d), torch.zeros(64), atol=1e-6)
    other = m.action_dist_cls.from_logits(inputs + 0.1 * torch.randn_like(inputs))
    assert torch.all(d.kl(other) > 0)
    det = d.to_deterministic().sample()
    assert torch.equal(det["filter"], d.logits.argmax(-1))


def test_filter_choice_mixes_uniform_exploration():
    m = make_module(filter_epsilon=0.05)
    inputs = m.forward_exploration(batch())["action_dist_inputs"]
    probs = torch.softmax(inputs[:, :F], -1)
    assert torch.all(probs >= 0.05 / F - 1e-6)
    logits, _ = m.policy_outputs(batch()["obs"]["image"], batch()["obs"]["state"])
    assert torch.equal(probs.argmax(-1), logits.argmax(-1))


def test_policy_outputs_traceable_with_dynamic_batch():
    m = make_module().eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, image, state):
            return self.module.policy_outputs(image, state)

    b = batch(4)
    traced = torch.jit.trace(Wrapper(m), (b["obs"]["image"], b["obs"]["state"]))
    b2 = batch(7, seed=3)
    got = traced(b2["obs"]["image"], b2["obs"]["state"])
    want = m.policy_outputs(b2["obs"]["image"], b2["obs"]["state"])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_target_network_api_and_inference_only():
    m = make_module()
    m.make_target_networks()
    (main, target), = m.get_target_network_pairs()
    assert main is m.pi and target is not m.pi
    b = batch()
    out = m.forward_target(b)["target_network_action_dist_inputs"]
    torch.testing.assert_close(out, m.forward_exploration(b)["action_dist_inputs"])
    assert all(not p.requires_grad for p in target.parameters())
    small = make_module(inference_only=True)
    assert not hasattr(small, "vf")
    state = m.get_state(inference_only=True)
    assert state and not any(k.startswith(("vf.", "_old_pi.")) for k in state)
    small.set_state(state)
    torch.testing.assert_close(small.forward_inference(b)["action_dist_inputs"], m.forward_inference(b)["action_dist_inputs"])


def test_bad_model_config():
    with pytest.raises(ValueError, match="preset"):
        make_module(preset="huge")
    with pytest.raises(ValueError, match="filters"):
        make_module(filters=["E", "G"])


def test_distribution_class_per_filter_set():
    assert filter_params_distribution(NUM_PARAMS, P) is filter_params_distribution(NUM_PARAMS, P)
    with pytest.raises(ValueError):
        filter_params_distribution((30,), 24)


def test_rollout_module_and_traced_function_agree(rng):
    from policies.rollout import rollout

    m = make_module()
    images = rng.uniform(0, 0.6, (5, 64, 64, 3)).astype(np.float32)
    final, edits, frames = rollout(m, images, steps=5)
    assert final.shape == images.shape and len(frames) == 6 and np.array_equal(frames[0], images)
    assert all(len(e) == 5 for e in edits)
    # re-applying each edit list reproduces the final images
    from exposure_env.edits import apply_edits

    for i in range(5):
        np.testing.assert_allclose(apply_edits(images[i], edits[i]), final[i], rtol=1e-4, atol=1e-5)

    def fn(image, state):
        return m.policy_outputs(image, state)

    final2, edits2, _ = rollout(fn, images, steps=5)
    np.testing.assert_allclose(final2, final, atol=1e-6)
    assert [[e.filter for e in x] for x in edits2] == [[e.filter for e in x] for x in edits]
    _, masked, _ = rollout(m, images, steps=5, mask_used=True)
    assert all(len({e.filter for e in x}) == 5 for x in masked)
    a, _, _ = rollout(m, images, steps=3, deterministic=False, seed=1)
    b, _, _ = rollout(m, images, steps=3, deterministic=False, seed=1)
    np.testing.assert_array_equal(a, b)
