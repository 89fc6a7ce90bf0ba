"""benchmarks/quality.py: the pieces that decide what is trained and how it is reported (no training)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from benchmarks import quality
from policies.baselines import BASELINES, ORACLE


def test_default_settings_are_the_demo_commands(tmp_path):
    from tune_configs.commands.train_cmd import settings_from_options

    style = quality.demo_styles()[-1]
    s = quality.default_settings(style, 2, 90.0, tmp_path, "q")
    ref = quality._call_with_defaults(settings_from_options, demo=True, demo_style=style, config=[], num_gpus=0, seed=2,
                                      dashboard=False, name="q", results_dir=tmp_path)
    assert s.recipe.algo == ref.recipe.algo and s.recipe.name == ref.recipe.name  # not hard-coded
    assert s.recipe.training == ref.recipe.training and s.recipe.env == ref.recipe.env
    assert s.recipe.stop_time == 90.0 and s.recipe.stop_iters is None and not s.progress
    assert s.data == ref.data and s.seed == 2
    assert quality.default_settings(style, 0, None, tmp_path, "q").recipe.stop_time == ref.recipe.stop_time


def test_heldout_photos_are_every_scene_in_several_degradation_draws(tmp_path):
    from exposure_env.datasets.demo import get_style

    style = quality.demo_styles()[0]
    scenes = list(get_style(style).split.val)
    names, inputs, truths, targets = quality.heldout_photos(style, tmp_path, seeds=(0, 1))
    assert names == [f"{n}@0" for n in scenes] + [f"{n}@1" for n in scenes]
    assert len(inputs) == len(truths) == 2 * len(scenes) and len(targets) == len(get_style(style).split.targets)
    k = len(scenes)
    for i in range(k):  # the same scene, another RAW-like draw: other pixels, same framing
        assert inputs[i].shape == inputs[i + k].shape and truths[i].shape == inputs[i].shape
        assert np.abs(inputs[i] - inputs[i + k]).mean() > 1e-3
    assert quality.EVAL_SEEDS[0] == 0 and len(quality.EVAL_SEEDS) >= 3


def _fake_run(run_dir, evals):
    """A run folder as the run loop writes it: progress.csv, hi_curve.csv and TensorBoard eval/psnr."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True)
    with open(run_dir / "progress.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "wall_s", "train_s", "discriminator_s"])
        for it, wall, _, _ in evals:
            w.writerow([it, wall, 1.0, 0.0])
    with open(run_dir / "hi_curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wall_s", "iteration", "env_steps", "hi", "hi_luminance", "hi_contrast", "hi_saturation", "hi_inputs", "hi_train"])
        for it, wall, hi, _ in evals:
            w.writerow([wall, it, 10 * it, hi, hi, hi, hi, 20.0, ""])
    writer = SummaryWriter(str(run_dir / "tb"))
    for it, _, _, psnr in evals:
        writer.add_scalar("eval/psnr", psnr, it)
    writer.close()


def test_validation_curve_reads_the_runs_own_log(tmp_path):
    _fake_run(tmp_path / "r", [(5, 30.0, 25.0, 15.0), (10, 62.0, 30.0, 18.0), (15, 101.0, 35.0, 21.0)])
    curve = quality.validation_curve(str(tmp_path / "r"), budget_s=100.0)
    by_at = {p["at"]: p for p in curve}
    assert np.isnan(by_at[0.1]["hi"])  # nothing evaluated in the first 10 s
    assert by_at[0.5]["hi"] == 25.0 and by_at[0.75]["psnr"] == pytest.approx(18.0)
    assert by_at[1.0]["hi"] == 35.0 and by_at[1.0]["wall_s"] == 101.0  # the end: the last evaluation, even past the budget


def _row(psnr, de):
    return {"psnr": psnr, "delta_e": de, "delta_e2000": de / 2, "hi": 40.0, "a_bias": 0.1, "b_bias": -0.2, "neutral_chroma_shift": 1.0}


