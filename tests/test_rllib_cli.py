"""The ``rllib`` command: experiments mapped onto the project's training, tuned examples, evaluate."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tune_configs.rllib_cli import app
from tune_configs.rllib_experiments import (
    TUNED_EXAMPLES_DIR,
    experiment_settings,
    read_tuned_examples,
    tuned_example_settings,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO_EXAMPLES = ("demo-ppo", "demo-appo", "demo-exposure")
FIVEK_EXAMPLES = ("fivek-ppo", "fivek-appo", "fivek-exposure")
#: Two cheap iterations on the demo set (the CI budget), as a --config JSON object.
TINY = {
    "discriminator": {"n_critic_warmup": 2, "n_critic": 1, "batch_size": 16},
    "run.train_eval_crops": 0,
}
TINY_PPO = {**TINY, "train_batch_size_per_learner": 128, "minibatch_size": 64, "num_epochs": 1, "num_envs_per_env_runner": 8}


def _train_options(**changes):
    """``exposure train``'s options for the demo set (what the tuned examples must agree with)."""
    options = dict(algo=None, demo=True, inputs=None, targets=None, fivek=None, fivek_limit=None, recipe=None,
                   stop_iters=None, stop_time=None, num_env_runners=None, num_envs_per_runner=None, num_gpus=0,
                   checkpoint_freq=None, eval_every=None, resume=None, config=[], name=None,
                   results_dir=Path("results"), seed=0, dashboard=False)
    options.update(changes)
    return options


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


# --------------------------------------------------------------------------- fast: no Ray
def test_rllib_is_a_console_script_of_this_project_and_not_of_ray():
    from importlib.metadata import distribution

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["rllib"] == "tune_configs.rllib_cli:app"
    ray_scripts = {e.name for e in distribution("ray").entry_points if e.group == "console_scripts"}
    assert "rllib" not in ray_scripts and "ray" in ray_scripts  # we restore it, we do not shadow Ray's
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "train" in help_text and "evaluate" in help_text


def test_an_experiment_maps_onto_the_recipe_and_the_run_settings():
    s = experiment_settings(
        "PPO", "exposure-v0",
        {"framework": "torch", "lr": 1e-4, "model_config": {"hidden": 32}, "discriminator": {"n_critic": 3},
         "env_config": {"fivek": "/data/fivek", "fivek_limit": 20, "max_steps": 3}, "run.eval_every": 7,
         "num_env_runners": 2, "num_envs_per_env_runner": 4, "num_gpus_per_learner": 0, "seed": 5},
        {"training_iteration": 7}, name="x", results_dir="/tmp/runs",
    )
    r = s.recipe
    assert (r.name, r.algo, r.training["lr"], r.model["hidden"], r.discriminator["n_critic"]) == ("fivek-ppo", "ppo", 1e-4, 32, 3)
    assert (r.env["max_steps"], r.eval_every, r.num_env_runners, r.num_envs_per_env_runner) == (3, 7, 2, 4)
    assert (r.stop_iters, r.stop_time) == (7, None)
    assert (s.data.source, s.data.root, s.data.limit, s.seed, s.run_name) == ("fivek", "/data/fivek", 20, 5, "x")
    assert s.run_dir == Path("/tmp/runs/x")
    both = experiment_settings("exposure", config={"env_config": {"demo_style": "faded"}},
                               stop={"training_iteration": 3, "time_total_s": 60})
    assert (both.recipe.name, both.recipe.stop_iters, both.recipe.stop_time, both.data.style) == ("demo", 3, 60.0, "faded")
    # no stop: the recipe's own budget; APPO takes PPO's demo recipe
    appo = experiment_settings("APPO")
    assert (appo.recipe.name, appo.recipe.algo, appo.recipe.stop_time, appo.recipe.stop_iters) == ("demo-ppo", "appo", 600.0, None)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "DQN"], "error: --algo: unknown algorithm 'DQN'; choose from ppo, appo, exposure"),
        (["--algo", "PPO", "--config", '{"lr": 1e-4,'], "error: --config: not valid JSON (Expecting property name "
                                                          "enclosed in double quotes: line 1 column 13 (char 12))"),
        (["--algo", "PPO", "--config", "[1, 2]"], "error: --config: expected a JSON object like '{\"lr\": 0.0003}', got list"),
        (["--algo", "PPO", "--config", '{"sgd_minibatch_size": 64}'],
         "error: --config sgd_minibatch_size: not a PPO training setting (use model.*, env.*, discriminator.* or run.* for others)"),
        (["--algo", "PPO", "--config", '{"lr": "fast"}'], "error: --config lr: expected a number, got 'fast'"),
        (["--algo", "PPO", "--config", '{"framework": "tf2"}'], "error: --config framework: only torch is supported, got 'tf2'"),
        (["--algo", "PPO", "--config", '{"num_env_runners": "two"}'], "error: --config num_env_runners: expected an integer, got 'two'"),
        (["--algo", "PPO", "--config", '{"env_config": {"fivek": "/x", "fivek_limit": 2.5}}'],
         "error: --config env_config.fivek_limit: expected an integer, got 2.5"),
        (["--algo", "PPO", "--stop", '{"env_runners/episode_return_mean": 1}'],
         "error: --stop env_runners/episode_return_mean: not supported; use training_iteration and/or time_total_s"),
        (["--algo", "PPO", "--stop", '{"training_iteration": 0}'], "error: --stop training_iteration: expected a positive number, got 0"),
        (["--algo", "PPO", "--env", "CartPole-v1"],
         "error: --env CartPole-v1: this project trains Exposure-v0 only (the photos go into config.env_config)"),
        ([], "error: --algo is required: PPO, APPO or exposure (or use: rllib train file X.yaml)"),
    ],
)
def test_bad_train_input_is_one_line(args, message, tmp_path):
    res = CliRunner().invoke(app, ["train", *args, "--storage-path", str(tmp_path)])
    assert res.exit_code == 2
    assert _error_lines(res) == [message]
    assert not any(tmp_path.iterdir())  # nothing was started or written


