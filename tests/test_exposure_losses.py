"""The Exposure actor-critic's update math (policies.exposure_algo.td_update, .update_parts), pure torch, no Ray."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exposure_env import filters as F
from exposure_env.spaces import action_space, observation_space
from exposure_env.state import make_state
from policies.exposure_algo.td_update import exposure_losses
from policies.exposure_algo.update_parts import (
    UpdateSettings,
    advance_state,
    apply_chosen,
    frozen_copy,
    mixed_log_probs,
    sample_choice,
    straight_through_clamp,
)
from policies.rl_module import ExposureRLModule
from rewards.discriminator import Discriminator
from rewards.schedule import ADAM_BETAS

SMALL_D = {"channels": (8, 8, 8), "out_channels": 8, "hidden": 16}


def make_module(filter_names=None, size=64, max_steps=5, **model):
    flist = F.resolve(filter_names)
    obs = observation_space(len(flist), max_steps, size)
    act = action_space(flist)
    cfg = {"filters": [f.short_name for f in flist], "preset": "small", **model}
    return ExposureRLModule(observation_space=obs, action_space=act, model_config=cfg), flist


def random_states(rng, n, num_filters, size=64, steps=None):
    images = rng.uniform(0.02, 0.9, size=(n, size, size, 3)).astype(np.float32)
    step = rng.integers(0, 4, size=n) if steps is None else np.full(n, steps)
    used = np.zeros((n, num_filters), bool)
    for i, s in enumerate(step):
        used[i, rng.choice(num_filters, size=s, replace=False)] = True
    return torch.from_numpy(images), torch.from_numpy(make_state(step, used))


def frozen_critic(size=64):
    torch.manual_seed(3)
    return frozen_copy(Discriminator({**SMALL_D, "input_size": size}))


def grads_of(module: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {n: (None if p.grad is None else p.grad.clone()) for n, p in module.named_parameters()}


def nonzero(g) -> bool:
    return g is not None and bool(g.abs().sum() > 0)


# --- small pieces ------------------------------------------------------------------------
def test_mixed_log_probs_are_a_distribution_with_a_uniform_floor():
    logits = torch.tensor([[10.0, -10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    p = mixed_log_probs(logits, 0.05).exp()
    assert torch.allclose(p.sum(-1), torch.ones(2), atol=1e-6)
    assert float(p[0].min()) >= 0.05 / 4 - 1e-7
    assert torch.allclose(p[1], torch.full((4,), 0.25))
    g = torch.Generator().manual_seed(0)
    draws = sample_choice(logits[:1].expand(20000, 4), 0.05, g)
    freq = torch.bincount(draws, minlength=4).float() / 20000
    assert abs(float(freq[1]) - 0.0125) < 0.005  # the 5 % uniform part reaches a -10 logit


def test_straight_through_clamp_forward_clamps_and_gradient_passes():
    x = torch.tensor([-3.0, 0.5, 2.0], requires_grad=True)
    y = straight_through_clamp(x)
    assert y.tolist() == [-1.0, 0.5, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_advance_state_matches_the_env_state_layout(rng):
    used = np.array([[True, False, False], [False, False, False]])
    state = torch.from_numpy(make_state([1, 0], used))
    out = advance_state(state, torch.tensor([2, 0]))
    used_after = np.array([[True, False, True], [True, False, False]])
    assert np.array_equal(out.numpy(), make_state([2, 1], used_after))


def test_apply_chosen_applies_each_rows_filter(rng):
    flist = F.resolve(None)
    n = 3 * len(flist)
    images = torch.from_numpy(rng.uniform(0.05, 0.95, (n, 16, 16, 3)).astype(np.float32))
    choice = torch.from_numpy(rng.permutation(np.arange(n) % len(flist)))
    actions = torch.from_numpy(rng.uniform(-1, 1, (n, F.max_params(flist))).astype(np.float32))
    out = apply_chosen(flist, images, choice, actions)
    for i in range(n):
        flt = flist[int(choice[i])]
        want = flt.apply(images[i : i + 1].numpy(), flt.params_from_action(actions[i : i + 1, : flt.num_params].numpy()))
        np.testing.assert_allclose(out[i].numpy(), want[0], rtol=1e-4, atol=1e-5)


# --- where the gradients go ----------------------------------------------------------------
@pytest.fixture(scope="module")
def setup_all_filters():
    torch.manual_seed(0)  # the module's init: independent of the tests run before
    module, flist = make_module()
    critic = frozen_critic()
    rng = np.random.default_rng(5)
    n = 4 * len(flist)
    image, state = random_states(rng, n, len(flist))
    choice = torch.arange(n) % len(flist)
    return module, flist, critic, image, state, choice


def run_losses(module, flist, critic, image, state, choice, **kw):
    module.zero_grad(set_to_none=True)
    return exposure_losses(
        module.policy_heads, module.vf, lambda x, refs: critic(x), flist, image, state, progress=0.2, choice=choice, **kw
    )


def test_actor_loss_reaches_every_parameter_head_and_nothing_else(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    out = run_losses(module, flist, critic, image, state, choice)
    out.actor.backward()
    heads = module.pi.param_heads
    for f, flt in enumerate(flist):  # each filter's own head gets the gradient of -Q
        assert nonzero(heads.weight.grad[f, :, : flt.num_params]), f"no gradient reached {flt.short_name}'s head"
        assert nonzero(heads.bias.grad[f, : flt.num_params])
    assert any(nonzero(g) for g in grads_of(module.pi.param_encoder).values())
    for name, g in grads_of(module.pi.filter_encoder).items():  # the choice gets nothing through the filters
        assert not nonzero(g), name
    assert not any(nonzero(g) for g in grads_of(module.pi.filter_head).values())
    assert not any(nonzero(g) for g in grads_of(module.vf).values())  # V's weights are detached in Q
    assert all(p.grad is None for p in critic.parameters())  # D is frozen


def test_gradient_of_q_flows_through_the_critic_to_the_actions(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    # with a critic that scores mean brightness, -Q must push Exposure's action up
    out = exposure_losses(
        module.policy_heads,
        module.vf,
        lambda x, refs: x.mean(dim=(1, 2, 3)) * 100.0,
        flist,
        image,
        state,
        progress=0.0,
        choice=torch.zeros(len(image), dtype=torch.long),
        settings=UpdateSettings(max_steps=1, overexposure_weight=0.0),
    )
    module.zero_grad(set_to_none=True)
    out.actor.backward()
    # d(-Q)/d(bias of E's head) < 0: increasing the exposure action increases Q
    assert float(module.pi.param_heads.bias.grad[0, 0]) < 0


def test_choice_loss_trains_only_the_choice_head_and_value_loss_only_v(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    out = run_losses(module, flist, critic, image, state, choice)
    out.choice.backward(retain_graph=True)
    assert nonzero(module.pi.filter_head[0].weight.grad)
    assert any(nonzero(g) for g in grads_of(module.pi.filter_encoder).values())
    assert not any(nonzero(g) for g in grads_of(module.pi.param_heads).values())
    assert not any(nonzero(g) for g in grads_of(module.pi.param_encoder).values())
    assert not any(nonzero(g) for g in grads_of(module.vf).values())
    module.zero_grad(set_to_none=True)
    out.value.backward()
    assert all(nonzero(g) for n, g in grads_of(module.vf).items() if n.endswith('weight'))
    pi_grads = [g for g in grads_of(module.pi).values()]
    assert not any(nonzero(g) for g in pi_grads)
    assert all(p.grad is None for p in critic.parameters())


def test_reward_q_and_terminal_steps(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    settings = UpdateSettings(max_steps=5, entropy_weight=0.0)
    out = run_losses(module, flist, critic, image, state, choice, settings=settings)
    with torch.no_grad():
        nxt = apply_chosen(flist, image, choice, out.actions)
        gain = critic(nxt) - critic(image)
        used = state[torch.arange(len(choice)), 3 + choice] > 0.5
        over = (torch.relu(nxt - 1) ** 2).flatten(1).mean(-1)
        r = 0.05 * gain - over - used.float()
        v_next = module.vf(nxt, advance_state(state, choice))
    np.testing.assert_allclose(out.reward.numpy(), r.numpy(), rtol=1e-4, atol=1e-6)
    assert not out.done.any()
    np.testing.assert_allclose(out.q.numpy(), (r + v_next).numpy(), rtol=1e-4, atol=1e-6)
    # the step that reaches max_steps is terminal: no bootstrap
    last = run_losses(module, flist, critic, image, state, choice, settings=UpdateSettings(max_steps=1, entropy_weight=0.0))
    assert last.done.all()
    np.testing.assert_allclose(last.q.numpy(), last.reward.numpy(), rtol=1e-6)


def test_entropy_term_fades_with_progress(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    kw = dict(settings=UpdateSettings(max_steps=1))

    def run(progress):
        return exposure_losses(module.policy_heads, module.vf, lambda x, r: critic(x), flist, image, state,
                               progress=progress, choice=choice, **kw)

    start, end = run(0.0), run(1.0)
    h = float(start.entropy.mean())
    expected = 0.05 * (math.log(len(flist)) - h)
    np.testing.assert_allclose(float(end.reward.mean() - start.reward.mean()), expected, rtol=1e-3, atol=1e-7)


# --- a one-step task solved by the deterministic policy gradient ------------------------
def test_one_step_exposure_task_is_solved_within_a_tenth_of_a_stop():
    """Images with a random exposure error in [-2, 2] EV; reward = -|log2 exposure error|
    (a paired critic); filter set [E]; the policy must undo the error from the image alone."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is fastest on a shared machine
    size = 16
    module, flist = make_module(["E"], size=size, max_steps=1)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        base = torch.rand(n, 3, 4, 4, generator=g)
        base = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear").permute(0, 2, 3, 1)
        base = base * (0.2 / base.mean(dim=(1, 2, 3), keepdim=True))
        err = torch.rand(n, generator=g) * 4 - 2
        return base * (2.0 ** err)[:, None, None, None], torch.zeros(n, 4), base, err

    def score(images, refs):  # -|exposure error in stops|
        return -torch.log2(images.mean(dim=(1, 2, 3)) / refs.mean(dim=(1, 2, 3))).abs()

    opt = torch.optim.Adam(list(module.pi.parameters()) + list(module.vf.parameters()), lr=1e-3, betas=ADAM_BETAS)
    iterations = 300
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.1 ** (2 * t / iterations))
    settings = UpdateSettings(max_steps=1)
    for it in range(iterations):
        image, state, base, _ = batch(64)
        out = exposure_losses(module.policy_heads, module.vf, score, flist, image, state,
                              progress=it / iterations, settings=settings, refs=base)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        sched.step()
    image, state, _, err = batch(512)
    with torch.no_grad():
        _, mean = module.policy_outputs(image, state)
    torch.set_num_threads(threads)
    ev = F.get("E").params_from_action(mean[:, :1].clamp(-1, 1))[:, 0]
    residual = (ev + err).abs()
    assert float(residual.mean()) < 0.1, f"mean residual {float(residual.mean()):.3f} EV"
    assert float(residual.quantile(0.95)) < 0.25


