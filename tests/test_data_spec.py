"""tune_configs.data and the train command's data options: demo styles, folder counts, paired mode."""

from __future__ import annotations

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
