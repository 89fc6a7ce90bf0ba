"""Training configs, the run loop, checkpoints / resume, TensorBoard and fail-fast checks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tune_configs.data import DataSpec
from tune_configs.overrides import apply_overrides, parse_value
from tune_configs.recipes import Recipe, get_recipe
from tune_configs.run_loop import run_training
from tune_configs.settings import ConfigError, TrainSettings, parse_duration


def tiny_recipe(**changes) -> Recipe:
    """Two short PPO iterations on the demo data (the CI budget)."""
    r = get_recipe("demo-ppo").replace(
        stop_iters=2, stop_time=None, eval_every=2, checkpoint_freq=2, num_env_runners=1, num_envs_per_env_runner=8
    )
    r = apply_overrides(
        r,
        [
            "train_batch_size_per_learner=128",
            "minibatch_size=64",
            "num_epochs=1",
            "discriminator.n_critic_warmup=2",
            "discriminator.n_critic=1",
            "discriminator.batch_size=16",
        ],
    )
    return r.replace(**changes)


# --------------------------------------------------------------------------- fast: no Ray
def test_parse_values_and_durations():
    assert parse_value("1e-4") == 1e-4 and parse_value("[16, 32]") == [16, 32]
    assert parse_value("true") is True and parse_value("abc") == "abc"
    assert parse_value(" FALSE ") is False and parse_value("none") is None and parse_value("'x y'") == "x y"
    assert parse_duration("90") == 90 and parse_duration("10m") == 600 and parse_duration("1.5h") == 5400
    assert parse_duration("45s") == 45.0 and parse_duration(7) == 7.0 and parse_duration(None) is None
    with pytest.raises(ValueError, match="stop-time"):
        parse_duration("5x")
    with pytest.raises(ValueError, match="positive"):
        parse_duration("0m")


def test_overrides_are_typed_and_validated():
    r = apply_overrides(get_recipe("demo-ppo"), ["lr=1e-4", "num_epochs=3", "model.hidden=32", "env.reward_scale=0.2",
                                             "discriminator.n_critic=2", "run.eval_every=7"])
    assert r.training["lr"] == 1e-4 and r.training["num_epochs"] == 3 and isinstance(r.training["num_epochs"], int)
    assert r.model["hidden"] == 32 and r.env["reward_scale"] == 0.2
    assert r.discriminator["n_critic"] == 2 and r.eval_every == 7
    assert get_recipe("demo-ppo").training["lr"] == 5e-4 and "hidden" not in get_recipe("demo-ppo").model  # a copy changed
    r = apply_overrides(get_recipe("demo"), ["run.stop_time=10m", "env.filters=['E', 'G']", "env.reward_scale=1",
                                             "discriminator.channels=[8, 16]", "run.stop_iters=3", "choice_lr=none"])
    assert r.stop_time == 600.0 and r.stop_iters == 3 and r.env["filters"] == ("E", "G")
    assert r.env["reward_scale"] == 1.0 and isinstance(r.env["reward_scale"], float)
    assert r.discriminator["channels"] == (8, 16) and r.training["choice_lr"] is None
    for bad, match in [
        ("bogus=1", "bogus"),
        ("lr=abc", "lr"),
        ("model.hidden=1.5", "integer"),
        ("model.nope=1", "model setting"),
        ("discriminator.n_critic=-1", "n_critic"),
        ("env.reward_scale=[1]", "number"),
        ("noequals", "KEY=VALUE"),
        ("run.stop_iters=x", "number"),
        ("env.scorer=magic", "one of discriminator, statistics, paired"),
        ("env.max_steps=0", "max_steps must be an integer >= 1"),
        ("env.filters=['E', 'Q']", "unknown filter 'Q'"),
        ("env.source='x.npz'", "unknown env setting"),
        ("run.name=x", "unknown run setting"),
        ("run.algo=sac", "unknown algorithm"),
        ("nogroup.x=1", "unknown group"),
    ]:
        with pytest.raises(ValueError, match=match):
            apply_overrides(get_recipe("demo-ppo"), [bad])


def test_config_keys_come_from_the_typed_configs():
    """--config keys, types and defaults are the dataclasses' fields: EnvConfig, RewardSource, DiscriminatorConfig."""
    import dataclasses

    from exposure_env.env_config import EnvConfig
    from rewards.discriminator import DiscriminatorConfig
    from tune_configs.overrides import describe_keys, group_keys
    from tune_configs.rllib_env import TASK_KEYS, RewardSource

    recipe = get_recipe("demo")
    env = group_keys("env", recipe)
    assert TASK_KEYS == ("filters", "max_steps", "thumb_size", "reward_scale", "overexposure_weight", "reuse_penalty")
    assert set(env) == set(TASK_KEYS) | {"scorer", "critic_fakes"}
    assert {k: env[k].default for k in TASK_KEYS} == {k: getattr(EnvConfig(), k) for k in TASK_KEYS}
    assert env["scorer"].default == RewardSource().scorer == "discriminator" and env["critic_fakes"].default == "all"
    disc = group_keys("discriminator", recipe)
    assert {k: v.default for k, v in disc.items()} == dataclasses.asdict(DiscriminatorConfig())
    run = group_keys("run", recipe)
    assert set(run) == {f.name for f in dataclasses.fields(Recipe)} - {"name", "training", "model", "env", "discriminator"}
    assert run["stop_time"].default is None and run["train_eval_crops"].default == 64
    training = group_keys("training", recipe)
    assert training["policy_lr"].default is not None and training["update"].default == "episode"
    lines = describe_keys(recipe)
    assert "env.reward_scale  float = 0.1  weight of the score gain in the reward (>= 0)" in lines
    assert "run.stop_time  float | None = 600.0  stop after this many seconds (10m, 1h)" in lines
    assert "policy_lr  float | None = 0.0002" in lines


