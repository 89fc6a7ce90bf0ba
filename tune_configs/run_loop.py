"""The training run loop shared by ``exposure train``, ``tune_fivek.py`` and ``--tune`` trials.

:func:`run_training` reads top to bottom:

1. **prepare** (:func:`tune_configs.wiring.prepare_run`, before Ray starts): checks, data packs,
   validators, ``env_config``, ``AlgorithmConfig``; every configuration error is one
   :class:`~tune_configs.settings.ConfigError` line, with Ray never started;
2. **start**: Ray (:func:`tune_configs.ray_session.init_ray`), the run's discriminator actor
   (:func:`rewards.actor.get_or_create_discriminator`), the algorithm; with ``resume`` both are
   restored from a checkpoint (:mod:`tune_configs.checkpoints`);
3. **loop** until ``stop_iters`` iterations or ``stop_time`` seconds: one ``algo.train()`` plus
   one ``train(iteration, total)`` of the discriminator per iteration; every ``eval_every``
   iterations the deterministic policy is validated on the fixed validation set (and the best
   one kept as ``checkpoints/best``); every ``checkpoint_freq`` iterations a checkpoint;
4. **finish**: a last validation and checkpoint, ``summary.json``.

Logging (:mod:`tune_configs.run_logging`): TensorBoard ``<run>/tb``, ``<run>/progress.csv`` (one row
per iteration), ``<run>/hi_curve.csv`` (validation HI vs wall-clock seconds), ``<run>/strips/``
(PNG step strips of the last validation) and one progress line per iteration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checkpoints import BestCheckpoint, resolve_checkpoint, restore_checkpoint, save_checkpoint
from .ray_session import init_ray, quiet_rllib
from .run_layout import DISCRIMINATOR_STATE_DIR, RUN_SETTINGS_FILE, STRIPS_DIR, SUMMARY_FILE
from .recipes import Recipe
from .run_logging import RunLogger, evaluation_tags, iteration_tags, nested, scalar
from .settings import ConfigError, TrainSettings
from .wiring import prepare_run


@dataclass
class RunSummary:
    """What a run did (also ``<run>/summary.json``); scores as :meth:`Validator.evaluate`'s."""

    run_dir: Path
    iterations: int
    elapsed_s: float
    checkpoint: Path | None
    final_scores: dict[str, float]
    baseline_scores: dict[str, float]
    env_steps: int
    timings: dict[str, float]  # seconds: train_s, discriminator_s, eval_s, checkpoint_s, build_s
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


# --------------------------------------------------------------------------- the learner, through RLlib's public API
def policy_module(algo):
    """The learner's current RLModule (the local learner's own copy when it runs in the driver)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    group = algo.learner_group
    if group.is_local:
        return [r.get() for r in group.foreach_learner(lambda learner: learner.module[DEFAULT_MODULE_ID]).ignore_errors()][0]
    return algo.get_module()


def set_learning_rate(algo, lr: float) -> bool:
    """Set the rate of every optimizer of every learner to ``lr``; False if none was set."""

    def apply(learner) -> int:
        count = 0
        for module_id in learner.module.keys():
            for _, optimizer in learner.get_optimizers_for_module(module_id):
                for group in optimizer.param_groups:
                    group["lr"] = lr
                count += 1
        return count

    return sum(r.get() for r in algo.learner_group.foreach_learner(apply).ignore_errors()) > 0


def learning_rates(algo) -> dict[str, float]:
    """``{"lr_<optimizer>": rate}`` of the (first) learner's optimizers as they stand now."""

    def read(learner) -> dict[str, float]:
        return {
            f"lr_{name}": float(optimizer.param_groups[0]["lr"])
            for module_id in learner.module.keys()
            for name, optimizer in learner.get_optimizers_for_module(module_id)
        }

    results = [r.get() for r in algo.learner_group.foreach_learner(read).ignore_errors()]
    return results[0] if results else {}


# --------------------------------------------------------------------------- run length
def run_progress(r: Recipe, it: int, elapsed: float) -> float:
    """Share of the run done, in [0, 1]: the larger of the iteration and time budgets used."""
    p = 0.0
    if r.stop_iters:
        p = max(p, it / r.stop_iters)
    if r.stop_time:
        p = max(p, elapsed / r.stop_time)
    return min(max(p, 0.0), 1.0)


