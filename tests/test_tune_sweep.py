"""``exposure train --tune``: the sweep varies the learning rates the chosen algorithm uses."""

from __future__ import annotations

import json

import pytest

from tune_configs.data import DataSpec
from tune_configs.overrides import apply_overrides
from tune_configs.recipes import get_recipe
from tune_configs.settings import TrainSettings


def test_the_sweep_scales_each_algorithms_own_rates():
    from tune_configs.tune_sweep import scaled_rates, trial_recipe

    demo = get_recipe("demo")  # exposure: policy, value and filter-choice rates
    assert scaled_rates(demo, 2.0) == {"policy_lr": 4e-4, "value_lr": 2e-3, "choice_lr": 2e-3}
    from rewards.schedule import base_lrs

    base = base_lrs()  # the exposure algorithm's own defaults; choice_lr None follows policy_lr
    assert scaled_rates(demo.replace(training={}), 0.5) == {"policy_lr": 0.5 * base["policy"], "value_lr": 0.5 * base["value"]}
    assert scaled_rates(get_recipe("demo-ppo"), 0.5) == {"lr": 2.5e-4}
    assert scaled_rates(get_recipe("demo-ppo").replace(algo="appo", training={}), 2.0) == {"lr": 6e-4}
    r = trial_recipe(demo, 0.5, 3)
    assert (r.training["policy_lr"], r.training["value_lr"], r.training["choice_lr"]) == (1e-4, 5e-4, 5e-4)
    assert r.discriminator["n_critic"] == 3 and demo.training["policy_lr"] == 2e-4


@pytest.mark.slow
def test_tune_trials_train_at_the_swept_rates(ray_session, tmp_path):
    """A real grid of 2 trials x 1 iteration of ``--algo exposure`` on the demo set."""
    from tune_configs.tune_sweep import run_tune

    recipe = get_recipe("demo").replace(stop_iters=1, stop_time=None, eval_every=1, checkpoint_freq=1)
    recipe = apply_overrides(recipe, ["run.train_eval_crops=0", "discriminator.n_critic_warmup=1", "discriminator.batch_size=16"])
    s = TrainSettings(DataSpec.demo(), recipe, name="sweep", results_dir=tmp_path, progress=False)
    best, metrics = run_tune(s, lr_factors=(0.5, 2.0), n_critic=(1,))
    results = {}
    for path in (s.run_dir / "tune").glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert len(rows) == 1 and rows[0]["iteration"] == 1
        results[rows[0]["config"]["lr_scale"]] = rows[0]
    assert sorted(results) == [0.5, 2.0]
    for scale, row in results.items():  # the learner's optimisers ran at the swept rates
        assert row["lr_policy"] == pytest.approx(2e-4 * scale, rel=1e-9)
        assert row["lr_value"] == pytest.approx(1e-3 * scale, rel=1e-9)
        assert row["lr_choice"] == pytest.approx(1e-3 * scale, rel=1e-9)
    assert results[2.0]["lr_policy"] == pytest.approx(4 * results[0.5]["lr_policy"], rel=1e-9)
    trials = sorted((s.run_dir / "trials").glob("*/run.json"))
    assert sorted(json.loads(p.read_text())["recipe"]["training"]["policy_lr"] for p in trials) == pytest.approx([1e-4, 4e-4])
    assert best["policy_lr"] == pytest.approx(2e-4 * best["lr_scale"]) and best["n_critic"] == 1
    assert metrics["hi"] == pytest.approx(results[best["lr_scale"]]["hi"])