def test_recipes_resolve_to_the_algorithms_defaults(tmp_path):
    """Recipes name only what they change; the built configs carry the algorithm's defaults."""
    from tune_configs.algorithms import PPO_DEFAULTS, build_config, training_defaults

    env = {"inputs": str(tmp_path / "in.npz"), "scorer": {"kind": "discriminator", "name": "d"}}
    demo_ppo = get_recipe("demo-ppo")
    for algo in ("ppo", "appo"):
        cfg = build_config(algo, env, model_config=demo_ppo.model, training=demo_ppo.training, num_env_runners=1)
        assert (cfg.lr, cfg.gamma, cfg.lambda_, cfg.clip_param, cfg.vf_loss_coeff, cfg.grad_clip) == (5e-4, 1.0, 0.95, 0.2, 1.0, 1.0)
        assert cfg.entropy_coeff == 0.01 and cfg.train_batch_size_per_learner == 640
    assert cfg.minibatch_size != 160  # PPO's minibatching does not reach APPO
    assert training_defaults("ppo")["lr"] == PPO_DEFAULTS["lr"] == 3e-4
    laptop, demo = get_recipe("laptop"), get_recipe("demo")
    assert demo_ppo.env == laptop.env == {"reward_scale": 0.1, "critic_fakes": "final"}
    assert demo_ppo.discriminator == laptop.discriminator and demo.replace(name="laptop", stop_time=900.0) == laptop
    assert (demo_ppo.num_env_runners, demo_ppo.num_envs_per_env_runner, demo_ppo.stop_time, demo_ppo.eval_every,
            demo_ppo.lr_final_fraction) == (1, 32, 600.0, 5, 0.2)
    fivek = build_config("exposure", env, model_config={"preset": "small"}, training=get_recipe("fivek").training, num_env_runners=0)
    assert (fivek.update, fivek.lr_decay, fivek.total_iterations) == ("episode", True, 20_000)
    assert get_recipe("fivek-ppo").model == get_recipe("fivek").model == {"preset": "paper"}


