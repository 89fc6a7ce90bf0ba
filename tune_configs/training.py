"""The training run loop shared by ``exposure train`` and ``tune_fivek.py``.

:func:`run_training` does, in order:

1. **checks** (:func:`check_settings`, before Ray starts): algorithm, recipe values,
   resources (GPUs present, env runners vs CPUs), data folders; then prepares the data packs
   (:mod:`tune_configs.data`) and builds the ``AlgorithmConfig`` -- every configuration error
   surfaces here as one ``ValueError`` line, with Ray never started;
2. starts Ray (``include_dashboard`` only with ``dashboard=True``, on 127.0.0.1), creates the
   run's discriminator actor (:func:`rewards.actor.get_or_create_discriminator`) and the
   algorithm; with ``resume`` restores both from a checkpoint;
3. loops ``algo.train()`` + one ``train(iteration, total)`` call of the discriminator actor per
   iteration until ``stop_iters`` iterations or ``stop_time`` seconds; every ``eval_every``
   iterations evaluates the deterministic policy on the fixed validation set
   (:class:`tune_configs.validation.Validator`); every ``checkpoint_freq`` iterations (and at
   the end) writes a checkpoint;
4. logs to TensorBoard (``<run>/tb``), to ``<run>/progress.csv`` (one row per iteration) and
   ``<run>/hi_curve.csv`` (validation HI vs wall-clock seconds), and prints one progress line
   per iteration.

Results folder ``<results_dir>/<name>/``: ``data/`` (packs), ``checkpoints/iter_NNNNNN/``
(RLlib's ``save_to_path`` tree + ``discriminator.pt`` + ``exposure_run.json``), ``tb/``,
``strips/`` (PNG step strips of the last validation), ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import DataSpec, PreparedData, check_data_spec, prepare_data, validation_targets
from .recipes import Recipe, with_data_reward
from exposure_env.system import usable_cpus, usable_gpus

class ConfigError(ValueError):
    """A run that must not start: bad settings, data or resources (raised before Ray starts)."""


CHECKPOINT_PREFIX = "iter_"
RUN_FILE = "exposure_run.json"
DISCRIMINATOR_FILE = "discriminator.pt"


@dataclass
class TrainSettings:
    """One training run: data, recipe (all algorithm settings) and where/how to run."""

    data: DataSpec
    recipe: Recipe
    name: str | None = None
    results_dir: str | Path = "results"
    num_gpus: float = 0
    seed: int | None = 0
    resume: str | Path | None = None
    dashboard: bool = False
    num_cpus: int | None = None  # CPUs given to Ray (default: this machine's)
    progress: bool = True  # print one line per iteration
    tensorboard: bool = True
    data_dir: str | Path | None = None  # where the packs go (default: <run>/data)

    @property
    def run_name(self) -> str:
        return self.name or f"{self.recipe.name}-{self.recipe.algo}"

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.run_name




def parse_duration(text: str | float | int | None) -> float | None:
    """``"90"``, ``"90s"``, ``"10m"``, ``"1.5h"`` -> seconds; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    t = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], None)
    num = t[:-1] if scale else t
    try:
        value = float(num) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"--stop-time {text!r}: expected seconds or a duration like 10m / 1h") from None
    if value <= 0:
        raise ValueError(f"--stop-time {text!r}: must be positive")
    return value


