"""The training run loop shared by ``exposure train``, ``tune_fivek.py`` and ``--tune`` trials.

:func:`run_training` reads top to bottom:

1. **prepare** (:func:`tune_configs.wiring.prepare_run`, before Ray starts): checks, data packs,
   validators, ``env_config``, ``AlgorithmConfig``; every configuration error is one
   :class:`~tune_configs.settings.ConfigError` line, with Ray never started;
2. **start**: Ray (:func:`tune_configs.ray_session.init_ray`: private, or a cluster joined by
   address), the data packs into Ray's object store and the run's discriminator actor
   (:func:`tune_configs.wiring.start_critic`), the algorithm; with ``resume`` both are
   restored from a checkpoint (:mod:`tune_configs.checkpoints`);
3. **loop** until ``stop_iters`` iterations or ``stop_time`` seconds: one ``algo.train()`` plus
   one ``train(iteration, total)`` of the discriminator per iteration; every ``eval_every``
   iterations the deterministic policy is validated on the fixed validation set (and the best
   one kept as ``checkpoints/best``); every ``checkpoint_freq`` iterations a checkpoint;
4. **finish**: a last validation and checkpoint, ``summary.json``.

SIGINT / SIGTERM during 2-3 (:mod:`tune_configs.interrupts`): the iteration under way finishes,
a checkpoint is written and :class:`~tune_configs.interrupts.TrainingInterrupted` says how to
``--resume`` (a second signal abandons the iteration). With ``storage``
(:mod:`tune_configs.storage`) every checkpoint, the logs and the summary are copied to
``<storage>/<name>/`` as they are written; a run resumed from a storage URI writes back there.

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
from .interrupts import StopSignals, TrainingInterrupted, _Abandon, resume_command, say
from .learner_access import learning_rates, policy_module, set_learning_rate
from .ray_session import init_ray, quiet_rllib
from .run_layout import RUN_SETTINGS_FILE, STRIPS_DIR, SUMMARY_FILE
from .recipes import Recipe
from .run_logging import RunLogger, evaluation_tags, iteration_tags, nested, scalar
from .settings import ConfigError, TrainSettings
from .storage import RunMirror, mirror_for
from .wiring import prepare_run, start_critic, where_actors_run

__all__ = ["RunSummary", "run_training", "policy_module", "set_learning_rate", "learning_rates", "TrainingInterrupted"]
#: Seconds between copies of the logs to ``--storage`` (checkpoints and the end copy them at once).
LOG_SYNC_S = 30.0


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
    #: The run's folder on ``--storage`` (a URI or path), None without storage.
    storage: str | None = None

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
            "storage": self.storage,
        }


# --------------------------------------------------------------------------- run length
def run_progress(r: Recipe, it: int, elapsed: float) -> float:
    """Share of the schedule done, in [0, 1]: the largest of the iteration and time budgets used
    and of ``schedule_iterations`` (when set)."""
    p = 0.0
    for limit in (r.stop_iters, r.schedule_iterations):
        if limit:
            p = max(p, it / limit)
    if r.stop_time:
        p = max(p, elapsed / r.stop_time)
    return min(max(p, 0.0), 1.0)


def planned_iterations(r: Recipe, it: int, elapsed: float) -> int:
    """Length T of the lr / entropy schedules: ``stop_iters``, else estimated from the time
    budget; at most ``schedule_iterations`` (past T the schedules hold their final values)."""
    if r.stop_iters is not None:
        total = r.stop_iters
    else:
        total = max(it + 1, int(round((it + 1) / max(elapsed / r.stop_time, 1e-3))))
    return min(total, r.schedule_iterations) if r.schedule_iterations else total


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
    """Train per ``s`` (module docstring); ``report(metrics)`` is called once per iteration (Tune).
    Raises :class:`ConfigError` before Ray starts, :class:`TrainingInterrupted` on a stop signal."""
    import ray
    import torch

    from rewards.actor import kill_discriminator

    if s.progress:  # decoding and cropping a folder of photos takes a while: say so
        print(f"Preparing the training data ({s.data.describe()}) and the run (Ray, critic, algorithm)...", flush=True)
    try:
        run = prepare_run(s)
        resume_from = resolve_checkpoint(s.resume) if s.resume is not None else None
        mirror = mirror_for(s)
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
    stop = StopSignals(notice=say)
    try:
        with stop:
            # the packs into Ray's object store, the critic placed by resources; restarted (killed,
            # node lost) it comes back with its last weights and optimiser state
            disc = start_critic(s, run)
            t_build = time.perf_counter()
            algo = run.algorithm_config.build_algo()
            build_s = time.perf_counter() - t_build
            info: dict = {}
            if resume_from is not None:
                info = restore_checkpoint(algo, disc, resume_from)
                if mirror is not None:
                    mirror.hydrate()  # the run's logs so far, when this machine lacks them
            start_iter = int(info.get("iteration", 0))
            logger = RunLogger(s.run_dir, s.tensorboard, s.progress, resumed_at=start_iter if resume_from is not None else None)
            (s.run_dir / RUN_SETTINGS_FILE).write_text(json.dumps({
                "recipe": r.to_dict(), "data": run.data.summary(), "env_config": run.env_config, "seed": s.seed,
                "num_gpus": s.num_gpus, "resumed_from": str(s.resume) if resume_from else None,
                "storage": str(mirror.target) if mirror is not None else None,
                "placement": where_actors_run(algo, disc),
            }, indent=1, default=str))
            logger.say(
                f"[bold]{r.algo.upper()}[/bold] on {run.data.description}: {run.data.counts_line()}; "
                f"{r.num_env_runners} env runner(s) x {r.num_envs_per_env_runner} envs; results in {s.run_dir}"
                + (f" (stored in {mirror.target})" if mirror is not None else "") + f"  (inputs' HI {baseline['hi']:.1f}%)"
            )
            loop = _Loop(s, algo, disc, run.validator, baseline, logger, mirror, stop, info, build_s, resume_from)
            return loop.run(report)
    except _Abandon as exc:  # a second signal before the loop took over
        raise TrainingInterrupted(exc.signum, 0, s.resume, resume_command(s, s.resume) if s.resume else None, True) from None
    finally:
        if logger is not None:
            logger.close()
        if algo is not None:
            algo.stop()
        if disc is not None:
            kill_discriminator(run.discriminator_name)  # and its state keeper
        if started:
            ray.shutdown()


class _Loop:
    """Steps 3-4 of the module docstring for a started algorithm ``algo`` and critic ``disc``;
    ``info``: the run info of the checkpoint it resumes from ({} for a new run)."""

    def __init__(self, s: TrainSettings, algo, disc, validator, baseline: dict, logger: RunLogger, mirror: RunMirror | None,
                 stop: StopSignals, info: dict, build_s: float, resume_from: Path | None):
        self.s, self.r, self.algo, self.disc, self.validator = s, s.recipe, algo, disc, validator
        self.baseline, self.logger, self.mirror, self.stop = baseline, logger, mirror, stop
        self.t0 = time.perf_counter() - float(info.get("elapsed_s", 0.0))  # a resumed run goes on with its own clock
        self.start_iter = self.it = int(info.get("iteration", 0))
        self.env_steps = int(info.get("env_steps", 0))
        self.scores: dict[str, float] = dict(info.get("scores") or {})
        self.best = BestCheckpoint.from_info(info.get("best"), s.run_dir)
        self.times = {"train_s": 0.0, "discriminator_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0,
                      **{k: float(v) for k, v in (info.get("timings") or {}).items()}, "build_s": build_s}
        self.ckpt: Path | None = None  # the newest checkpoint this run wrote
        self.latest: Path | str | None = s.resume if resume_from is not None else None  # where to resume from
        self.last_sync = time.perf_counter()
        self.disc_metrics: dict[str, float] = {}

    # ---------------------------------------------------------------------- checkpoints, storage
    def checkpoint(self, step: int, name: str | None = None) -> Path:
        tc = time.perf_counter()
        extra = {"env_steps": self.env_steps, "best": self.best.to_info(), "scores": self.scores,
                 "timings": {k: round(v, 3) for k, v in self.times.items() if k != "build_s"}}
        with self.stop.shielded():
            path = save_checkpoint(self.algo, self.disc, self.s.run_dir, step, time.perf_counter() - self.t0, self.s,
                                   self.r.keep_checkpoints, name=name, extra=extra)
            stored = None
            if self.mirror is not None:
                stored = self.mirror.put_checkpoint(path)
                self.mirror.prune(self.r.keep_checkpoints)
                self.sync(force=True)
            if name is None:
                self.ckpt, self.latest = path, (str(stored) if stored is not None and not self.mirror.same_place else path)
        self.times["checkpoint_s"] += time.perf_counter() - tc
        return path

    def sync(self, force: bool = False) -> None:
        """Copy the changed logs to storage (at most every :data:`LOG_SYNC_S` unless ``force``)."""
        if self.mirror is not None and (force or time.perf_counter() - self.last_sync >= LOG_SYNC_S):
            self.logger.flush()
            self.mirror.sync_logs()
            self.last_sync = time.perf_counter()
        self.disc_metrics: dict[str, float] = {}

    def interrupted(self, signum: int, abandoned: bool) -> TrainingInterrupted:
        where = self.latest
        return TrainingInterrupted(signum, self.it, where, resume_command(self.s, where) if where else None, abandoned)

    # ---------------------------------------------------------------------- validation
    def evaluate(self, step: int) -> dict[str, float]:
        """Validate the deterministic policy; log it; keep ``checkpoints/best`` when it improved."""
        from exposure_env.render import step_strip

        s, logger, validator = self.s, self.logger, self.validator
        te = time.perf_counter()
        module = policy_module(self.algo)
        res = validator.evaluate(module)
        sc = dict(res["scores"])
        tv, train_scores = validator.train_validator, None
        if tv is not None:  # the same on training crops vs the training targets (in-distribution)
            train_scores = tv.evaluate(module)["scores"]
            sc["hi_train"] = train_scores["hi"]
        logger.scalars(evaluation_tags(res, self.baseline, train_scores, tv.baseline() if tv is not None else None), step)
        for i, (frames, labels) in enumerate(res["strips"]):
            logger.image(f"strips/val{i}", step_strip(frames, labels, s.run_dir / STRIPS_DIR / f"val{i}.png"), step)
        logger.curve(time.perf_counter() - self.t0, step, self.env_steps, sc, self.baseline)
        self.times["eval_s"] += time.perf_counter() - te
        self.scores = sc
        self.best.offer(step, sc, lambda name: self.checkpoint(step, name))
        return sc

    # ---------------------------------------------------------------------- one iteration, the loop
    def iteration(self, report) -> None:
        r, algo, logger = self.r, self.algo, self.logger
        elapsed = time.perf_counter() - self.t0
        total = planned_iterations(r, self.it, elapsed)
        if r.lr_final_fraction is not None and not getattr(algo, "trains_discriminator", False):
            lr_now = float(algo.config.lr) * float(r.lr_final_fraction) ** run_progress(r, self.it, elapsed)
            if set_learning_rate(algo, lr_now):
                logger.scalars({"learner/lr_set": lr_now}, self.it)
        result, disc_metrics, train_s, disc_s = train_iteration(algo, self.disc, self.it, total)
        self.disc_metrics = disc_metrics if disc_metrics is not None else self.disc_metrics
        self.times["train_s"] += train_s
        self.times["discriminator_s"] += disc_s
        self.it += 1
        it = self.it
        self.env_steps = int(nested(result, "env_runners", "num_env_steps_sampled_lifetime", default=self.env_steps) or self.env_steps)
        logger.scalars(iteration_tags(result, self.disc_metrics, train_s, disc_s, self.env_steps), it)
        if it % r.eval_every == 0:
            self.evaluate(it)
        if it % r.checkpoint_freq == 0:
            self.checkpoint(it)
        elapsed = time.perf_counter() - self.t0
        ret = result.get("env_runners", {}).get("episode_return_mean")
        row = {
            "iteration": it, "wall_s": round(elapsed, 2), "env_steps": self.env_steps, "return": scalar(ret),
            "wasserstein": scalar(self.disc_metrics.get("wasserstein")), "hi": self.scores.get("hi"),
            "train_s": round(train_s, 3), "discriminator_s": round(disc_s, 3),
        }
        logger.row(row)
        logger.line(it, elapsed, ret, self.disc_metrics.get("wasserstein"), self.scores.get("hi"))
        self.sync()
        if report is not None:
            report({**{k: v for k, v in row.items() if v is not None}, "hi": self.scores.get("hi", self.baseline["hi"]),
                    **learning_rates(algo)})

    def run(self, report) -> RunSummary:
        r, s, stop = self.r, self.s, self.stop
        try:
            while not finished(r, self.it, time.perf_counter() - self.t0) and not stop.requested:
                self.iteration(report)
            if stop.requested:
                stop.finishing = True
                if self.it > self.start_iter and (self.ckpt is None or not self.ckpt.name.endswith(f"{self.it:06d}")):
                    self.checkpoint(self.it)
                self.sync(force=True)
                raise self.interrupted(stop.signum, abandoned=False)
        except _Abandon as exc:
            raise self.interrupted(exc.signum, abandoned=True) from None
        if self.it % r.eval_every != 0 or not self.scores:
            self.evaluate(self.it)
        if self.ckpt is None or not self.ckpt.name.endswith(f"{self.it:06d}"):
            self.checkpoint(self.it)
        best = self.best
        summary = RunSummary(
            s.run_dir, self.it, time.perf_counter() - self.t0, self.ckpt, self.scores, self.baseline, self.env_steps,
            {k: round(v, 2) for k, v in self.times.items()}, best_checkpoint=best.path, best_iteration=best.iteration,
            best_scores=best.scores, storage=str(self.mirror.target) if self.mirror is not None else None,
        )
        (s.run_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_dict(), indent=1, default=str))
        self.sync(force=True)
        return summary