def test_schedules_span_at_most_schedule_iterations():
    """The CPU recipes' lr decay and entropy fade end after ``schedule_iterations`` however long
    the budget; before that a time budget's length is estimated from the pace so far."""
    from tune_configs.recipes import LAPTOP_SCHEDULE_ITERATIONS
    from tune_configs.run_loop import planned_iterations, run_progress

    demo = get_recipe("demo")
    assert demo.schedule_iterations == get_recipe("laptop").schedule_iterations == LAPTOP_SCHEDULE_ITERATIONS == 400
    assert get_recipe("demo-ppo").schedule_iterations is None and get_recipe("fivek").schedule_iterations is None
    # a 5-minute run at ~1.27 iterations/s plans ~380 iterations: under the cap, unchanged
    short = demo.replace(stop_time=300.0)
    assert planned_iterations(short, 189, 150.0) == 380
    assert run_progress(short, 189, 150.0) == pytest.approx(0.5)
    # the 10-minute demo at that pace would plan ~760: its schedules end at 400
    assert planned_iterations(demo, 189, 150.0) == 400
    # a 2-hour budget at the same pace would plan 9,120; the cap holds it at 400
    long = demo.replace(stop_time=7200.0)
    assert planned_iterations(long, 189, 150.0) == 400
    assert run_progress(long, 200, 157.0) == pytest.approx(0.5)
    assert run_progress(long, 600, 470.0) == 1.0
    uncapped = long.replace(schedule_iterations=None)
    assert planned_iterations(uncapped, 189, 150.0) == 9120
    assert run_progress(uncapped, 200, 157.0) == pytest.approx(157.0 / 7200.0)
    # an iteration budget under the cap is the schedule's length
    assert planned_iterations(demo.replace(stop_iters=50, stop_time=None), 10, 5.0) == 50


def test_env_config_for_a_recipe_and_the_env_it_builds(tmp_path):
    """recipe env group -> env_config -> the vector env RLlib builds, with EnvConfig's defaults."""
    from types import SimpleNamespace

    from exposure_env.datasets.pack import ImagePack
    from tune_configs.rllib_env import check_env_config, env_spaces, make_vector_env
    from tune_configs.wiring import env_config_for

    rng = np.random.default_rng(0)
    pack = ImagePack(rng.uniform(0, 1, (4, 80, 80, 3)).astype(np.float32))
    data = SimpleNamespace(inputs=pack.save(tmp_path / "in.npz"), targets=pack.save(tmp_path / "targets.npz"))
    recipe = apply_overrides(get_recipe("demo"), ["env.max_steps=3", "env.filters=['E', 'G', 'W']"])
    assert env_config_for(recipe, data, "d1") == {
        "inputs": str(data.inputs), "scorer": {"kind": "discriminator", "name": "d1", "feed": "final"},
        "reward_scale": 0.1, "max_steps": 3, "filters": ("E", "G", "W"),
    }
    stats = env_config_for(apply_overrides(recipe, ["env.scorer=statistics"]), data, "unused")
    assert stats["scorer"] == {"kind": "statistics", "targets": str(data.targets)}
    check_env_config(stats)
    env = make_vector_env({**stats, "num_envs": 2})
    config = env.unwrapped.config
    assert (config.max_steps, config.thumb_size, config.reward_scale, config.reuse_penalty) == (3, 64, 0.1, 1.0)
    assert config.filters == ("E", "G", "W") and env.num_envs == 2
    obs_space, _ = env_spaces(stats)
    assert obs_space["state"].shape == env.single_observation_space["state"].shape
    for bad, match in [({**stats, "reward": 1}, "unknown key"), ({**stats, "max_steps": 0}, "max_steps"),
                       ({**stats, "filters": ["Q"]}, "unknown filter")]:
        with pytest.raises(ValueError, match=match):
            check_env_config(bad)


def test_config_fields_fault_tolerance_and_resources(tmp_path):
    from tune_configs.algorithms import build_config
    from tune_configs.rllib_env import ENV_NAME

    env = {"inputs": str(tmp_path / "in.npz"), "scorer": {"kind": "discriminator", "name": "d"}}
    cfg = build_config("ppo", env, model_config={"preset": "small"}, num_env_runners=2, num_envs_per_env_runner=4)
    assert cfg.env == ENV_NAME and cfg.gym_env_vectorize_mode == "vector_entry_point"
    assert cfg.num_env_runners == 2 and cfg.num_envs_per_env_runner == 4 and cfg.num_gpus_per_env_runner == 0
    assert cfg.restart_failed_env_runners and cfg.restart_failed_sub_environments
    assert cfg.max_num_env_runner_restarts >= 10
    assert cfg.num_learners == 0 and cfg.num_gpus_per_learner == 0 and cfg.gamma == 1.0
    assert cfg.learner_class.__name__ == "CriticOverlapPPOLearner"
    assert cfg.enable_rl_module_and_learner and cfg.enable_env_runner_and_connector_v2
    appo = build_config("appo", env, num_env_runners=1, num_gpus=1)
    assert appo.num_gpus_per_learner == 1 and appo.restart_failed_env_runners
    for algo, runners, match in [("dqn", 1, "unknown algorithm"), ("appo", 0, "num_env_runners")]:
        with pytest.raises(ValueError, match=match):
            build_config(algo, env, num_env_runners=runners)
    with pytest.raises(ValueError, match="scorer"):
        build_config("ppo", {"inputs": "x", "scorer": {"kind": "magic"}})


