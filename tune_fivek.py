"""Train Exposure the paper's way: ``python tune_fivek.py FIVEK_DIR`` or ``python tune_fivek.py --demo``.

* ``FIVEK_DIR``: the MIT-Adobe FiveK recipe (SPEC §5-7; ``input/`` linear ProPhoto TIFFs and
  ``expertC/`` retouches, see ``exposure_env.datasets.fivek``): the exposure actor-critic on the
  paper-size networks with the WGAN-GP critic reward; uses a GPU for the learner when one is visible.
* ``--demo``: the bundled demo set on a laptop (the README's main job, 10 minutes of training on
  2 CPUs). Ends with a table of the best and last policy on the held-out validation photos
  (histogram intersection, SPEC §8; PSNR and Delta E against the expert's truth) next to the
  auto-correction, the inputs with a display gamma and the untouched inputs.

Results (checkpoints, TensorBoard logs, ``hi_curve.csv``) go to ``results/<name>/`` (and to
``--storage``, a folder or URI, when given). Ctrl-C or SIGTERM: the run checkpoints and says how
to resume (exit status 130 / 143). Extra
settings: ``--config KEY=VALUE`` as for ``exposure train``.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fivek_dir", nargs="?", help="MIT-Adobe FiveK folder (input/ + expertC/)")
    parser.add_argument("--demo", action="store_true", help="train on the bundled demo set instead")
    parser.add_argument("--algo", default=None, help="exposure (default), ppo or appo")
    parser.add_argument("--stop-time", default=None, help="time budget, e.g. 12m or 2h (default: the recipe's)")
    parser.add_argument("--stop-iters", type=int, default=None, help="iteration budget")
    parser.add_argument("--num-gpus", type=float, default=None, help="GPUs for the learner (default: 1 if visible)")
    parser.add_argument("--num-env-runners", type=int, default=None)
    parser.add_argument("--name", default=None, help="run name (default: demo / fivek)")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--resume", default=None, help="checkpoint or run folder to continue (a path or a storage URI)")
    parser.add_argument("--storage", default=None, help="also keep checkpoints, logs and summaries here: a folder or a "
                        "pyarrow URI (s3://, gs://, file://)")
    parser.add_argument("--config", action="append", default=[], help="KEY=VALUE override (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--address", default=None, help="join this Ray cluster (auto or HOST:PORT; default: RAY_ADDRESS, "
                        "else a private Ray on 127.0.0.1)")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    from tune_configs.data import DataSpec
    from exposure_env.system import usable_gpus
    from tune_configs.interrupts import TrainingInterrupted
    from tune_configs.overrides import apply_overrides
    from tune_configs.recipes import default_recipe_name, get_recipe
    from tune_configs.run_loop import run_training
    from tune_configs.settings import ConfigError, TrainSettings, parse_duration

    try:
        if args.demo == bool(args.fivek_dir):
            raise ValueError("give the FiveK folder (python tune_fivek.py FIVEK_DIR) or --demo")
        if args.demo:
            data = DataSpec.demo(args.seed)
        else:
            if not os.path.isdir(args.fivek_dir):
                raise ValueError(
                    f"{args.fivek_dir}: FiveK folder not found. Download MIT-Adobe FiveK, export the inputs as linear "
                    "16-bit ProPhoto TIFFs into FIVEK_DIR/input and expert C's retouches into FIVEK_DIR/expertC "
                    "(or run `python tune_fivek.py --demo`)"
                )
            data = DataSpec.fivek(args.fivek_dir, args.seed)
        recipe = get_recipe(default_recipe_name(data.source, usable_gpus(), args.algo))
        changes = {}
        if args.algo:
            changes["algo"] = args.algo.lower()
        if args.stop_time:
            changes["stop_time"] = parse_duration(args.stop_time)
            changes["stop_iters"] = args.stop_iters
        elif args.stop_iters:
            changes.update(stop_iters=args.stop_iters, stop_time=None)
        if args.num_env_runners is not None:
            changes["num_env_runners"] = args.num_env_runners
        recipe = apply_overrides(recipe.replace(**changes), args.config)
        gpus = args.num_gpus if args.num_gpus is not None else (1 if usable_gpus() and not args.demo else 0)
        settings = TrainSettings(
            data=data, recipe=recipe, name=args.name or recipe.name, results_dir=args.results_dir,
            num_gpus=gpus, seed=args.seed, resume=args.resume, storage=args.storage,
            address=args.address,
        )
        summary = run_training(settings)
    except TrainingInterrupted as exc:  # SIGINT / SIGTERM: checkpointed, says how to resume
        print(exc, file=sys.stderr)
        return exc.exit_code
    except (ConfigError, ValueError) as exc:
        if not isinstance(exc, ConfigError) and "settings" in locals():
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from tune_configs.run_report import report_lines

    print()
    print("\n".join(report_lines(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