def planned_iterations(r: Recipe, it: int, elapsed: float) -> int:
    """Training length for the lr schedules: ``stop_iters``, else estimated from the time budget."""
    if r.stop_iters is not None:
        return r.stop_iters
    progress = max(elapsed / r.stop_time, 1e-3)
    return max(it + 1, int(round((it + 1) / progress)))


def finished(r: Recipe, it: int, elapsed: float) -> bool:
    """True once ``stop_iters`` iterations are done or ``stop_time`` seconds have passed."""
    return (r.stop_iters is not None and it >= r.stop_iters) or (r.stop_time is not None and elapsed >= r.stop_time)


# --------------------------------------------------------------------------- one iteration
def train_iteration(algo, disc, it: int, total: int) -> tuple[dict, dict, float, float]:
    """``algo.train()`` and the discriminator's training for iteration ``it`` of ``total``.

    The exposure algorithm trains the critic inside ``train()`` (``trains_discriminator``); for
    PPO / APPO the critic's ``train`` starts when the learner update starts
    (:data:`CRITIC_TRIGGER`, else after ``train()``). Returns ``(result, discriminator metrics,
    train seconds, seconds waited for the critic)``."""
    import ray

    from policies.ppo_learner import CRITIC_TRIGGER

    own_disc = bool(getattr(algo, "trains_discriminator", False))
    if own_disc:
        algo.set_progress(it, total)
    else:
        CRITIC_TRIGGER.arm(disc, it, total)
    t0 = time.perf_counter()
    result = algo.train()
    t1 = time.perf_counter()
    if own_disc:
        disc_metrics = result.get("discriminator")
    else:
        fired = CRITIC_TRIGGER.take()
        disc_metrics = ray.get(fired if fired is not None else disc.train.remote(it, total))
    return result, disc_metrics, t1 - t0, time.perf_counter() - t1


# --------------------------------------------------------------------------- the run
def run_training(s: TrainSettings, *, report: Callable[[dict], None] | None = None, ray_temp_dir: str | None = None) -> RunSummary:
    """Train per ``s`` (module docstring); ``report(metrics)`` is called once per iteration (Tune)."""
    import ray
    import torch

    from rewards.actor import get_or_create_discriminator

    if s.progress:  # decoding and cropping a folder of photos takes a while: say so
        print(f"Preparing the training data ({s.data.describe()}) and the run (Ray, critic, algorithm)...", flush=True)
    try:
        run = prepare_run(s)
        resume_from = resolve_checkpoint(s.resume) if s.resume is not None else None
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    r = s.recipe
    baseline = run.validator.baseline()

    started = init_ray(s, ray_temp_dir)
    quiet_rllib()
    torch.set_num_threads(1)
    algo = disc = logger = None
    try:
        # state_dir: the actor checkpoints itself after every train call, so when Ray restarts
        # it (killed, node lost) it comes back with its last weights and optimiser state.
        disc = get_or_create_discriminator(
            run.discriminator_name,
            str(run.data.targets),
            run.discriminator_config,
            state_dir=str(s.run_dir / DISCRIMINATOR_STATE_DIR / run.discriminator_name),
            num_gpus=0,
            num_cpus=0,
        )
        t_build = time.perf_counter()
        algo = run.algorithm_config.build_algo()
        build_s = time.perf_counter() - t_build
        offset, start_iter = 0.0, 0
        if resume_from is not None:
            info = restore_checkpoint(algo, disc, resume_from)
            offset, start_iter = float(info.get("elapsed_s", 0.0)), int(info.get("iteration", 0))
        logger = RunLogger(s.run_dir, s.tensorboard, s.progress)
        (s.run_dir / RUN_SETTINGS_FILE).write_text(json.dumps({
            "recipe": r.to_dict(), "data": run.data.summary(), "env_config": run.env_config, "seed": s.seed,
            "num_gpus": s.num_gpus, "resumed_from": str(resume_from) if resume_from else None,
        }, indent=1, default=str))
        logger.say(
            f"[bold]{r.algo.upper()}[/bold] on {run.data.description}: {run.data.counts_line()}; "
            f"{r.num_env_runners} env runner(s) x {r.num_envs_per_env_runner} envs; results in {s.run_dir}  "
            f"(inputs' HI {baseline['hi']:.1f}%)"
        )
        return _loop(s, algo, disc, run.validator, baseline, logger, start_iter, offset, build_s, report)
    finally:
        if logger is not None:
            logger.close()
        if algo is not None:
            algo.stop()
        if disc is not None:
            ray.kill(disc, no_restart=True)
        if started:
            ray.shutdown()


