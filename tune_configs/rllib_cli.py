"""The ``rllib`` command that Ray 2.60 no longer ships, on this project's training.

::

    rllib train --algo PPO|APPO|exposure --env Exposure-v0 --config '{"lr": 0.0003}' \\
        --stop '{"training_iteration": 100, "time_total_s": 600}'
    rllib train file tune_configs/tuned_examples/demo-ppo.yaml     # RLlib's tuned-example YAML
    rllib evaluate results/demo-ppo/checkpoints/best               # validation scores

The experiment format and its mapping onto ``exposure train`` are in
:mod:`tune_configs.rllib_experiments`. Runs go to ``--storage-path`` (``results``) like
``exposure train --results-dir``, and with ``--storage`` also to a folder or a pyarrow URI
(``exposure train --storage``); Ray is joined through ``RAY_ADDRESS`` when set. Bad input
prints one ``error:`` line and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="rllib",
    help="RLlib's command line for the Exposure environment (train, train file, evaluate).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: ``--storage``: as ``exposure train --storage``.
STORAGE_HELP = "Also keep checkpoints, TensorBoard logs and summaries here: a folder or a pyarrow URI (s3://, gs://)."
train_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.add_typer(train_app, name="train", help="Train an algorithm on Exposure-v0 (or: rllib train file X.yaml).")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _run(settings_list: list) -> None:
    """Train each of ``settings_list`` in turn and print its closing report."""
    from tune_configs.interrupts import TrainingInterrupted
    from tune_configs.run_loop import run_training
    from tune_configs.run_report import report_lines
    from tune_configs.settings import ConfigError

    for settings in settings_list:
        try:
            summary = run_training(settings)
        except ConfigError as exc:
            _fail(str(exc))
        except TrainingInterrupted as exc:  # SIGINT / SIGTERM: checkpointed, says how to resume
            typer.echo(str(exc), err=True)
            raise typer.Exit(exc.exit_code) from None
        typer.echo("\n".join(report_lines(summary)))


@train_app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    algo: Optional[str] = typer.Option(None, "--algo", "--run", help="PPO, APPO or exposure (the paper's actor-critic)."),
    env: str = typer.Option("Exposure-v0", "--env", help="Only Exposure-v0; the photos go into config.env_config."),
    config: str = typer.Option("{}", "--config", help='JSON object of settings, e.g. \'{"lr": 0.0003, "env_config": {"fivek": "/data/fivek"}}\'.'),
    stop: str = typer.Option("{}", "--stop", help='JSON object: {"training_iteration": N, "time_total_s": S} (default: the recipe\'s).'),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default: RECIPE-ALGO)."),
    storage_path: Path = typer.Option(Path("results"), "--storage-path", help="Where run folders go."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Train ALGO on Exposure-v0 with this project's recipe for it, changed by --config."""
    if ctx.invoked_subcommand is not None:
        return
    from tune_configs.rllib_experiments import experiment_settings, parse_json_object

    if algo is None:
        _fail("--algo is required: PPO, APPO or exposure (or use: rllib train file X.yaml)")
    try:
        settings = experiment_settings(
            algo, env, parse_json_object(config, "--config"), parse_json_object(stop, "--stop"),
            name=name, results_dir=storage_path, storage=storage,
        )
    except ValueError as exc:
        _fail(str(exc))
    _run([settings])


@train_app.command("file")
def train_file(
    path: Path = typer.Argument(..., help="Tuned-example YAML (a file, or the name of a bundled one: demo-ppo.yaml)."),
    stop: Optional[str] = typer.Option(None, "--stop", help="JSON object replacing the file's stop criteria."),
    config: Optional[str] = typer.Option(None, "--config", help="JSON object merged over the file's config."),
    storage_path: Path = typer.Option(Path("results"), "--storage-path", help="Where run folders go."),
    storage: Optional[str] = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Run every experiment of an RLlib tuned-example file (NAME: {env, run, stop, config})."""
    from tune_configs.rllib_experiments import parse_json_object, tuned_example_settings

    try:
        settings = tuned_example_settings(
            path, stop=None if stop is None else parse_json_object(stop, "--stop"),
            config=parse_json_object(config, "--config"), results_dir=storage_path, storage=storage,
        )
    except ValueError as exc:
        _fail(str(exc))
    _run(settings)


@app.command("evaluate")
def evaluate(
    checkpoint: str = typer.Argument(..., help="A checkpoint of `rllib train` / `exposure train`, or a run folder (its newest); a path or a storage URI."),
    algo: Optional[str] = typer.Option(None, "--algo", "--run", help="Checked against the checkpoint's algorithm when given."),
) -> None:
    """Score a checkpoint on its run's validation photos (the table `exposure train` ends with)."""
    from tune_configs.rllib_experiments import evaluate_checkpoint
    from tune_configs.run_report import report_lines

    try:
        info, summary = evaluate_checkpoint(checkpoint, algo)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"{summary.checkpoint}: {str(info.get('algo', '?')).upper()} after {summary.iterations} iterations")
    typer.echo("\n".join(report_lines(summary)[1:-2]))  # the validation table, without the run's lines


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
