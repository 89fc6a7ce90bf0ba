"""tune_configs.data and the train command's data options: demo styles, folder counts, paired mode."""

from __future__ import annotations

import numpy as np
import pytest

from tune_configs.data import DataSpec, check_data_spec


def _options(tmp_path, **changes):
    opts = dict(algo=None, demo=False, inputs=None, targets=None, fivek=None, fivek_limit=None, recipe=None,
                stop_iters=2, stop_time=None, num_env_runners=None, num_envs_per_runner=None, num_gpus=0,
                checkpoint_freq=None, eval_every=None, resume=None, config=[], name=None, results_dir=tmp_path,
                seed=0, dashboard=False)
    opts.update(changes)
    return opts


def test_demo_style_option(tmp_path):
    from tune_configs.commands.train_cmd import settings_from_options

    s = settings_from_options(**_options(tmp_path, demo=True, demo_style="faded"))
    assert s.data == DataSpec.demo(0, "faded") and "faded" in s.data.describe()
    assert settings_from_options(**_options(tmp_path, demo=True)).data.style is None
    with pytest.raises(ValueError, match="unknown demo style 'sepia'; choose one of: expert, faded"):
        settings_from_options(**_options(tmp_path, demo=True, demo_style="sepia"))
    with pytest.raises(ValueError, match="--demo-style goes with --demo"):
        settings_from_options(**_options(tmp_path, demo_style="faded"))
    with pytest.raises(ValueError, match="unknown demo style"):
        check_data_spec(DataSpec.demo(0, "sepia"))


# --------------------------------------------------------------------------- folders and paired folders
def _smooth(h, w, seed):
    """A smooth linear photo (slow sinusoids): area resampling nearly commutes with any tone curve."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    phase = rng.uniform(0, 2 * np.pi, 3)
    planes = [0.22 + 0.18 * np.sin(2.5 * xx + (1 + c) * yy + phase[c]) for c in range(3)]
    return np.stack(planes, axis=-1).astype(np.float32)


def _style(x):
    """The paired truth: +1 EV then display gamma 1/2.2 (two of the agent's own filters)."""
    return np.clip(2.0 * x, 0.0, 1.0) ** (1 / 2.2)


@pytest.fixture
def paired_dirs(tmp_path):
    from exposure_env.io import write_image

    inputs, truth = tmp_path / "raw", tmp_path / "retouched"
    for k in range(5):
        x = _smooth(72, 96, k)
        write_image(inputs / f"img{k}.tif", x, bits=16, space="linear")
        write_image(truth / f"img{k}.png", _style(x), bits=16)
    write_image(inputs / "no_truth.tif", _smooth(72, 96, 9), bits=16, space="linear")
    write_image(truth / "no_input.png", _smooth(72, 96, 8), bits=8)
    return inputs, truth


def test_prepare_paired_folders(paired_dirs, tmp_path, monkeypatch):
    from tune_configs.data import prepare_data

    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "cache"))
    inputs, truth = paired_dirs
    spec = DataSpec.paired_folders(inputs, truth, seed=1)
    assert spec.scorer == "paired" and DataSpec.folders(inputs, truth).scorer is None
    with pytest.warns(UserWarning, match="skipped 2 of 7") as rec:
        data = prepare_data(spec, tmp_path / "data")
    lines = str(rec[0].message).splitlines()[1:]
    assert len(lines) == 2 and any("no_truth.tif: no paired photo in" in x for x in lines)
    assert any("no_input.png: no input photo of this stem in" in x for x in lines)
    from exposure_env.datasets.pack import ImagePack

    train, targets, val = (ImagePack.load(p) for p in (data.inputs, data.targets, data.val))
    # 5 matched photos: 1 held out whole for validation, 4 train with enough crops
    assert data.num_input_photos == 4 and data.num_inputs >= 1024 and train.paired is not None
    assert len(val.photos()) == 1 and not set(val.photos()) & set(train.photos()) and 0 < len(val) <= spec.max_val
    np.testing.assert_array_equal(targets.images, train.paired)  # the training photos' own truth
    for pack in (train, val):  # same crop boxes on input and truth (linear input, display truth)
        np.testing.assert_allclose(pack.paired, _style(pack.images), atol=0.02)
    assert data.counts_line() == (
        f"4 input photos -> {len(train)} crops, 4 target photos -> {len(train)} crops, "
        f"{len(val)} validation crops (1 photo, paired)"
    )
    assert data.summary()["num_input_photos"] == 4 and data.summary()["num_val_photos"] == 1
    again = prepare_data(spec, tmp_path / "data")  # reused as is: same counts
    assert again.counts_line() == data.counts_line()