def test_appo_accepts_the_ppo_demo_recipe(tmp_path):
    """`exposure train --algo appo --demo`: PPO's minibatch/epoch keys must not reach APPO's validation."""
    from tune_configs.algorithms import build_config
    from tune_configs.recipes import get_recipe

    env = {"inputs": str(tmp_path / "in.npz"), "scorer": {"kind": "discriminator", "name": "d"}}
    recipe = get_recipe("demo-ppo")
    assert "minibatch_size" in recipe.training  # the case this guards
    cfg = build_config("appo", env, model_config=recipe.model, training=recipe.training, num_env_runners=1)
    cfg.validate()  # raised TypeError (minibatch_size % "auto") before the fix
    assert cfg.lr == recipe.training["lr"]


@pytest.fixture
def no_ray_start(monkeypatch):
    """Fail the test if anything tries to start Ray; check it is not running afterwards."""
    import ray

    import tune_configs.run_loop as run_loop

    was = ray.is_initialized()

    def forbidden(*a, **k):
        raise AssertionError("Ray was started for a configuration that should have been rejected")

    monkeypatch.setattr(run_loop, "init_ray", forbidden)
    monkeypatch.setattr(ray, "init", forbidden)
    yield
    assert ray.is_initialized() == was
    if not was:
        assert not ray.is_initialized()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda t: TrainSettings(DataSpec.folders(t / "missing", t), tiny_recipe(), results_dir=t), "inputs folder not found"),
        (lambda t: TrainSettings(DataSpec.folders(t / "empty", t), tiny_recipe(), results_dir=t), "no photos"),
        (lambda t: TrainSettings(DataSpec.fivek(t / "nofivek"), tiny_recipe(), results_dir=t), "FiveK folder not found"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(), num_gpus=64, results_dir=t), "CUDA GPU"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(num_env_runners=512), results_dir=t), "CPUs"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(algo="sac"), results_dir=t), "unknown algorithm"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(stop_iters=None), results_dir=t), "stopping rule"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(schedule_iterations=0), results_dir=t), "schedule_iterations"),
        (lambda t: TrainSettings(DataSpec.demo(), tiny_recipe(), resume=t / "nothing", results_dir=t), "not a checkpoint"),
    ],
)
def test_bad_config_fails_before_ray_starts(tmp_path, no_ray_start, make, match):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=match) as info:
        run_training(make(tmp_path))
    assert "\n" not in str(info.value)


