"""Does training learn? A short CPU run of the default recipe on a trivially learnable style.

The style is a pure display-gamma shift (``truth = input ** (1 / 2.2)``, reachable in one
Gamma step) of dark linear crops; the critic sees only target-style photos of *other* crops
(unpaired), and validation compares the policy's edits of held-out crops with their truth. A
run of the default (``laptop``) recipe must raise the validation PSNR well above the
untouched inputs'; it fails when the critic, the update or the policy stops learning.
"""

from __future__ import annotations

import numpy as np
import pytest

from exposure_env.datasets.augment import random_square_crops
from exposure_env.datasets.demo import load_photo
from exposure_env.datasets.pack import ImagePack

#: The validation PSNR must rise by at least this much (dB) above the untouched inputs'.
MARGIN_DB = 4.0


def _gamma_style_packs(seed: int = 0):
    rng = np.random.default_rng(seed)

    def crops(names, n):
        out = [random_square_crops(load_photo(name), n, 80, rng, scale=(0.3, 0.9)) for name in names]
        x = np.concatenate(out)
        return np.clip(x * np.exp2(rng.uniform(-1.0, 0.0, (len(x), 1, 1, 1))), 0, 1).astype(np.float32)

    def style(x):
        return np.power(np.clip(x, 0, 1), 1 / 2.2).astype(np.float32)

    inputs = crops(("astronaut", "chelsea", "coffee"), 120)
    targets = style(crops(("rocket", "ihc", "hubble", "retina"), 80))
    val = crops(("motorcycle_left",), 32)
    return ImagePack(inputs), ImagePack(targets), ImagePack(val, style(val))


@pytest.mark.slow
def test_default_recipe_learns_a_gamma_style(ray_session, tmp_path, monkeypatch):
    from tune_configs import data as data_module
    from tune_configs.data import DataSpec
    from tune_configs.overrides import apply_overrides
    from tune_configs.recipes import default_recipe_name, get_recipe
    from tune_configs.run_loop import run_training
    from tune_configs.settings import TrainSettings

    monkeypatch.setattr(data_module, "_packs", lambda spec: _gamma_style_packs(spec.seed))
    recipe = get_recipe(default_recipe_name("folders", gpus=0))
    recipe = apply_overrides(
        recipe.replace(stop_iters=60, stop_time=None, eval_every=20, checkpoint_freq=60),
        ["env.filters=['E', 'G', 'W']", "env.max_steps=2", "run.train_eval_crops=0"],
    )
    s = TrainSettings(DataSpec.folders(tmp_path, tmp_path), recipe, name="gamma", results_dir=tmp_path, progress=False)
    summary = run_training(s)
    inputs_psnr = summary.baseline_scores["psnr"]
    best = summary.best_scores
    assert best is not None and summary.best_checkpoint is not None and summary.best_checkpoint.is_dir()
    assert best["psnr"] >= inputs_psnr + MARGIN_DB, (best, inputs_psnr)
    assert best["hi"] > summary.baseline_scores["hi"]