def test_prepare_folders_hold_out_whole_photos(paired_dirs, tmp_path, monkeypatch):
    from tune_configs.data import prepare_data

    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "cache"))
    inputs, truth = paired_dirs
    data = prepare_data(DataSpec.folders(inputs, truth), tmp_path / "data")
    from exposure_env.datasets.pack import ImagePack

    train, val = ImagePack.load(data.inputs), ImagePack.load(data.val)
    assert data.num_input_photos == 5 and len(val.photos()) == 1 and not set(val.photos()) & set(train.photos())
    assert data.num_inputs >= 1024 and data.num_target_photos == 6 and data.num_targets >= 1024
    assert val.paired is None


def test_paired_option(paired_dirs, tmp_path):
    from tune_configs.commands.train_cmd import settings_from_options

    inputs, truth = paired_dirs
    s = settings_from_options(**_options(tmp_path, inputs=inputs, paired=truth))
    assert s.data == DataSpec.paired_folders(inputs, truth) and s.recipe.env["scorer"] == "paired"
    assert s.recipe.algo != "exposure"  # the default recipe for paired data trains without a critic
    s = settings_from_options(**_options(tmp_path, inputs=inputs, paired=truth, config=["env.scorer=paired"]))
    assert s.recipe.env["scorer"] == "paired"
    for changes, match in [
        (dict(inputs=inputs, paired=truth, targets=truth), "--targets and --paired exclude each other"),
        (dict(paired=truth), "--paired needs --inputs"),
        (dict(demo=True, paired=truth), "choose one data source"),
        (dict(inputs=inputs, paired=truth, algo="exposure"), "--algo exposure needs the critic"),
    ]:
        with pytest.raises(ValueError, match=match):
            settings_from_options(**_options(tmp_path, **changes))
    with pytest.raises(ValueError, match="paired folder not found"):
        check_data_spec(DataSpec.paired_folders(inputs, tmp_path / "missing"))


def test_train_command_paired_errors_in_one_line(paired_dirs, tmp_path):
    from typer.testing import CliRunner

    from tune_configs.cli import app

    inputs, truth = paired_dirs
    other = tmp_path / "unrelated"
    other.mkdir()
    (other / "x.png").write_bytes((truth / "no_input.png").read_bytes())
    res = CliRunner().invoke(app, ["train", "--inputs", str(inputs), "--paired", str(truth), "--targets", str(truth)])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = CliRunner().invoke(app, ["train", "--inputs", str(inputs), "--paired", str(other), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and str(inputs) in error[0] and str(other) in error[0] and "file stem" in error[0]
    res = CliRunner().invoke(app, ["train", "--help"])
    assert "--paired" in res.output


@pytest.mark.slow
def test_paired_training_run(ray_session, paired_dirs, tmp_path, monkeypatch):
    """``exposure train --inputs DIR --paired DIR``: the paired reward, paired validation, counts in run.json."""
    import dataclasses
    import json

    from tune_configs.commands.train_cmd import settings_from_options
    from tune_configs.run_loop import run_training

    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "cache"))
    inputs, truth = paired_dirs
    tiny = ["train_batch_size_per_learner=128", "minibatch_size=64", "num_epochs=1", "discriminator.batch_size=16"]
    s = settings_from_options(**_options(
        tmp_path, inputs=inputs, paired=truth, algo="ppo", num_env_runners=1, num_envs_per_runner=8,
        eval_every=2, checkpoint_freq=2, config=tiny, name="paired", results_dir=tmp_path / "runs",
    ))
    with pytest.warns(UserWarning, match="skipped 2 of 7"):
        summary = run_training(dataclasses.replace(s, progress=False))
    assert summary.iterations == 2
    run = json.loads((s.run_dir / "run.json").read_text())
    assert run["env_config"]["scorer"] == {"kind": "paired"}
    assert run["data"]["val_paired"] and run["data"]["num_input_photos"] == 4 and run["data"]["num_val_photos"] == 1
    assert run["data"]["num_inputs"] >= 1024
    # validated against the held-out photo's own truth: paired scores exist and are finite
    for key in ("psnr", "hi"):
        assert np.isfinite(summary.final_scores[key]) and np.isfinite(summary.baseline_scores[key])
    assert summary.checkpoint is not None and summary.checkpoint.exists()
