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
            "_names": ["a", "b"]}
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