def test_blend_filters_off_half_still_passes_a_gradient():
    """S+ maps a < 0 to "off" (amount 0): the deterministic head must still learn to turn it on."""
    from policies.exposure_algo.update_parts import action_params

    sat = F.get("S+")
    a = torch.tensor([[-0.5], [0.3]], requires_grad=True)
    images = torch.full((2, 4, 4, 3), 0.045)
    p = action_params(sat, a, images)
    assert p.detach()[:, 0].tolist() == pytest.approx([0.0, 0.3])  # forward: what the env applies
    p.sum().backward()
    assert a.grad[:, 0].tolist() == pytest.approx([0.5, 1.0])  # mean slope in the flat half
    e = torch.tensor([[0.2]], requires_grad=True)  # a smooth map keeps its own derivative
    action_params(F.get("E"), e, images[:1]).sum().backward()
    assert float(e.grad) == pytest.approx(3.5)
    # anchored: the anchor (+2 EV to mid grey) is a constant, the action's slope stays 3.5 EV
    e.grad = None
    img = images[:1].clone().requires_grad_(True)
    ev = action_params(F.get("AE"), e, img)
    assert float(ev.detach()) == pytest.approx(2.0 + 0.7, abs=1e-5)
    ev.sum().backward()
    assert float(e.grad) == pytest.approx(3.5) and img.grad is None