def check_settings(s: TrainSettings) -> None:
    """Every check that can fail before Ray starts (``ValueError``, one line)."""
    from .algorithms import check_algo

    r = s.recipe
    check_algo(r.algo)
    check_data_spec(s.data)
    if r.stop_iters is None and r.stop_time is None:
        raise ValueError("give a stopping rule: --stop-iters N and/or --stop-time DURATION")
    if r.stop_iters is not None and r.stop_iters < 1:
        raise ValueError(f"--stop-iters must be >= 1, got {r.stop_iters}")
    if r.stop_time is not None and r.stop_time <= 0:
        raise ValueError(f"--stop-time must be positive, got {r.stop_time}")
    for name in ("checkpoint_freq", "eval_every", "keep_checkpoints", "num_envs_per_env_runner"):
        if getattr(r, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(r, name)}")
    if r.num_env_runners < 0:
        raise ValueError(f"--num-env-runners must be >= 0, got {r.num_env_runners}")
    cpus = s.num_cpus or usable_cpus()
    if r.num_env_runners > cpus:
        raise ValueError(f"--num-env-runners {r.num_env_runners} needs {r.num_env_runners} CPUs; this machine has {cpus}")
    if s.num_gpus < 0:
        raise ValueError(f"--num-gpus must be >= 0, got {s.num_gpus}")
    gpus = usable_gpus()
    if s.num_gpus > gpus:
        raise ValueError(f"--num-gpus {s.num_gpus:g} requested but {gpus} CUDA GPU(s) are visible")
    if s.resume is not None:
        resolve_checkpoint(s.resume)
    if s.dashboard:
        try:
            import ray.dashboard.optional_deps  # noqa: F401  (aiohttp & co. of ray[default])
        except ImportError:
            raise ValueError("--dashboard needs Ray's dashboard packages: pip install 'exposure-rl[dashboard]'") from None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its newest checkpoint). ``ValueError`` otherwise."""
    p = Path(path)
    if (p / RUN_FILE).exists():
        return p
    ckpts = sorted((p / "checkpoints").glob(CHECKPOINT_PREFIX + "*")) if p.is_dir() else []
    ckpts = [c for c in ckpts if (c / RUN_FILE).exists()]
    if ckpts:
        return ckpts[-1]
    raise ValueError(f"{path}: not a checkpoint (no {RUN_FILE}) nor a run folder with checkpoints")


def env_config_for(recipe: Recipe, data: PreparedData, discriminator_name: str) -> dict:
    """The env_config of :mod:`tune_configs.algorithms` for a prepared run."""
    env = dict(recipe.env)
    kind = env.pop("scorer", "discriminator")
    feed = env.pop("critic_fakes", "all")
    if kind == "discriminator":
        scorer = {"kind": "discriminator", "name": discriminator_name, "feed": feed}
    elif kind == "statistics":
        scorer = {"kind": "statistics", "targets": str(data.targets)}
    else:
        scorer = {"kind": kind}
    return {"inputs": str(data.inputs), "scorer": scorer, **env}


def build_algorithm_config(s: TrainSettings, env_config: dict):
    from .algorithms import build_config

    r = s.recipe
    return build_config(
        r.algo,
        env_config,
        model_config=r.model,
        training=r.training,
        num_env_runners=r.num_env_runners,
        num_envs_per_env_runner=r.num_envs_per_env_runner,
        num_gpus=s.num_gpus,
        seed=s.seed,
    )


def init_ray(s: TrainSettings, temp_dir: str | None = None) -> bool:
    """Start Ray for this run unless it is running already; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    kwargs: dict[str, Any] = dict(
        num_cpus=s.num_cpus or usable_cpus(),
        num_gpus=int(math.ceil(s.num_gpus)) if s.num_gpus else 0,
        object_store_memory=2 << 30,
        logging_level=logging.ERROR,
        log_to_driver=False,
        include_dashboard=bool(s.dashboard),
    )
    if s.dashboard:
        kwargs["dashboard_host"] = "127.0.0.1"
    if temp_dir:
        kwargs["_temp_dir"] = temp_dir
    ray.init(**kwargs)
    return True


def _quiet_rllib() -> None:
    for name in ("ray.rllib", "ray.tune", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)


