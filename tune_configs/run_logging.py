"""What a training run logs, and where: TensorBoard tags, ``progress.csv``, ``hi_curve.csv``
and the one-line progress print.

:func:`iteration_tags` and :func:`evaluation_tags` turn RLlib's result dict, the discriminator's
metrics and a validation into flat TensorBoard tags (``episode/*``, ``perf/*``, ``learner/*``,
``discriminator/*``, ``eval/*``, ``eval_train/*``); :class:`RunLogger` writes them.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from .run_layout import HI_CURVE_FILE, PROGRESS_FILE, TENSORBOARD_DIR

#: Per-episode env metrics (besides ``filter_used/*``) logged as ``episode/<key>``.
EPISODE_KEYS = ("score_gain", "final_score", "penalty_overexposure", "reused_filters")
#: Learner metrics logged as ``learner/<key>``.
LEARNER_KEYS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var",
                "gradients_default_optimizer_global_norm", "default_optimizer_learning_rate")
#: Discriminator ``train`` metrics logged as ``discriminator/<key>``.
DISCRIMINATOR_KEYS = ("wasserstein", "gp", "grad_norm", "loss", "d_real", "d_fake", "lr", "updates", "pool_size")
#: Columns of ``hi_curve.csv`` (validation HI, % vs wall-clock seconds).
CURVE_COLUMNS = ("wall_s", "iteration", "env_steps", "hi", "hi_luminance", "hi_contrast", "hi_saturation",
                 "hi_inputs", "hi_train")


def nested(d: dict, *keys, default=None):
    """``d[k0][k1]...``, or ``default`` where a level is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def scalar(v) -> float | None:
    """``v`` as a finite float, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def iteration_tags(result: dict, disc_metrics: dict, train_s: float, disc_s: float, env_steps: int) -> dict[str, Any]:
    """The TensorBoard tags of one training iteration: RLlib's ``result``, the discriminator's
    ``train`` metrics and the seconds spent in ``algo.train()`` / waiting for the critic."""
    er = result.get("env_runners", {})
    learner = nested(result, "learners", "default_policy", default={}) or {}
    tags = {
        "episode/return_mean": er.get("episode_return_mean"),
        "episode/len_mean": er.get("episode_len_mean"),
        "perf/iteration_s": train_s + disc_s,
        "perf/train_s": train_s,
        "perf/discriminator_s": disc_s,
        "perf/env_steps": env_steps,
        "perf/env_steps_per_s": scalar(er.get("num_env_steps_sampled")) and er["num_env_steps_sampled"] / max(train_s, 1e-9),
    }
    tags.update({f"episode/{k}": v for k, v in er.items() if isinstance(k, str) and (k.startswith("filter_used/") or k in EPISODE_KEYS)})
    tags.update({f"learner/{k}": learner[k] for k in LEARNER_KEYS if k in learner})
    tags.update({f"discriminator/{k}": disc_metrics[k] for k in DISCRIMINATOR_KEYS if k in disc_metrics})
    return tags


def evaluation_tags(res: dict, baseline: dict, train_scores: dict | None = None, train_baseline: dict | None = None) -> dict[str, Any]:
    """The tags of one validation (:meth:`tune_configs.validation.Validator.evaluate` result
    ``res``, the untouched inputs' ``baseline``); with ``train_scores`` also the same on training
    crops (``eval_train/*``)."""
    tags = {f"eval/{k}": v for k, v in res["scores"].items()}
    tags.update({f"eval/{k}_inputs": v for k, v in baseline.items()})
    if train_scores is not None:
        tags.update({f"eval_train/{k}": v for k, v in train_scores.items()})
        tags.update({f"eval_train/{k}_inputs": v for k, v in (train_baseline or {}).items()})
    for t, freq in res["filter_freq"].items():
        tags.update({f"eval/filter_freq/step{t + 1}/{f}": v for f, v in freq.items()})
    tags.update({f"eval/param_mean/{f}": v for f, v in res["param_mean"].items()})
    return tags


def drop_rows_after(path: Path, iteration: int) -> None:
    """Rewrite the CSV log ``path`` (atomically) without its rows of iterations after ``iteration``."""
    from exposure_env.atomic import atomic_write

    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "iteration" not in rows[0]:
        return
    col = rows[0].index("iteration")
    keep = [rows[0]] + [row for row in rows[1:] if len(row) > col and row[col].isdigit() and int(row[col]) <= iteration]
    if len(keep) == len(rows):
        return
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)


class RunLogger:
    """TensorBoard (``tb/``), ``progress.csv``, ``hi_curve.csv`` and the progress line.

    ``resumed_at``: the iteration a resumed run continues from; the rows and TensorBoard points
    an earlier attempt logged after it (before it was killed) are dropped, so each iteration
    appears once."""

    def __init__(self, run_dir: Path, tensorboard: bool, progress: bool, resumed_at: int | None = None):
        self.run_dir = run_dir
        self.writer = None
        self.curve_path = run_dir / HI_CURVE_FILE
        self.progress_path = run_dir / PROGRESS_FILE
        if resumed_at is not None:
            for path in (self.progress_path, self.curve_path):
                drop_rows_after(path, resumed_at)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resumed_at is None else resumed_at + 1
            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=purge)
        self.console = None
        if progress:
            from rich.console import Console

            self.console = Console(highlight=False)

    def say(self, text: str) -> None:
        """Print ``text`` (rich markup) when progress lines are on."""
        if self.console is not None:
            self.console.print(text)

    def scalars(self, tags: dict[str, Any], step: int) -> None:
        """Every tag whose value is a finite number, at ``step``."""
        if self.writer is None:
            return
        for tag, v in tags.items():
            f = scalar(v)
            if f is not None:
                self.writer.add_scalar(tag, f, step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, img, step, dataformats="HWC")

    def curve(self, elapsed: float, iteration: int, env_steps: int, scores: dict, baseline: dict) -> None:
        """One ``hi_curve.csv`` row (HI in %)."""
        new = not self.curve_path.exists()
        with open(self.curve_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(CURVE_COLUMNS)
            w.writerow([
                f"{elapsed:.1f}", iteration, env_steps, f"{scores['hi']:.3f}", f"{scores['hi_luminance']:.3f}",
                f"{scores['hi_contrast']:.3f}", f"{scores['hi_saturation']:.3f}", f"{baseline['hi']:.3f}",
                f"{scores['hi_train']:.3f}" if "hi_train" in scores else "",
            ])

    def row(self, row: dict) -> None:
        """One ``progress.csv`` row (the header from the first row's keys)."""
        new = not self.progress_path.exists()
        with open(self.progress_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def line(self, it: int, elapsed: float, ret, wdist, hi, extra: str = "") -> None:
        """``iter N  h:mm:ss  return  W-dist  HI`` on the console."""
        if self.console is None:
            return
        m, s = divmod(int(elapsed), 60)
        h, m = divmod(m, 60)
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        self.console.print(
            f"[bold]iter {it:4d}[/bold]  {h:d}:{m:02d}:{s:02d}  return [cyan]{fmt(scalar(ret), '+.4f')}[/cyan]"
            f"  W-dist {fmt(scalar(wdist), '+.3f')}  HI [green]{fmt(scalar(hi), '.1f')}[/green]{extra}"
        )

    def flush(self) -> None:
        """Write TensorBoard's buffered events to disk (before the files are copied)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
