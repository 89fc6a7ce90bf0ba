"""The Exposure actor-critic as an RLlib algorithm: state pool, module, registration, Ray runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exposure_env import filters as F
from exposure_env.spaces import action_space, observation_space
from policies.exposure_algo.replay import StatePool

SMALL_D = {
    "channels": (8, 8, 8),
    "out_channels": 8,
    "hidden": 16,
    "n_critic": 1,
    "n_critic_warmup": 2,
    "warmup_iterations": 1,
    "checkpoint_every": 1000,
}


# --- the state pool ----------------------------------------------------------------------
def states(start, n, size=4, d=5):
    images = np.arange(start, start + n, dtype=np.float32)[:, None, None, None] * np.ones((1, size, size, 3), np.float32)
    return images, np.repeat(np.arange(start, start + n, dtype=np.float32)[:, None], d, axis=1)


def test_state_pool_keeps_the_most_recent_states_and_samples_without_replacement(rng):
    pool = StatePool(8)
    pool.add(*states(0, 5))
    assert len(pool) == 5
    pool.add(*states(5, 6))  # 11 added: 0..2 overwritten
    assert len(pool) == 8 and pool.added == 11
    assert sorted(pool.states[:, 0].tolist()) == list(range(3, 11))
    batch = pool.sample(rng, 8)
    assert sorted(batch["state"][:, 0].tolist()) == list(range(3, 11))  # without replacement
    assert np.array_equal(batch["image"][:, 0, 0, 0], batch["state"][:, 0])  # rows stay paired
    restored = StatePool(8)
    restored.set_state(pool.get_state())
    assert np.array_equal(restored.states, pool.states) and restored._next == pool._next
    with pytest.raises(ValueError, match="image"):
        pool.add(np.zeros((2, 5, 5, 3), np.float32), np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="empty"):
        StatePool(4).sample(rng, 2)


def test_state_pool_takes_the_states_an_episode_acted_from():
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    images, st = states(0, 4)
    obs = [{"image": images[i], "state": st[i]} for i in range(4)]
    ep = SingleAgentEpisode(observations=obs, actions=[0, 1, 2], rewards=[0.0] * 3, len_lookback_buffer=0)
    pool = StatePool(16)
    assert pool.add_episodes([ep]) == 3  # the final observation was not acted from
    assert sorted(pool.states[: len(pool), 0].tolist()) == [0, 1, 2]
    ep.to_numpy()
    assert pool.add_episodes([ep]) == 3


# --- the module ------------------------------------------------------------------------------
def module_spaces():
    flist = F.resolve(None)
    return dict(observation_space=observation_space(len(flist), 5, 64), action_space=action_space(flist))


def make_modules(dropout=0.0):
    from policies.exposure_algo.module import DETERMINISTIC_LOG_STD, ExposureAlgoRLModule
    from policies.rl_module import ExposureRLModule

    cfg = {"preset": "small", "dropout": dropout}
    torch.manual_seed(0)
    algo_module = ExposureAlgoRLModule(**module_spaces(), model_config=cfg)
    ppo_module = ExposureRLModule(**module_spaces(), model_config=cfg)
    return algo_module, ppo_module, DETERMINISTIC_LOG_STD


def test_module_is_ppos_network_with_deterministic_parameters(rng):
    from ray.rllib.core.columns import Columns

    algo_module, ppo_module, log_std = make_modules()
    assert torch.all(algo_module.pi.log_std == log_std) and not algo_module.pi.log_std.requires_grad
    ppo_module.load_state_dict(algo_module.state_dict())  # same parameters, same names
    image = torch.from_numpy(rng.uniform(0, 1, (6, 64, 64, 3)).astype(np.float32))
    state = torch.zeros(6, 11)
    for a, b in zip(algo_module.policy_outputs(image, state), ppo_module.policy_outputs(image, state)):
        assert torch.equal(a, b)
    with torch.no_grad():
        out = algo_module.forward_exploration({Columns.OBS: {"image": image, "state": state}})
    dist = algo_module.action_dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS])
    first, second = dist.sample(), dist.sample()
    same_filter = first["filter"] == second["filter"]
    assert same_filter.any()
    assert torch.allclose(first["params"][same_filter], second["params"][same_filter], atol=1e-6)
    assert algo_module.forward_train({Columns.OBS: {"image": image, "state": state}}) == {}


def test_decision_time_dropout_is_an_option():
    from ray.rllib.core.columns import Columns

    image = torch.full((4, 64, 64, 3), 0.3)
    batch = {Columns.OBS: {"image": image, "state": torch.zeros(4, 11)}}
    for dropout, differ in ((0.0, False), (0.5, True)):
        module = make_modules(dropout)[0]
        with torch.no_grad():
            a = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
            b = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
            c = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
            d = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        assert (not torch.equal(a, b)) == differ
        assert torch.equal(c, d)  # greedy evaluation stays deterministic


def test_averaged_policy_decides_and_follows_the_trained_one(rng):
    from ray.rllib.core.columns import Columns

    from policies.exposure_algo.module import ExposureAlgoRLModule
    from policies.rl_module import ExposureRLModule

    torch.manual_seed(0)
    module = ExposureAlgoRLModule(**module_spaces(), model_config={"preset": "small", "policy_average": 0.9})
    image = torch.from_numpy(rng.uniform(0, 1, (4, 64, 64, 3)).astype(np.float32))
    state = torch.zeros(4, 11)
    avg_head = module.pi_average.filter_head[0].weight
    assert torch.equal(avg_head, module.pi.filter_head[0].weight) and not avg_head.requires_grad
    start = avg_head.clone()
    with torch.no_grad():
        for p in module.pi.parameters():
            p.add_(0.5)  # a learner update moved the trained policy
    # exploration acts with the trained policy, decisions (validation, export) with the average
    trained = module.policy_heads(image, state, net=module.pi)[0]
    assert not torch.allclose(module.policy_heads(image, state)[0], trained)
    with torch.no_grad():
        explored = module.forward_exploration({Columns.OBS: {"image": image, "state": state}})[Columns.ACTION_DIST_INPUTS]
        explored_again = module._dist_inputs(*module.pi(image, state))
    assert torch.equal(explored, explored_again)
    # warm-up decay min(0.9, (1 + n) / (10 + n)): 0.1, then 2/11, ...
    assert module.update_policy_average() == pytest.approx(0.1)
    torch.testing.assert_close(module.pi_average.filter_head[0].weight, 0.1 * start + 0.9 * (start + 0.5))
    assert module.update_policy_average() == pytest.approx(2 / 11) and int(module.policy_average_updates) == 2
    for _ in range(200):
        module.update_policy_average()
    torch.testing.assert_close(module.policy_heads(image, state)[0], trained)  # converges to a fixed pi
    assert "pi_average.filter_head.0.weight" in module.state_dict()  # checkpointed with the module
    assert make_modules()[0].pi_average is None and make_modules()[0].update_policy_average() == 0.0  # off by default
    with pytest.raises(ValueError, match="policy_average"):
        ExposureAlgoRLModule(**module_spaces(), model_config={"preset": "small", "policy_average": 1.0})
    with pytest.raises(ValueError, match="only the exposure algorithm"):
        ExposureRLModule(**module_spaces(), model_config={"preset": "small", "policy_average": 0.9})


# --- registration: --algo exposure ------------------------------------------------------------
def test_exposure_is_a_registered_algorithm_with_its_recipes(tmp_path):
    from policies.exposure_algo.algorithm import ExposureConfig
    from policies.exposure_algo.module import ExposureAlgoRLModule
    from tune_configs import algorithms, overrides, recipes
    from tune_configs.commands.train_cmd import settings_from_options

    assert algorithms.check_algo("exposure") == "exposure" and "exposure" in algorithms.ALGORITHMS
    env = {"inputs": str(tmp_path / "in.npz"), "scorer": {"kind": "discriminator", "name": "d_test"}, "reward_scale": 0.5}
    config = algorithms.build_config("exposure", env, model_config={"preset": "small"}, num_env_runners=0, num_envs_per_env_runner=64)
    assert isinstance(config, ExposureConfig)
    assert config.rl_module_spec.module_class is ExposureAlgoRLModule
    assert config.discriminator_actor == "d_test" and config.gamma == 1.0 and config.train_batch_size_per_learner == 64
    with pytest.raises(ValueError, match="discriminator reward"):
        algorithms.build_config("exposure", {**env, "scorer": {"kind": "statistics", "targets": "t.npz"}})
    r = recipes.get_recipe("demo")  # the default recipes run the exposure algorithm
    assert r.algo == "exposure" and r.num_env_runners == 0 and r.num_envs_per_env_runner == 64
    assert r.training["update"] == "episode" and r.model["preset"] == "stats"
    assert r.discriminator["kind"] == "features" and r.env["critic_fakes"] == "final"
    assert recipes.get_recipe("laptop").training == r.training
    assert recipes.get_recipe("fivek").algo == "exposure" and recipes.get_recipe("fivek").model["preset"] == "paper"
    assert recipes.get_recipe("demo-ppo").algo == "ppo"
    common = dict(targets=None, inputs=None, fivek=None, fivek_limit=None, recipe=None, stop_iters=2, stop_time=None,
                  num_env_runners=None, num_envs_per_runner=None, num_gpus=0, checkpoint_freq=None, eval_every=None,
                  resume=None, config=[], name=None, results_dir=tmp_path, seed=0, dashboard=False)
    s = settings_from_options(algo="exposure", demo=True, **common)
    assert s.recipe.name == "demo" and s.recipe.algo == "exposure"
    assert overrides.apply_overrides(s.recipe, ["policy_lr=1e-4"]).training["policy_lr"] == 1e-4
    s = settings_from_options(algo=None, demo=True, **common)
    assert s.recipe.name == "demo" and s.recipe.algo == "exposure"
    s = settings_from_options(algo="ppo", demo=True, **common)
    assert s.recipe.name == "demo-ppo" and s.recipe.algo == "ppo"


# --- Ray: the algorithm end to end ------------------------------------------------------------
def test_config_rejects_a_rate_after_the_schedule_outside_0_1():
    from policies.exposure_algo.algorithm import ExposureConfig

    ExposureConfig().training(lr_after_schedule=1.0).validate()
    for bad in (0.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="lr_after_schedule must be in"):
            ExposureConfig().training(lr_after_schedule=bad).validate()


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    from exposure_env.datasets.demo import demo_packs

    d = demo_packs()
    folder = tmp_path_factory.mktemp("exposure_algo_packs")
    inputs = d.train_inputs.subset(np.arange(64)).save(folder / "inputs.npz")
    targets = d.train_targets.subset(np.arange(64)).save(folder / "targets.npz")
    return inputs, targets


@pytest.mark.slow
def test_algorithm_trains_syncs_the_critic_checkpoints_and_exports(ray_session, packs, tmp_path):
    ray = ray_session
    from ray.rllib.algorithms.algorithm import Algorithm

    from policies.export import export_policy
    from policies.policy_file import load_policy
    from rewards.actor import get_or_create_discriminator
    from tune_configs.algorithms import build_config

    inputs, targets = packs
    actor = get_or_create_discriminator("d_exposure_algo_test", str(targets), SMALL_D)
    try:
        env = {"inputs": str(inputs), "scorer": {"kind": "discriminator", "name": "d_exposure_algo_test"}}
        config = build_config(
            "exposure", env, model_config={"preset": "small", "policy_average": 0.5},
            training={"policy_lr": 1e-3, "value_lr": 1e-2, "choice_lr": 2e-3, "lr_after_schedule": 0.5},
            num_env_runners=0, num_envs_per_env_runner=64, seed=3,
        )
        algo = config.build_algo()
        learner = algo.learner_group._learner
        assert all(not p.requires_grad for p in learner._critic.parameters())
        updates_before = ray.get(actor.metrics.remote()).get("total_updates", 0)
        before = {k: v.clone() for k, v in learner.module["default_policy"].state_dict().items()}
        results = []
        for it in range(3):
            if it == 2:
                critic_before = ray.get(actor.get_weights.remote())
            algo.set_progress(it, 10)
            results.append(algo.train())
        last = results[-1]
        stats = last["learners"]["default_policy"]
        for key in ("actor_loss", "choice_loss", "value_loss", "q_mean", "filter_entropy", "reward_mean"):
            assert np.isfinite(stats[key]), key
        assert stats["progress"] == pytest.approx(0.2)
        # three Adam optimisers; rates follow lr * 0.1 ** (3 t / T) at t = 2 of T = 10
        opts = {name.split("_", 2)[-1]: o for name, o in learner._named_optimizers.items()}
        assert set(opts) == {"policy", "choice", "value"}
        for name, base in (("policy", 1e-3), ("choice", 2e-3), ("value", 1e-2)):
            assert opts[name].param_groups[0]["lr"] == pytest.approx(base * 0.1 ** 0.6)
            assert opts[name].param_groups[0]["betas"] == (0.5, 0.9)
        choice_params = {id(p) for p in opts["choice"].param_groups[0]["params"]}
        module_pi = learner.module["default_policy"].pi
        assert choice_params == {id(p) for p in list(module_pi.filter_encoder.parameters()) + list(module_pi.filter_head.parameters())}
        assert last["state_pool"]["size"] == 128 and last["state_pool"]["added"] == 64
        # the discriminator trained inside the iterations: warm-up 2 updates, then 1
        assert ray.get(actor.metrics.remote())["total_updates"] - updates_before == 2 + 1 + 1
        assert last["discriminator"]["updates"] == 1
        # the learner's frozen copy is the actor's critic of the previous iteration
        for name, tensor in learner._critic.state_dict().items():
            np.testing.assert_array_equal(tensor.numpy(), critic_before[name])
        module = learner.module["default_policy"]
        after = module.state_dict()
        changed = [k for k in after if not torch.equal(after[k], before[k])]
        assert any(k.startswith("pi.param_heads") for k in changed) and any(k.startswith("vf.") for k in changed)
        assert any(k.startswith("pi.filter_head") for k in changed) and "pi.log_std" not in changed
        # the averaged policy moved after each of the 3 updates, towards pi but not onto it
        assert int(module.policy_average_updates) == 3 and any(k.startswith("pi_average.param_heads") for k in changed)
        assert not torch.equal(module.pi_average.filter_head[0].weight, module.pi.filter_head[0].weight)
        runner = algo.env_runner.module  # env runners act with the learner's new weights
        for k, v in runner.state_dict().items():
            assert torch.equal(v, after[k]), k

        ckpt = algo.save_to_path(str(tmp_path / "ckpt"))
        out = export_policy(ckpt, tmp_path / "policy.exposure")
        policy = load_policy(out)
        rng = np.random.default_rng(0)
        image = rng.uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
        state = np.zeros((3, 11), np.float32)
        logits, actions = policy(image, state)
        with torch.no_grad():
            want_logits, want_means, _ = module.policy_heads(torch.from_numpy(image), torch.from_numpy(state))
        np.testing.assert_allclose(np.asarray(logits), want_logits.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(actions), want_means.clamp(-1, 1).numpy(), rtol=1e-4, atol=1e-5)
        algo.stop()

        restored = Algorithm.from_checkpoint(ckpt)  # resumes with the same networks and optimisers
        r_module = restored.learner_group._learner.module["default_policy"]
        for k, v in r_module.state_dict().items():
            assert torch.equal(v, after[k]), k
        assert np.isfinite(restored.train()["learners"]["default_policy"]["actor_loss"])
        # past the schedule's end (iteration T of T) the rates are lr(T) * lr_after_schedule
        restored.set_progress(10, 10)
        restored.train()
        r_opts = {name.split("_", 2)[-1]: o for name, o in restored.learner_group._learner._named_optimizers.items()}
        for name, base in (("policy", 1e-3), ("choice", 2e-3), ("value", 1e-2)):
            assert r_opts[name].param_groups[0]["lr"] == pytest.approx(base * 1e-3 * 0.5)
        restored.stop()
    finally:
        ray.kill(actor, no_restart=True)


@pytest.mark.slow
def test_exposure_train_command_runs_the_demo(ray_session, tmp_path):
    from typer.testing import CliRunner

    from tune_configs.cli import app

    res = CliRunner().invoke(
        app,
        ["train", "--algo", "exposure", "--demo", "--stop-iters", "6", "--eval-every", "6", "--results-dir",
         str(tmp_path), "--name", "ex", "--config", "discriminator.n_critic_warmup=2"],
    )
    assert res.exit_code == 0, res.output
    run = tmp_path / "ex"
    assert (run / "checkpoints" / "iter_000006" / "discriminator.pt").exists()
    assert (run / "checkpoints" / "best" / "exposure_run.json").exists()
    assert "Checkpoint to export (best validation)" in res.output and "auto-correction" in res.output
    rows = (run / "progress.csv").read_text().splitlines()
    # the critic is fed finished images only: the first episodes end at iteration 5 (64 envs, 5 steps)
    assert len(rows) == 7 and "wasserstein" in rows[0]
    assert rows[-1].split(",")[rows[0].split(",").index("wasserstein")] != ""  # metrics from inside the algorithm