# --- the all-filters variant ---------------------------------------------------------------
def test_all_filters_update_matches_the_sampled_one_and_trains_every_head(setup_all_filters):
    module, flist, critic, image, state, choice = setup_all_filters
    kw = dict(progress=0.3, choice=choice)
    score = lambda x, refs: critic(x)  # noqa: E731
    sampled = exposure_losses(module.policy_heads, module.vf, score, flist, image, state, settings=UpdateSettings(), **kw)
    every = exposure_losses(module.policy_heads, module.vf, score, flist, image, state,
                            settings=UpdateSettings(all_filters=True), **kw)
    # the sampled filter's transition is the same in both
    np.testing.assert_allclose(every.q.numpy(), sampled.q.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(every.reward.numpy(), sampled.reward.numpy(), rtol=1e-4, atol=1e-5)
    assert torch.equal(every.next_state, sampled.next_state)
    # every state trains every head (no forced choice needed), nothing else
    one_filter = torch.zeros(len(image), dtype=torch.long)
    module.zero_grad(set_to_none=True)
    out = exposure_losses(module.policy_heads, module.vf, score, flist, image, state, progress=0.3, choice=one_filter,
                          settings=UpdateSettings(all_filters=True))
    out.actor.backward(retain_graph=True)
    for f, flt in enumerate(flist):
        assert nonzero(module.pi.param_heads.weight.grad[f, :, : flt.num_params]), flt.short_name
    assert not any(nonzero(g) for g in grads_of(module.pi.filter_head).values())
    assert not any(nonzero(g) for g in grads_of(module.vf).values())
    module.zero_grad(set_to_none=True)
    out.choice.backward(retain_graph=True)  # the expected policy gradient: choice head only
    assert nonzero(module.pi.filter_head[0].weight.grad)
    assert not any(nonzero(g) for g in grads_of(module.pi.param_heads).values())
    module.zero_grad(set_to_none=True)
    out.value.backward()
    assert any(nonzero(g) for g in grads_of(module.vf).values())
    assert not any(nonzero(g) for g in grads_of(module.pi).values())
    assert all(p.grad is None for p in critic.parameters())


@pytest.mark.gpu
def test_update_runs_on_the_gpu_like_on_the_cpu(setup_all_filters):
    """Filters, frozen critic, networks and sampling all on CUDA: same losses as on the CPU."""
    import copy

    module, flist, critic, image, state, choice = setup_all_filters
    dev = torch.device("cuda")
    g_module, g_critic = copy.deepcopy(module).to(dev), copy.deepcopy(critic).to(dev)
    kw = dict(progress=0.5, settings=UpdateSettings(all_filters=True))
    cpu = exposure_losses(module.policy_heads, module.vf, lambda x, r: critic(x), flist, image, state, choice=choice, **kw)
    gpu = exposure_losses(g_module.policy_heads, g_module.vf, lambda x, r: g_critic(x), flist, image.to(dev),
                          state.to(dev), choice=choice.to(dev), generator=torch.Generator(device=dev), **kw)
    for name in ("actor", "choice", "value"):
        np.testing.assert_allclose(float(getattr(gpu, name)), float(getattr(cpu, name)), rtol=1e-3, atol=1e-4)
    gpu.total.backward()
    assert all(p.grad is None for p in g_critic.parameters())
    assert gpu.next_image.device.type == "cuda"