def test_style_report_mean_worst_and_targets():
    gamma, auto = list(BASELINES)
    refs = {gamma: _row(15.0, 20.0), auto: _row(22.0, 12.0), ORACLE: _row(31.0, 3.0), "_oracle_s_per_photo": 4.0,
            "_names": ["a@0", "b@0", "a@1", "b@1"]}
    curve = [{"at": f, "wall_s": 10.0, "hi": 30.0, "psnr": 20.0, "hi_inputs": 21.0} for f in quality.CURVE_AT]
    runs = [{"seed": s, "heldout": _row(p, 6.0), "curve": curve, "iterations": 9, "elapsed_s": 60.0, "load_start": 1.0,
             "load_end": 2.0, "final_scores": {"psnr_auto": 22.5, "hi_auto": 41.0}, "algo": "ppo", "recipe": "demo"}
            for s, p in ((0, 29.0), (1, 26.0), (2, 29.0))]
    md = quality.style_report("expert", refs, runs, 60.0)
    assert "| policy, mean of 3 seed(s) | 28.00 | 6.00 |" in md
    assert "| policy, worst seed (1) | 26.00 |" in md
    assert f"| {ORACLE} | 31.00 |" in md
    assert "mean PSNR >= 25 dB **yes**" in md and "within 2 dB of the oracle **no**" in md
    assert "worst seed within 1.5 dB of the mean **no**" in md
    assert "auto-correction on the same crops: PSNR 22.50 dB" in md
    assert "photos at full resolution: a, b (never trained on), each in 2 RAW-like degradation draws (4 photos)" in md


def _quick_scoring(monkeypatch):
    """One degradation draw and fixed reference rows (no oracle fits): held-out scoring in seconds."""
    gamma, auto = list(BASELINES)
    monkeypatch.setattr(quality, "EVAL_SEEDS", (0,))
    monkeypatch.setattr(quality, "score_references", lambda photos, _settings: {
        gamma: _row(15.0, 20.0), auto: _row(22.0, 12.0), ORACLE: _row(31.0, 3.0), "_oracle_s_per_photo": 1.0})


def test_rescore_scores_an_earlier_runs_policies_again(tmp_path, monkeypatch):
    import json

    from policies.export import export_policy
    from tests.policy_fixtures import tiny_module

    style = quality.demo_styles()[0]
    earlier = tmp_path / "earlier"
    _fake_run(earlier / "run0", [(5, 30.0, 25.0, 15.0), (10, 62.0, 30.0, 18.0)])
    policy = export_policy(tiny_module(0, vivid=True), earlier / "run0" / "policy.exposure")
    run = {"seed": 0, "budget_s": 60.0, "run_dir": str(earlier / "run0"), "policy": str(policy), "iterations": 10,
           "elapsed_s": 60.0, "load_start": 1.0, "load_end": 1.0, "final_scores": {}, "algo": "exposure", "recipe": "demo",
           "heldout": _row(1.0, 99.0)}
    (earlier / "quality.json").write_text(json.dumps({style: {"references": {}, "runs": [run]}}))
    _quick_scoring(monkeypatch)
    out = tmp_path / "again"
    out.mkdir()
    assert quality.main(["--rescore", str(earlier), "--results-dir", str(out)]) == 0
    again = json.loads((out / "quality.json").read_text())[style]["runs"][0]
    assert again["policy"] == str(policy) and again["heldout"]["psnr"] != 1.0  # scored again, not copied
    assert 5.0 < again["heldout"]["psnr"] < 40.0 and again["curve"][-1]["hi"] == 30.0
    with pytest.raises(SystemExit, match="no runs of style"):
        quality.main(["--rescore", str(earlier), "--styles", "nosuchstyle", "--results-dir", str(out)])


def test_first_seed_trains_the_next_seeds(tmp_path, monkeypatch):
    """``--seeds 2 --first-seed 3`` trains seeds 3 and 4 (more seeds for a close call) and reports them as such."""
    import json

    from policies.export import export_policy
    from tests.policy_fixtures import tiny_module

    style = quality.demo_styles()[0]
    trained = []

    def fake_train(settings):
        trained.append(settings.run_dir.name)
        _fake_run(settings.run_dir, [(5, 30.0, 25.0, 15.0), (10, 62.0, 30.0, 18.0)])
        policy = export_policy(tiny_module(0, vivid=True), settings.run_dir / "policy.exposure")
        return {"run_dir": str(settings.run_dir), "policy": str(policy), "iterations": 10, "elapsed_s": 60.0,
                "load_start": 1.0, "load_end": 1.0, "final_scores": {}, "algo": "exposure", "recipe": "demo"}

    monkeypatch.setattr(quality, "train_and_export", fake_train)
    _quick_scoring(monkeypatch)
    out = tmp_path / "runs"
    out.mkdir()
    assert quality.main(["--seeds", "2", "--first-seed", "3", "--styles", style, "--budget", "60", "--results-dir", str(out)]) == 0
    assert trained == [f"quality-{style}-s3", f"quality-{style}-s4"]
    runs = json.loads((out / "quality.json").read_text())[style]["runs"]
    assert [r["seed"] for r in runs] == [3, 4] and all(5.0 < r["heldout"]["psnr"] < 40.0 for r in runs)