# --------------------------------------------------------------------------- logging helpers
def _get(d: dict, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _scalar(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class RunLogger:
    """TensorBoard (``tb/``), ``progress.csv``, ``hi_curve.csv`` and the progress line."""

    def __init__(self, run_dir: Path, tensorboard: bool, progress: bool, resume_offset: float = 0.0):
        self.run_dir = run_dir
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tb"))
        self.progress = progress
        self.console = None
        if progress:
            from rich.console import Console

            self.console = Console(highlight=False)
        self.rows: list[dict] = []
        self.curve_path = run_dir / "hi_curve.csv"
        self.progress_path = run_dir / "progress.csv"
        self.offset = resume_offset

    def scalars(self, tags: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for tag, v in tags.items():
            f = _scalar(v)
            if f is not None:
                self.writer.add_scalar(tag, f, step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, img, step, dataformats="HWC")

    def curve(self, elapsed: float, iteration: int, env_steps: int, scores: dict, baseline: dict) -> None:
        new = not self.curve_path.exists()
        with open(self.curve_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["wall_s", "iteration", "env_steps", "hi", "hi_luminance", "hi_contrast", "hi_saturation",
                            "hi_inputs", "hi_train"])
            w.writerow([
                f"{elapsed:.1f}", iteration, env_steps, f"{scores['hi']:.3f}", f"{scores['hi_luminance']:.3f}",
                f"{scores['hi_contrast']:.3f}", f"{scores['hi_saturation']:.3f}", f"{baseline['hi']:.3f}",
                f"{scores['hi_train']:.3f}" if "hi_train" in scores else "",
            ])

    def row(self, row: dict) -> None:
        new = not self.progress_path.exists()
        with open(self.progress_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def line(self, it: int, elapsed: float, ret, wdist, hi, extra: str = "") -> None:
        if self.console is None:
            return
        m, s = divmod(int(elapsed), 60)
        h, m = divmod(m, 60)
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        self.console.print(
            f"[bold]iter {it:4d}[/bold]  {h:d}:{m:02d}:{s:02d}  return [cyan]{fmt(_scalar(ret), '+.4f')}[/cyan]"
            f"  W-dist {fmt(_scalar(wdist), '+.3f')}  HI [green]{fmt(_scalar(hi), '.1f')}[/green]{extra}"
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    algo, disc, run_dir: Path, iteration: int, elapsed: float, settings: TrainSettings, keep: int, name: str | None = None
) -> Path:
    """``<run>/checkpoints/iter_NNNNNN`` (or ``checkpoints/<name>``, replaced in place):
    algorithm + discriminator (with its fake pool) + run info. Only the newest ``keep``
    ``iter_*`` checkpoints are kept; a named one is never pruned."""
    import ray

    path = (run_dir / "checkpoints" / (name or f"{CHECKPOINT_PREFIX}{iteration:06d}")).resolve()
    if path.exists():
        shutil.rmtree(path)
    algo.save_to_path(str(path))
    ray.get(disc.save.remote(str(path / DISCRIMINATOR_FILE), True))
    info = {
        "iteration": iteration,
        "elapsed_s": elapsed,
        "algo": settings.recipe.algo,
        "recipe": settings.recipe.to_dict(),
        "data": settings.data.to_dict(),
        "seed": settings.seed,
        "name": settings.run_name,
    }
    (path / RUN_FILE).write_text(json.dumps(info, indent=1, default=str))
    old = sorted((run_dir / "checkpoints").glob(CHECKPOINT_PREFIX + "*"))
    for stale in old[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return path


def load_run_info(checkpoint: str | Path) -> dict:
    return json.loads((Path(checkpoint) / RUN_FILE).read_text())


def restore_checkpoint(algo, disc, checkpoint: Path) -> dict:
    """Restore the algorithm and the discriminator (weights, optimiser, pool) from ``checkpoint``."""
    import ray

    algo.restore_from_path(str(Path(checkpoint).resolve()))
    ray.get(disc.restore.remote(str(Path(checkpoint).resolve() / DISCRIMINATOR_FILE)))
    return load_run_info(checkpoint)


# --------------------------------------------------------------------------- the loop
@dataclass
class RunSummary:
    run_dir: Path
    iterations: int
    elapsed_s: float
    checkpoint: Path | None
    final_scores: dict[str, float]
    baseline_scores: dict[str, float]
    env_steps: int
    timings: dict[str, float]
    #: The checkpoint to export: the best validation score of the run (:func:`selection_score`).
    best_checkpoint: Path | None = None
    best_iteration: int | None = None
    best_scores: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "iterations": self.iterations,
            "elapsed_s": round(self.elapsed_s, 1),
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "best_checkpoint": str(self.best_checkpoint) if self.best_checkpoint else None,
            "best_iteration": self.best_iteration,
            "best_scores": self.best_scores,
            "final_scores": self.final_scores,
            "baseline_scores": self.baseline_scores,
            "env_steps": self.env_steps,
            "timings": self.timings,
        }


def prepare_run(s: TrainSettings):
    """Everything before Ray: checks, data packs, validator, env_config and AlgorithmConfig."""
    from .validation import Validator

    check_settings(s)
    run_dir = s.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(s.data, Path(s.data_dir) if s.data_dir else run_dir / "data")
    from exposure_env.datasets.pack import ImagePack

    val = data.val_pack
    validator = Validator(
        val.images,
        validation_targets(val, ImagePack.load(data.targets)),
        paired=val.paired,
        filters=s.recipe.env.get("filters"),
        steps=int(s.recipe.env.get("max_steps", 5)),
        thumb_size=int(s.recipe.env.get("thumb_size", 64)),
    )
    train_validator = None
    if s.recipe.train_eval_crops:
        inputs, targets = ImagePack.load(data.inputs), ImagePack.load(data.targets)
        rng = np.random.default_rng(s.seed or 0)
        idx = np.sort(rng.choice(len(inputs), size=min(s.recipe.train_eval_crops, len(inputs)), replace=False))
        tidx = np.sort(rng.choice(len(targets), size=min(256, len(targets)), replace=False))
        train_validator = Validator(
            inputs.images[idx],
            targets.images[tidx],
            filters=validator.filters,
            steps=validator.steps,
            thumb_size=validator.thumb_size,
            strips=0,
        )
    validator.train_validator = train_validator
    disc_name = f"exposure_discriminator_{s.run_name}_{uuid.uuid4().hex[:8]}"
    env_config = env_config_for(with_data_reward(s.recipe, s.data.scorer), data, disc_name)
    config = build_algorithm_config(s, env_config)
    from rewards.discriminator import DiscriminatorConfig

    try:
        disc_config = DiscriminatorConfig.from_any(s.recipe.discriminator)
    except TypeError as exc:
        raise ValueError(f"discriminator config: {exc}") from None
    return data, validator, disc_name, env_config, config, disc_config


def run_training(
    s: TrainSettings,
    *,
    report: Callable[[dict], None] | None = None,
    ray_temp_dir: str | None = None,
) -> RunSummary:
    """Train per ``s`` (module docstring); ``report(metrics)`` is called once per iteration (Tune)."""
    import ray
    import torch

    from rewards.actor import get_or_create_discriminator

    if s.progress:  # decoding and cropping a folder of photos takes a while: say so
        print(f"Preparing the training data ({s.data.describe()}) and the run (Ray, critic, algorithm)...", flush=True)
    try:
        data, validator, disc_name, env_config, config, disc_config = prepare_run(s)
        resume_from = resolve_checkpoint(s.resume) if s.resume is not None else None
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    r = s.recipe
    baseline = validator.baseline()

    started = init_ray(s, ray_temp_dir)
    _quiet_rllib()
    torch.set_num_threads(1)
    algo = disc = None
    logger = None
    try:
        # state_dir: the actor checkpoints itself after every train call, so when Ray restarts
        # it (killed, node lost) it comes back with its last weights and optimiser state.
        disc = get_or_create_discriminator(
            disc_name,
            str(data.targets),
            disc_config,
            state_dir=str(s.run_dir / "discriminator_state" / disc_name),
            num_gpus=0,
            num_cpus=0,
        )
        t_build = time.perf_counter()
        algo = config.build_algo()
        build_s = time.perf_counter() - t_build
        offset = 0.0
        start_iter = 0
        if resume_from is not None:
            info = restore_checkpoint(algo, disc, resume_from)
            offset = float(info.get("elapsed_s", 0.0))
            start_iter = int(info.get("iteration", 0))
        logger = RunLogger(s.run_dir, s.tensorboard, s.progress, offset)
        (s.run_dir / "run.json").write_text(json.dumps({
            "recipe": r.to_dict(), "data": data.summary(), "env_config": env_config, "seed": s.seed,
            "num_gpus": s.num_gpus, "resumed_from": str(resume_from) if resume_from else None,
        }, indent=1, default=str))
        if logger.console is not None:
            logger.console.print(
                f"[bold]{r.algo.upper()}[/bold] on {data.description}: {data.counts_line()}; "
                f"{r.num_env_runners} env runner(s) x {r.num_envs_per_env_runner} envs; results in {s.run_dir}  "
                f"(inputs' HI {baseline['hi']:.1f}%)"
            )
        return _loop(s, algo, disc, validator, baseline, logger, start_iter, offset, build_s, report)
    finally:
        if logger is not None:
            logger.close()
        if algo is not None:
            algo.stop()
        if disc is not None:
            ray.kill(disc, no_restart=True)
        if started:
            ray.shutdown()


def policy_module(algo):
    """The learner's current RLModule (the local learner's own copy when it runs in the driver)."""
    group = algo.learner_group
    learner = getattr(group, "_learner", None)
    if learner is not None:
        return learner.module["default_policy"]
    return algo.get_module()


def run_progress(r: Recipe, it: int, elapsed: float) -> float:
    """Share of the run done, in [0, 1]: the larger of the iteration and time budgets used."""
    p = 0.0
    if r.stop_iters:
        p = max(p, it / r.stop_iters)
    if r.stop_time:
        p = max(p, elapsed / r.stop_time)
    return min(max(p, 0.0), 1.0)


def set_policy_lr(algo, lr: float) -> bool:
    """Set the learning rate of every optimizer of the local learner; False if it is remote."""
    learner = getattr(algo.learner_group, "_learner", None)
    optimizers = getattr(learner, "_named_optimizers", None)
    if not optimizers:
        return False
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr
    return True


def _total_iterations(r: Recipe, it: int, elapsed: float) -> int:
    """Training length for the lr schedules: ``stop_iters``, else estimated from the time budget."""
    if r.stop_iters is not None:
        return r.stop_iters
    progress = max(elapsed / r.stop_time, 1e-3)
    return max(it + 1, int(round((it + 1) / progress)))


BEST_CHECKPOINT = "best"


def selection_score(scores: dict[str, float]) -> float:
    """What picks a run's best checkpoint: the paired PSNR (dB) when the validation set has
    ground truth, else the histogram intersection (%) against the target photos."""
    if scores.get("psnr") is not None and math.isfinite(float(scores["psnr"])):
        return float(scores["psnr"])
    return float(scores.get("hi", float("-inf")))


def _loop(s, algo, disc, validator, baseline, logger: RunLogger, start_iter, offset, build_s, report) -> RunSummary:
    import ray

    from exposure_env.render import step_strip

    from .algorithms import CRITIC_TRIGGER

    r = s.recipe
    t0 = time.perf_counter() - offset
    it = start_iter
    scores: dict[str, float] = {}
    ckpt: Path | None = None
    disc_metrics: dict[str, float] = {}
    env_steps = 0
    times = {"train_s": 0.0, "discriminator_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0, "build_s": build_s}
    best: dict[str, Any] = {"value": float("-inf"), "iteration": None, "scores": None, "path": None}

    def keep_if_best(step: int, sc: dict[str, float]) -> None:
        """Save ``checkpoints/best`` when the validation improves (the checkpoint to export)."""
        value = selection_score(sc)
        if not value > best["value"]:
            return
        tc = time.perf_counter()
        path = save_checkpoint(algo, disc, s.run_dir, step, time.perf_counter() - t0, s, r.keep_checkpoints, name=BEST_CHECKPOINT)
        best.update(value=value, iteration=step, scores=dict(sc), path=path)
        times["checkpoint_s"] += time.perf_counter() - tc

    def evaluate(step: int) -> dict[str, float]:
        te = time.perf_counter()
        module = policy_module(algo)
        res = validator.evaluate(module)
        sc = dict(res["scores"])
        tags = {f"eval/{k}": v for k, v in sc.items()}
        tags.update({f"eval/{k}_inputs": v for k, v in baseline.items()})
        tv = getattr(validator, "train_validator", None)
        if tv is not None:  # the same on training crops vs the training targets (in-distribution)
            train_scores = tv.evaluate(module)["scores"]
            sc["hi_train"] = train_scores["hi"]
            tags.update({f"eval_train/{k}": v for k, v in train_scores.items()})
            tags.update({f"eval_train/{k}_inputs": v for k, v in tv.baseline().items()})
        for t, freq in res["filter_freq"].items():
            tags.update({f"eval/filter_freq/step{t + 1}/{f}": v for f, v in freq.items()})
        tags.update({f"eval/param_mean/{f}": v for f, v in res["param_mean"].items()})
        logger.scalars(tags, step)
        for i, (frames, labels) in enumerate(res["strips"]):
            strip = step_strip(frames, labels, s.run_dir / "strips" / f"val{i}.png")
            logger.image(f"strips/val{i}", strip, step)
        logger.curve(time.perf_counter() - t0, step, env_steps, sc, baseline)
        times["eval_s"] += time.perf_counter() - te
        return sc

    while True:
        elapsed = time.perf_counter() - t0
        if r.stop_iters is not None and it >= r.stop_iters:
            break
        if r.stop_time is not None and elapsed >= r.stop_time:
            break
        own_disc = bool(getattr(algo, "trains_discriminator", False))  # exposure: trains it inside train()
        total = _total_iterations(r, it, time.perf_counter() - t0)
        if r.lr_final_fraction is not None and not own_disc:
            lr_now = float(algo.config.lr) * float(r.lr_final_fraction) ** run_progress(r, it, elapsed)
            if set_policy_lr(algo, lr_now):
                logger.scalars({"learner/lr_set": lr_now}, it)
        if own_disc:
            algo.set_progress(it, total)
        else:
            CRITIC_TRIGGER.arm(disc, it, total)  # PPO: the critic trains during the learner update
        ti = time.perf_counter()
        result = algo.train()
        train_s = time.perf_counter() - ti
        times["train_s"] += train_s
        td = time.perf_counter()
        if own_disc:
            disc_metrics = result.get("discriminator", disc_metrics)
        else:
            fired = CRITIC_TRIGGER.take()
            disc_metrics = ray.get(fired if fired is not None else disc.train.remote(it, total))
        disc_s = time.perf_counter() - td
        times["discriminator_s"] += disc_s
        it += 1
        env_steps = int(_get(result, "env_runners", "num_env_steps_sampled_lifetime", default=env_steps) or env_steps)
        er = result.get("env_runners", {})
        learner = _get(result, "learners", "default_policy", default={}) or {}
        ret = er.get("episode_return_mean")
        tags = {
            "episode/return_mean": ret,
            "episode/len_mean": er.get("episode_len_mean"),
            "perf/iteration_s": train_s + disc_s,
            "perf/train_s": train_s,
            "perf/discriminator_s": disc_s,
            "perf/env_steps": env_steps,
            "perf/env_steps_per_s": _scalar(er.get("num_env_steps_sampled")) and er["num_env_steps_sampled"] / max(train_s, 1e-9),
        }
        for k, v in er.items():
            if isinstance(k, str) and (k.startswith("filter_used/") or k in ("score_gain", "final_score", "penalty_overexposure", "reused_filters")):
                tags[f"episode/{k}"] = v
        for k in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var", "gradients_default_optimizer_global_norm", "default_optimizer_learning_rate"):
            if k in learner:
                tags[f"learner/{k}"] = learner[k]
        for k in ("wasserstein", "gp", "grad_norm", "loss", "d_real", "d_fake", "lr", "updates", "pool_size"):
            if k in disc_metrics:
                tags[f"discriminator/{k}"] = disc_metrics[k]
        logger.scalars(tags, it)
        if it % r.eval_every == 0:
            scores = evaluate(it)
            keep_if_best(it, scores)
        tc = time.perf_counter()
        if it % r.checkpoint_freq == 0:
            ckpt = save_checkpoint(algo, disc, s.run_dir, it, time.perf_counter() - t0, s, r.keep_checkpoints)
        times["checkpoint_s"] += time.perf_counter() - tc
        elapsed = time.perf_counter() - t0
        row = {
            "iteration": it, "wall_s": round(elapsed, 2), "env_steps": env_steps, "return": _scalar(ret),
            "wasserstein": _scalar(disc_metrics.get("wasserstein")), "hi": scores.get("hi"),
            "train_s": round(train_s, 3), "discriminator_s": round(disc_s, 3),
        }
        logger.row(row)
        logger.line(it, elapsed, ret, disc_metrics.get("wasserstein"), scores.get("hi"))
        if report is not None:
            report({**{k: v for k, v in row.items() if v is not None}, "hi": scores.get("hi", baseline["hi"])})
    if it % r.eval_every != 0 or not scores:
        scores = evaluate(it)
        keep_if_best(it, scores)
    if ckpt is None or not ckpt.name.endswith(f"{it:06d}"):
        ckpt = save_checkpoint(algo, disc, s.run_dir, it, time.perf_counter() - t0, s, r.keep_checkpoints)
    elapsed = time.perf_counter() - t0
    summary = RunSummary(
        s.run_dir, it, elapsed, ckpt, scores, baseline, env_steps, {k: round(v, 2) for k, v in times.items()},
        best_checkpoint=best["path"], best_iteration=best["iteration"], best_scores=best["scores"],
    )
    (s.run_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=1, default=str))
    return summary


# --------------------------------------------------------------------------- Ray Tune
#: The ``--tune`` search: learning rate (x 0.5, 1, 2 of the recipe's) and critic updates per iteration.
TUNE_LR_FACTORS = (0.5, 1.0, 2.0)
TUNE_N_CRITIC = (2, 5)


def run_tune(s: TrainSettings, *, lr_factors=TUNE_LR_FACTORS, n_critic=TUNE_N_CRITIC, ray_temp_dir: str | None = None):
    """A small grid search (lr x n_critic) with Ray Tune, one trial at a time, each trial the
    full :func:`run_training` loop reporting per iteration. Tune's own TensorBoard files
    (tensorboardX, tags ``ray/tune/...``) go to ``<run>/tune/``; each trial also writes its run
    folder under ``<run>/trials/``. Returns ``(best config, best trial's last metrics)``."""
    import dataclasses

    import ray
    from ray import tune

    from .recipes import apply_overrides

    run_dir = s.run_dir.resolve()
    data_dir = run_dir / "data"
    try:
        check_settings(s)
        if s.resume is not None:
            raise ValueError("--tune and --resume cannot be combined")
        prepare_data(s.data, data_dir)  # once, before Ray; trials reuse the packs
        apply_overrides(s.recipe, [f"discriminator.n_critic={n_critic[0]}"])  # validates the key
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    base_lr = float(s.recipe.training.get("lr", 3e-4))

    def trainable(config):
        ctx = tune.get_context()
        recipe = apply_overrides(s.recipe, [f"lr={config['lr']}", f"discriminator.n_critic={config['n_critic']}"])
        trial = dataclasses.replace(
            s, recipe=recipe, name=ctx.get_trial_name(), results_dir=run_dir / "trials", progress=False, data_dir=data_dir
        )
        run_training(trial, report=lambda m: tune.report(m))

    started = init_ray(s, ray_temp_dir)
    _quiet_rllib()
    try:
        bundles = [{"CPU": 1}] + [{"CPU": 1}] * s.recipe.num_env_runners
        resources = tune.PlacementGroupFactory(bundles)
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space={
                "lr": tune.grid_search([base_lr * f for f in lr_factors]),
                "n_critic": tune.grid_search(list(n_critic)),
            },
            tune_config=tune.TuneConfig(metric="hi", mode="max", max_concurrent_trials=1),
            run_config=tune.RunConfig(name="tune", storage_path=str(run_dir), verbose=1),
        )
        results = tuner.fit()
        best = results.get_best_result(metric="hi", mode="max", filter_nan_and_inf=True)
        return best.config, best.metrics
    finally:
        if started:
            ray.shutdown()