def test_bad_tuned_example_files_are_one_line(tmp_path):
    cases = {
        "not-yaml.yaml": ("a: [1, 2", "not a readable YAML file"),
        "list.yaml": ("- 1\n- 2\n", "expected 'NAME: {env: ..., run: ..., stop: ..., config: ...}'"),
        "extra.yaml": ("x:\n  run: PPO\n  num_samples: 4\n", "experiment 'x': unknown key 'num_samples' (use env, run, stop, config)"),
        "norun.yaml": ("x:\n  env: Exposure-v0\n", "experiment 'x' names no algorithm"),
        "badkey.yaml": ("x:\n  run: PPO\n  config:\n    no_such_key: 1\n", "x: --config no_such_key: not a PPO training setting"),
        "badalgo.yaml": ("x:\n  run: SAC\n", "x: --algo: unknown algorithm 'SAC'"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        res = CliRunner().invoke(app, ["train", "file", str(path), "--storage-path", str(tmp_path / "runs")])
        lines = _error_lines(res)
        assert res.exit_code == 2 and len(lines) == 1, (name, res.output)
        assert lines[0].startswith(f"error: {path}: ") and message in lines[0], (name, lines)
    res = CliRunner().invoke(app, ["train", "file", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2 and "no such file (bundled tuned examples: demo-appo.yaml, demo-exposure.yaml" in res.output
    assert not (tmp_path / "runs").exists()


def test_tuned_examples_are_the_recipes_exposure_train_uses():
    """Each demo example states its recipe's settings: the run it builds is `exposure train --demo --algo X`'s."""
    from tune_configs.commands.train_cmd import settings_from_options

    files = sorted(p.stem for p in TUNED_EXAMPLES_DIR.glob("*.yaml"))
    assert files == sorted(DEMO_EXAMPLES + FIVEK_EXAMPLES)
    for name in DEMO_EXAMPLES:
        (exp_name, exp), = read_tuned_examples(TUNED_EXAMPLES_DIR / f"{name}.yaml").items()
        assert exp_name == name and exp["env"] == "Exposure-v0"
        s, = tuned_example_settings(f"{name}.yaml")  # a bundled example found by its file name
        algo = name.split("-")[1]
        ref = settings_from_options(**_train_options(algo=algo))
        assert s.recipe == ref.recipe, name
        assert s.data == ref.data and s.run_name == name and s.num_gpus == 0


@pytest.mark.parametrize("name", FIVEK_EXAMPLES)
def test_fivek_tuned_examples_parse_and_build(name, tmp_path):
    """FiveK examples (no FiveK here): their settings and the algorithm config RLlib would build."""
    from tune_configs.algorithms import build_config
    from tune_configs.recipes import get_recipe

    s, = tuned_example_settings(TUNED_EXAMPLES_DIR / f"{name}.yaml", results_dir=tmp_path)
    algo = name.split("-")[1]
    r, base = s.recipe, get_recipe("fivek" if algo == "exposure" else "fivek-ppo")
    assert (s.data.source, s.data.root, s.num_gpus, r.algo, r.model) == ("fivek", "/data/fivek", 1, algo, {"preset": "paper"})
    assert (r.stop_iters, r.stop_time, r.checkpoint_freq, r.eval_every) == (base.stop_iters, None, base.checkpoint_freq, base.eval_every)
    assert r.training.keys() == base.training.keys()
    for key, value in base.training.items():
        assert r.training[key] == pytest.approx(value), key
    env = {"inputs": str(tmp_path / "in.npz"), "scorer": {"kind": "discriminator", "name": "d"}}
    cfg = build_config(r.algo, env, model_config=r.model, training=r.training, num_env_runners=r.num_env_runners,
                       num_envs_per_env_runner=r.num_envs_per_env_runner)
    cfg.validate()
    assert cfg.num_env_runners == (0 if algo == "exposure" else 4)
    if algo != "exposure":
        assert cfg.lr == pytest.approx(1.5e-4) and cfg.train_batch_size_per_learner == 4096


# --------------------------------------------------------------------------- slow: Ray
@pytest.mark.slow
@pytest.mark.parametrize("name", DEMO_EXAMPLES)
def test_demo_tuned_example_runs_two_iterations(name, ray_session, tmp_path):
    tiny = TINY if name.endswith("exposure") else TINY_PPO
    res = CliRunner().invoke(app, ["train", "file", f"{TUNED_EXAMPLES_DIR / name}.yaml", "--stop", '{"training_iteration": 2}',
                                   "--config", json.dumps(tiny), "--storage-path", str(tmp_path)])
    assert res.exit_code == 0, res.output
    run = tmp_path / name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2
    if name != "demo-appo":  # APPO samples asynchronously: its first results may come after 2 iterations
        assert summary["env_steps"] > 0
    assert (run / "checkpoints" / "iter_000002" / "exposure_run.json").is_file()
    info = json.loads((run / "checkpoints" / "iter_000002" / "exposure_run.json").read_text())
    assert info["algo"] == name.split("-")[1] and info["recipe"]["stop_iters"] == 2
    assert "Trained 2 iterations" in res.output and "Checkpoint to export (best validation)" in res.output


@pytest.mark.slow
def test_rllib_train_then_evaluate_prints_the_runs_scores(ray_session, tmp_path):
    res = CliRunner().invoke(app, ["train", "--algo", "PPO", "--env", "Exposure-v0", "--config", json.dumps(TINY_PPO),
                                   "--stop", '{"training_iteration": 2}', "--name", "cli", "--storage-path", str(tmp_path)])
    assert res.exit_code == 0, res.output
    run = tmp_path / "cli"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2
    final = summary["final_scores"]

    res = CliRunner().invoke(app, ["evaluate", str(run), "--algo", "PPO"])  # the run folder: its newest checkpoint
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == f"{run / 'checkpoints' / 'iter_000002'}: PPO after 2 iterations"
    row = next(line for line in lines if line.strip().startswith("policy, last (iteration 2)"))
    assert row.split()[4:6] == [f"{final['hi']:.1f}", f"{final['psnr']:.2f}"]
    assert any(line.strip().startswith("untouched inputs") for line in lines)

    from tune_configs.rllib_experiments import evaluate_checkpoint

    _, again = evaluate_checkpoint(run / "checkpoints" / "iter_000002")
    for key in ("hi", "psnr", "delta_e2000"):
        assert again.final_scores[key] == pytest.approx(final[key], rel=1e-5, abs=1e-6), key
    assert again.baseline_scores["hi"] == pytest.approx(summary["baseline_scores"]["hi"], rel=1e-9)
    wrong = CliRunner().invoke(app, ["evaluate", str(run), "--algo", "exposure"])
    assert wrong.exit_code == 2 and _error_lines(wrong) == [
        f"error: --algo exposure: {run / 'checkpoints' / 'iter_000002'} was trained with ppo"]