def test_cli_bad_config_one_line(tmp_path, no_ray_start):
    from typer.testing import CliRunner

    from tune_configs.cli import app

    res = CliRunner().invoke(app, ["train", "--demo", "--config", "lr=fast", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert lines == ["error: --config lr: expected a number, got 'fast'"]


# --------------------------------------------------------------------------- slow: Ray
def _events(tb_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def _module_state(checkpoint: Path) -> dict:
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(checkpoint / "learner_group" / "learner" / "rl_module" / "default_policy")
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def trained_run(ray_session, tmp_path_factory):
    """Two PPO iterations with the discriminator actor; shared by the slow tests."""
    out = tmp_path_factory.mktemp("runs")
    s = TrainSettings(DataSpec.demo(), tiny_recipe(), name="ppo-tiny", results_dir=out, progress=False)
    return s, run_training(s)


@pytest.mark.slow
def test_ppo_trains_with_discriminator_and_logs(trained_run):
    s, summary = trained_run
    assert summary.iterations == 2 and summary.env_steps >= 256
    assert "psnr" in summary.final_scores and summary.final_scores["psnr"] > 0
    assert summary.best_checkpoint is not None and (summary.best_checkpoint / "exposure_run.json").is_file()
    assert summary.best_scores["psnr"] >= summary.final_scores["psnr"] - 1e-9  # best is the best evaluated
    run = s.run_dir
    ckpt = summary.checkpoint
    assert ckpt == run / "checkpoints" / "iter_000002" or ckpt.resolve() == (run / "checkpoints" / "iter_000002").resolve()
    assert (ckpt / "discriminator.pt").is_file() and (ckpt / "exposure_run.json").is_file()
    assert (ckpt / "learner_group" / "learner" / "rl_module" / "default_policy").is_dir()
    curve = (run / "hi_curve.csv").read_text().splitlines()
    assert curve[0].startswith("wall_s,iteration") and len(curve) >= 2
    acc = _events(run / "tb")
    scalars, images = set(acc.Tags()["scalars"]), set(acc.Tags()["images"])
    for tag in ["episode/return_mean", "discriminator/wasserstein", "discriminator/gp", "discriminator/grad_norm",
                "eval/hi", "eval/hi_inputs", "eval/filter_freq/step1/E", "perf/iteration_s", "learner/policy_loss"]:
        assert tag in scalars, tag
    assert any(t.startswith("eval/param_mean/") for t in scalars)
    assert "strips/val0" in images
    # the critic trained every iteration on the episodes' final images (fed by the callbacks)
    assert all(e.value > 0 for e in acc.Scalars("discriminator/updates"))
    assert acc.Scalars("discriminator/pool_size")[-1].value > 0
    summary_json = json.loads((run / "summary.json").read_text())
    assert summary_json["iterations"] == 2
    # every record of the run holds the numbers the run measured
    final, base = summary.final_scores, summary.baseline_scores
    assert summary.best_iteration == 2 and summary.best_scores == final  # one validation, at the end
    for key in ("hi", "psnr", "delta_e"):
        assert summary_json["final_scores"][key] == pytest.approx(float(final[key]), rel=1e-12)
        assert acc.Scalars(f"eval/{key}")[-1].step == 2
        assert acc.Scalars(f"eval/{key}")[-1].value == pytest.approx(float(final[key]), rel=1e-6)
        assert acc.Scalars(f"eval/{key}_inputs")[-1].value == pytest.approx(float(base[key]), rel=1e-6)
    assert summary_json["best_iteration"] == 2 and summary_json["env_steps"] == summary.env_steps
    last = dict(zip(curve[0].split(","), curve[-1].split(",")))
    assert last["iteration"] == "2" and last["hi"] == f"{final['hi']:.3f}" and last["hi_inputs"] == f"{base['hi']:.3f}"
    with open(run / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [1, 2] and int(rows[-1]["env_steps"]) == summary.env_steps
    assert float(rows[-1]["hi"]) == pytest.approx(float(final["hi"]), rel=1e-12) and rows[0]["hi"] == ""
    assert summary.timings["train_s"] == pytest.approx(sum(float(r["train_s"]) for r in rows), abs=0.01)
    # the best checkpoint holds the final weights, and they reproduce the validation scores
    best_state, last_state = _module_state(summary.best_checkpoint), _module_state(ckpt)
    assert best_state.keys() == last_state.keys()
    assert all(np.array_equal(best_state[k].numpy(), last_state[k].numpy()) for k in best_state)
    assert summary_json["best_checkpoint"] == str(summary.best_checkpoint)
    from ray.rllib.core.rl_module.rl_module import RLModule

    from tune_configs.data import prepare_data
    from tune_configs.wiring import make_validator

    validator = make_validator(s, prepare_data(s.data, run / "data"))
    module = RLModule.from_checkpoint(summary.best_checkpoint / "learner_group" / "learner" / "rl_module" / "default_policy")
    again = validator.evaluate(module)["scores"]
    for key in ("hi", "psnr", "delta_e2000", "psnr_auto"):
        assert again[key] == pytest.approx(float(final[key]), rel=1e-5, abs=1e-6), key
    assert validator.baseline()["hi"] == pytest.approx(float(base["hi"]), rel=1e-9)


@pytest.mark.slow
def test_resume_restores_policy_value_and_discriminator(trained_run, tmp_path):
    import shutil

    import torch

    s, summary = trained_run
    ckpt = summary.checkpoint
    saved = tmp_path / "saved"
    shutil.copytree(ckpt, saved)  # the resumed run rewrites its checkpoint
    before = _module_state(saved)
    assert any(k.startswith("vf.") for k in before) and any(k.startswith("pi.") for k in before)
    # resume with the same iteration budget: restore, no training, final checkpoint written
    resumed = TrainSettings(s.data, s.recipe, name="ppo-tiny", results_dir=s.results_dir, resume=saved, progress=False)
    out = run_training(resumed)
    assert out.iterations == 2
    after = _module_state(out.checkpoint)
    assert before.keys() == after.keys()
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0, msg=k)
    d_before = torch.load(saved / "discriminator.pt", weights_only=False)
    d_after = torch.load(out.checkpoint / "discriminator.pt", weights_only=False)
    for k, v in d_before["model"].items():
        torch.testing.assert_close(d_after["model"][k], v, rtol=0, atol=0)
    assert d_after["train_calls"] == d_before["train_calls"]
    assert len(d_after["pool"]["data"]) == len(d_before["pool"]["data"])


@pytest.mark.slow
def test_killed_discriminator_restarts_with_its_state_and_training_goes_on(ray_session, tmp_path):
    """Kill the critic actor between iterations: Ray restarts it, it restores its last state, the run finishes."""
    import ray

    seen = {}

    def report(metrics):
        if metrics.get("iteration") != 2 or seen:
            return
        names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "ppo-kill" in a["name"]]
        assert len(names) == 1
        actor = ray.get_actor(names[0])
        before = ray.get(actor.get_weights.remote())
        pid = ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid()))
        ray.kill(actor, no_restart=False)
        after = ray.get(actor.get_weights.remote())  # waits for the restart
        seen["pid"] = (pid, ray.get(actor.__ray_call__.remote(lambda self: __import__("os").getpid())))
        for k, v in before.items():
            np.testing.assert_array_equal(np.asarray(after[k]), np.asarray(v), err_msg=k)
        seen["ok"] = True

    recipe = tiny_recipe().replace(stop_iters=3)
    s = TrainSettings(DataSpec.demo(), recipe, name="ppo-kill", results_dir=tmp_path, progress=False)
    summary = run_training(s, report=report)
    assert seen.get("ok") and seen["pid"][0] != seen["pid"][1]
    assert summary.iterations == 3


