"""``exposure train``: train a retouching policy with RLlib (PPO / APPO) and the WGAN critic reward."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def settings_from_options(
    *,
    algo: Optional[str],
    demo: bool,
    demo_style: Optional[str] = None,
    inputs: Optional[Path],
    targets: Optional[Path],
    fivek: Optional[Path],
    fivek_limit: Optional[int],
    recipe: Optional[str],
    stop_iters: Optional[int],
    stop_time: Optional[str],
    num_env_runners: Optional[int],
    num_envs_per_runner: Optional[int],
    num_gpus: float,
    checkpoint_freq: Optional[int],
    eval_every: Optional[int],
    resume: Optional[str],
    config: list[str],
    name: Optional[str],
    results_dir: Path,
    seed: int,
    dashboard: bool,
    paired: Optional[Path] = None,
    storage: Optional[str] = None,
    address: Optional[str] = None,
    dashboard_host: Optional[str] = None,
):
    """The :class:`TrainSettings` of the command-line options; ``ValueError`` on a bad combination."""
    from tune_configs.data import DataSpec
    from tune_configs.checkpoints import load_run_info, resolve_checkpoint
    from tune_configs.overrides import apply_overrides
    from tune_configs.recipes import default_recipe_name, get_recipe, with_data_reward
    from tune_configs.settings import TrainSettings, parse_duration

    sources = [bool(demo), inputs is not None or targets is not None or paired is not None, fivek is not None]
    if sum(sources) > 1:
        raise ValueError("choose one data source: --demo, --inputs/--targets, --inputs/--paired or --fivek")
    if targets is not None and paired is not None:
        raise ValueError("--targets and --paired exclude each other: unpaired style photos, or each input's own retouched version")
    info = None
    if resume is not None:
        info = load_run_info(resolve_checkpoint(resume))
    if demo_style is not None and not demo:
        raise ValueError("--demo-style goes with --demo")
    if demo:
        if demo_style is not None:
            from exposure_env.datasets.demo.styles import get_style

            get_style(demo_style)  # ValueError naming the known styles
        data = DataSpec.demo(seed, demo_style)
    elif fivek is not None:
        data = DataSpec.fivek(fivek, seed, limit=fivek_limit)
    elif paired is not None:
        if inputs is None:
            raise ValueError("--paired needs --inputs (the photos whose retouched versions --paired holds)")
        data = DataSpec.paired_folders(inputs, paired, seed)
    elif inputs is not None or targets is not None:
        if inputs is None or targets is None:
            raise ValueError("--inputs and --targets go together (photos to retouch, photos in the wanted style)")
        data = DataSpec.folders(inputs, targets, seed)
    elif info is not None:
        data = DataSpec(**info["data"])
    else:
        raise ValueError("no training data: give --demo, --inputs DIR --targets DIR, --inputs DIR --paired DIR, or --fivek DIR")

    if recipe is None and info is not None:
        from tune_configs.recipes import Recipe

        base = Recipe(**info["recipe"])
    else:
        from exposure_env.system import usable_gpus

        default = default_recipe_name(data.source, usable_gpus(), algo, paired=data.scorer == "paired")
        base = get_recipe(recipe or default)
    changes = {}
    if algo is not None:
        changes["algo"] = algo.lower()
    if stop_iters is not None:
        changes["stop_iters"] = stop_iters
        if stop_time is None:
            changes["stop_time"] = None
    if stop_time is not None:
        changes["stop_time"] = parse_duration(stop_time)
        if stop_iters is None:
            changes["stop_iters"] = None
    for key, value in (
        ("num_env_runners", num_env_runners),
        ("num_envs_per_env_runner", num_envs_per_runner),
        ("checkpoint_freq", checkpoint_freq),
        ("eval_every", eval_every),
    ):
        if value is not None:
            changes[key] = value
    # paired data: the reward is the distance to each input's truth (before --config, which may change it)
    r = apply_overrides(with_data_reward(base.replace(**changes), data.scorer), config)
    if data.scorer == "paired" and r.algo == "exposure":
        raise ValueError("--paired trains on the paired reward; --algo exposure needs the critic's reward: use --algo ppo or appo")
    run_name = name or (info["name"] if info is not None else None)
    return TrainSettings(
        data=data,
        recipe=r,
        name=run_name,
        results_dir=results_dir,
        num_gpus=num_gpus,
        seed=seed,
        resume=resume,
        storage=storage,
        address=address,
        dashboard=dashboard or dashboard_host is not None,
        **({"dashboard_host": dashboard_host} if dashboard_host else {}),
    )


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_command(
        algo: Optional[str] = typer.Option(None, "--algo", help="exposure | ppo | appo (default: the recipe's, exposure)."),
        demo: bool = typer.Option(False, "--demo", help="Train on the bundled demo set."),
        demo_style: Optional[str] = typer.Option(None, "--demo-style", help="With --demo: expert (default; neutral, punchy) | faded (warm, flat, muted)."),
        inputs: Optional[Path] = typer.Option(None, "--inputs", help="Folder of photos to retouch."),
        targets: Optional[Path] = typer.Option(None, "--targets", help="Folder of photos in the wanted style (unpaired)."),
        paired: Optional[Path] = typer.Option(None, "--paired", help="Instead of --targets: the --inputs photos retouched the wanted way, matched by file stem (supervised)."),
        fivek: Optional[Path] = typer.Option(None, "--fivek", help="MIT-Adobe FiveK folder (input/ + expertC/)."),
        fivek_limit: Optional[int] = typer.Option(None, "--fivek-limit", help="Use only the first N photos of each FiveK split."),
        recipe: Optional[str] = typer.Option(None, "--recipe", help="demo | laptop | fivek | demo-ppo | fivek-ppo (default: demo for --demo, fivek for --fivek; for folders fivek with a GPU, else laptop)."),
        stop_iters: Optional[int] = typer.Option(None, "--stop-iters", help="Stop after N training iterations."),
        stop_time: Optional[str] = typer.Option(None, "--stop-time", help="Stop after a duration: seconds, or 10m / 1h."),
        num_env_runners: Optional[int] = typer.Option(None, "--num-env-runners", help="Sampling processes (CPU each)."),
        num_envs_per_runner: Optional[int] = typer.Option(None, "--num-envs-per-runner", help="Vectorised envs per runner."),
        num_gpus: float = typer.Option(0, "--num-gpus", help="GPUs for the learner (0 = CPU)."),
        checkpoint_freq: Optional[int] = typer.Option(None, "--checkpoint-freq", help="Checkpoint every N iterations."),
        eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Validate every N iterations."),
        resume: Optional[str] = typer.Option(None, "--resume", help="Continue from a checkpoint (or a run folder's newest); a local path or a storage URI."),
        storage: Optional[str] = typer.Option(None, "--storage", help="Also keep checkpoints, TensorBoard logs and summaries here: a folder or a pyarrow URI (s3://, gs://, file://)."),
        config: list[str] = typer.Option([], "--config", help="KEY=VALUE override (repeatable): lr=1e-4, model.hidden=64, discriminator.n_critic=3, env.reward_scale=0.1, run.eval_every=10; --config help lists every key."),
        tune_: bool = typer.Option(False, "--tune", help="Small Ray Tune grid: the algorithm's own learning rates x0.5 / x1 / x2 and discriminator n_critic 2 / 5."),
        name: Optional[str] = typer.Option(None, "--name", help="Run name (folder under --results-dir)."),
        results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Where run folders go."),
        seed: int = typer.Option(0, "--seed", help="Random seed (data crops, env runners, networks)."),
        dashboard: bool = typer.Option(False, "--dashboard", help="Start the Ray dashboard on 127.0.0.1:8265 (needs the dashboard extra of exposure-rl; token required)."),
        dashboard_host: Optional[str] = typer.Option(None, "--dashboard-host", help="Serve the dashboard on this interface instead of 127.0.0.1 (e.g. 0.0.0.0; implies --dashboard)."),
        address: Optional[str] = typer.Option(None, "--address", help="Join this Ray cluster (auto or HOST:PORT; default: RAY_ADDRESS, else a private Ray on 127.0.0.1)."),
    ) -> None:
        """Train a policy; checkpoints, TensorBoard logs and validation scores go to RESULTS_DIR/NAME."""
        from rich.console import Console

        from tune_configs.interrupts import TrainingInterrupted
        from tune_configs.run_loop import run_training
        from tune_configs.settings import ConfigError
        from tune_configs.tune_sweep import run_tune

        console = Console(highlight=False)
        try:
            settings = settings_from_options(
                algo=algo, demo=demo, demo_style=demo_style, inputs=inputs, targets=targets, fivek=fivek, fivek_limit=fivek_limit,
                recipe=recipe, stop_iters=stop_iters, stop_time=stop_time, num_env_runners=num_env_runners,
                num_envs_per_runner=num_envs_per_runner, num_gpus=num_gpus, checkpoint_freq=checkpoint_freq,
                eval_every=eval_every, resume=resume, config=[c for c in config if c != "help"], name=name,
                results_dir=results_dir, seed=seed, dashboard=dashboard, paired=paired, storage=storage,
                address=address, dashboard_host=dashboard_host,
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if "help" in config:  # the keys of this run's recipe, their types and values
            from tune_configs.overrides import describe_keys

            typer.echo("\n".join(describe_keys(settings.recipe)))
            return
        try:
            if tune_:
                best_config, metrics = run_tune(settings)
                console.print(f"best: {best_config}  HI {metrics.get('hi', float('nan')):.1f}%")
                return
            summary = run_training(settings)
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except TrainingInterrupted as exc:  # SIGINT / SIGTERM: checkpointed, says how to resume
            typer.echo(str(exc), err=True)
            raise typer.Exit(exc.exit_code) from None
        from tune_configs.run_report import report_lines

        console.print("\n".join(report_lines(summary)), highlight=False, markup=False)