def _loop(s: TrainSettings, algo, disc, validator, baseline: dict, logger: RunLogger, start_iter: int, offset: float,
          build_s: float, report) -> RunSummary:
    from exposure_env.render import step_strip

    r = s.recipe
    t0 = time.perf_counter() - offset  # a resumed run goes on with its own clock
    it, env_steps = start_iter, 0
    scores: dict[str, float] = {}
    disc_metrics: dict[str, float] = {}
    ckpt: Path | None = None
    best = BestCheckpoint()
    times = {"train_s": 0.0, "discriminator_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0, "build_s": build_s}

    def checkpoint(step: int, name: str | None = None) -> Path:
        tc = time.perf_counter()
        path = save_checkpoint(algo, disc, s.run_dir, step, time.perf_counter() - t0, s, r.keep_checkpoints, name=name)
        times["checkpoint_s"] += time.perf_counter() - tc
        return path

    def evaluate(step: int) -> dict[str, float]:
        """Validate the deterministic policy; log it; keep ``checkpoints/best`` when it improved."""
        te = time.perf_counter()
        module = policy_module(algo)
        res = validator.evaluate(module)
        sc = dict(res["scores"])
        tv, train_scores = validator.train_validator, None
        if tv is not None:  # the same on training crops vs the training targets (in-distribution)
            train_scores = tv.evaluate(module)["scores"]
            sc["hi_train"] = train_scores["hi"]
        logger.scalars(evaluation_tags(res, baseline, train_scores, tv.baseline() if tv is not None else None), step)
        for i, (frames, labels) in enumerate(res["strips"]):
            logger.image(f"strips/val{i}", step_strip(frames, labels, s.run_dir / STRIPS_DIR / f"val{i}.png"), step)
        logger.curve(time.perf_counter() - t0, step, env_steps, sc, baseline)
        times["eval_s"] += time.perf_counter() - te
        best.offer(step, sc, lambda name: checkpoint(step, name))
        return sc

    while not finished(r, it, time.perf_counter() - t0):
        elapsed = time.perf_counter() - t0
        total = planned_iterations(r, it, elapsed)
        if r.lr_final_fraction is not None and not getattr(algo, "trains_discriminator", False):
            lr_now = float(algo.config.lr) * float(r.lr_final_fraction) ** run_progress(r, it, elapsed)
            if set_learning_rate(algo, lr_now):
                logger.scalars({"learner/lr_set": lr_now}, it)
        result, new_disc_metrics, train_s, disc_s = train_iteration(algo, disc, it, total)
        disc_metrics = new_disc_metrics if new_disc_metrics is not None else disc_metrics
        times["train_s"] += train_s
        times["discriminator_s"] += disc_s
        it += 1
        env_steps = int(nested(result, "env_runners", "num_env_steps_sampled_lifetime", default=env_steps) or env_steps)
        logger.scalars(iteration_tags(result, disc_metrics, train_s, disc_s, env_steps), it)
        if it % r.eval_every == 0:
            scores = evaluate(it)
        if it % r.checkpoint_freq == 0:
            ckpt = checkpoint(it)
        elapsed = time.perf_counter() - t0
        ret = result.get("env_runners", {}).get("episode_return_mean")
        row = {
            "iteration": it, "wall_s": round(elapsed, 2), "env_steps": env_steps, "return": scalar(ret),
            "wasserstein": scalar(disc_metrics.get("wasserstein")), "hi": scores.get("hi"),
            "train_s": round(train_s, 3), "discriminator_s": round(disc_s, 3),
        }
        logger.row(row)
        logger.line(it, elapsed, ret, disc_metrics.get("wasserstein"), scores.get("hi"))
        if report is not None:
            report({**{k: v for k, v in row.items() if v is not None}, "hi": scores.get("hi", baseline["hi"]), **learning_rates(algo)})

    if it % r.eval_every != 0 or not scores:
        scores = evaluate(it)
    if ckpt is None or not ckpt.name.endswith(f"{it:06d}"):
        ckpt = checkpoint(it)
    summary = RunSummary(
        s.run_dir, it, time.perf_counter() - t0, ckpt, scores, baseline, env_steps, {k: round(v, 2) for k, v in times.items()},
        best_checkpoint=best.path, best_iteration=best.iteration, best_scores=best.scores,
    )
    (s.run_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_dict(), indent=1, default=str))
    return summary