@pytest.mark.slow
def test_appo_trains_with_discriminator(ray_session, tmp_path):
    import ray

    from rewards.actor import get_or_create_discriminator
    from tune_configs.algorithms import build_config
    from tune_configs.data import prepare_data

    data = prepare_data(DataSpec.demo(), tmp_path / "data")
    disc = get_or_create_discriminator("appo-test-critic", str(data.targets), {"batch_size": 16, "n_critic_warmup": 1})
    # feed="final": the env only scores; the callbacks send episodes' final images to the pool
    env = {"inputs": str(data.inputs), "scorer": {"kind": "discriminator", "name": "appo-test-critic", "feed": "final"}}
    cfg = build_config("appo", env, model_config={"preset": "small"}, training={"train_batch_size_per_learner": 64},
                       num_env_runners=1, num_envs_per_env_runner=8, seed=0)
    cfg = cfg.reporting(min_time_s_per_iteration=3)
    algo = cfg.build_algo()
    try:
        sampled, learned = 0, False
        for _ in range(20):  # APPO is asynchronous: results arrive over a few iterations (env-runner start-up: ~30 s on a loaded 2-CPU machine)
            result = algo.train()
            sampled = max(sampled, result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0) or 0)
            learned = learned or bool(result.get("learners", {}).get("default_policy"))
            if sampled and learned:
                break
        assert sampled > 0 and learned
        counters = ray.get(disc.metrics.remote())
        assert counters["images_scored"] > counters["fakes_added"] > 0  # only final images pooled
        metrics = ray.get(disc.train.remote(0, 10))
        assert metrics["updates"] == 1 and np.isfinite(metrics["wasserstein"])
    finally:
        algo.stop()
        ray.kill(disc, no_restart=True)


def test_dashboard_needs_its_packages(tmp_path, no_ray_start):
    try:
        import ray.dashboard.optional_deps  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ray[default] is installed: --dashboard would start")
    s = TrainSettings(DataSpec.demo(), tiny_recipe(), results_dir=tmp_path, dashboard=True)
    with pytest.raises(ConfigError, match="dashboard"):
        run_training(s)
