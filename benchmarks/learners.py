"""Learners on the demo data: PPO, APPO and the paper's actor-critic (``exposure``), same budget.

Each algorithm trains with its demo recipe (``demo-ppo`` for PPO and APPO -- for APPO without
PPO's minibatch and epoch settings -- and the default ``demo`` for ``exposure``: same data,
critic and stopping rule) through the
project's run loop (:func:`tune_configs.run_loop.run_training`) for the same wall-clock budget,
one run after the other on the same machine. Quality is the run loop's validation: the
deterministic policy retouches the 128 held-out paired demo crops (5 steps); histogram
intersection with the target set (SPEC §8) and PSNR against the paired expert versions.

The time axis is *training* time: the sum of the iterations' train and discriminator times
(``progress.csv``), i.e. the budget without the validation passes, which cost the same per
evaluation but happen more often for algorithms with short iterations. "Final" quality is the
mean of the last ``--smooth`` evaluations; "time to PPO's final" is the first evaluation at
which the running mean of ``--smooth`` evaluations reaches PPO's final histogram intersection.

Writes ``docs/learners.png`` and the ``## Learners`` section of ``docs/benchmarks.md`` with
``--write``; run folders go to ``--results-dir`` (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._report import REPO, machine_line, markdown_table, write_section
from tune_configs.run_layout import HI_CURVE_FILE, SUMMARY_FILE, TENSORBOARD_DIR

ALGOS = ("ppo", "appo", "exposure")
RECIPE = {"ppo": "demo-ppo", "appo": "demo-ppo", "exposure": "demo"}
#: Validation every N iterations: about every 10-15 s of training for each algorithm here.
EVAL_EVERY = {"ppo": 3, "appo": 4, "exposure": 12}
PLOT = REPO / "docs" / "learners.png"
def run(algo: str, budget_s: float, results_dir: Path, seed: int, overrides: list[str]) -> Path:
    """Train ``algo`` for ``budget_s`` seconds; returns its run folder."""
    from tune_configs.data import DataSpec
    from tune_configs.overrides import apply_overrides
    from tune_configs.recipes import get_recipe
    from tune_configs.run_loop import run_training
    from tune_configs.settings import TrainSettings

    recipe = get_recipe(RECIPE[algo]).replace(
        algo=algo, stop_time=float(budget_s), stop_iters=None, eval_every=EVAL_EVERY[algo], checkpoint_freq=10**6
    )
    recipe = apply_overrides(recipe, [o.split(":", 1)[1] for o in overrides if o.startswith(f"{algo}:")])
    settings = TrainSettings(
        data=DataSpec.demo(seed), recipe=recipe, name=f"learners-{algo}", results_dir=results_dir,
        seed=seed, progress=False, tensorboard=True, data_dir=results_dir / "data",
    )
    load = os.getloadavg()[0]
    run_training(settings)
    (settings.run_dir / "bench_meta.json").write_text(json.dumps({"load_at_start": load, "budget_s": budget_s}))
    return settings.run_dir


def load_line(results: Path, algos) -> str:
    """Load average at the start of each run (from ``bench_meta.json``)."""
    parts = []
    for algo in algos:
        meta = results / f"learners-{algo}" / "bench_meta.json"
        value = json.loads(meta.read_text()).get("load_at_start") if meta.exists() else None
        parts.append(f"{algo} {value:.1f}" if value is not None else f"{algo} not recorded")
    return "load average at the start of each run: " + ", ".join(parts) + " (2 cores shared with other jobs)"


def read_curve(run_dir: Path) -> dict[str, np.ndarray]:
    """Evaluations of a run: iteration, training seconds, wall seconds, HI, PSNR."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open(run_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    train_s = np.cumsum([float(r["train_s"]) + float(r["discriminator_s"]) for r in rows])
    it_to_train = {int(r["iteration"]): t for r, t in zip(rows, train_s)}
    with open(run_dir / HI_CURVE_FILE) as f:
        curve = list(csv.DictReader(f))
    acc = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    psnr = {e.step: e.value for e in acc.Scalars("eval/psnr")} if "eval/psnr" in acc.Tags()["scalars"] else {}
    its = np.array([int(c["iteration"]) for c in curve])
    return {
        "iteration": its,
        "train_s": np.array([it_to_train.get(i, np.nan) for i in its]),
        "wall_s": np.array([float(c["wall_s"]) for c in curve]),
        "hi": np.array([float(c["hi"]) for c in curve]),
        "hi_inputs": np.array([float(c["hi_inputs"]) for c in curve]),
        "psnr": np.array([psnr.get(int(i), np.nan) for i in its]),
        "env_steps": np.array([int(c["env_steps"]) for c in curve]),
    }


def running_mean(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for i in range(k - 1, len(x)):
        out[i] = float(np.mean(x[i - k + 1 : i + 1]))
    return out


def first_reach(curve: dict, target: float, k: int) -> float | None:
    """Training seconds at the first evaluation whose k-running mean HI is >= ``target``."""
    rm = running_mean(curve["hi"], k)
    hits = np.flatnonzero(rm >= target - 1e-9)
    return float(curve["train_s"][hits[0]]) if len(hits) else None


def plot(curves: dict[str, dict], baseline: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for algo, c in curves.items():
        axes[0].plot(c["train_s"], c["hi"], marker=".", label=algo)
        axes[1].plot(c["train_s"], c["psnr"], marker=".", label=algo)
    axes[0].axhline(baseline["hi"], color="grey", ls=":", label="inputs")
    if np.isfinite(baseline.get("psnr", np.nan)):
        axes[1].axhline(baseline["psnr"], color="grey", ls=":", label="inputs")
    axes[0].set(xlabel="training time (s)", ylabel="histogram intersection (%)", title="Validation HI (higher is better)")
    axes[1].set(xlabel="training time (s)", ylabel="PSNR (dB)", title="Validation PSNR vs paired expert")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(curves: dict[str, dict], summaries: dict[str, dict], budget_s: float, k: int, load: str, extra: str) -> str:
    ppo_final = float(np.mean(curves["ppo"]["hi"][-k:])) if "ppo" in curves else np.nan
    ppo_time = first_reach(curves["ppo"], ppo_final, k) if "ppo" in curves else None
    rows = []
    for algo, c in curves.items():
        s = summaries[algo]
        final_hi = float(np.mean(c["hi"][-k:]))
        final_psnr = float(np.nanmean(c["psnr"][-k:]))
        reach = first_reach(c, ppo_final, k)
        ratio = "-" if reach is None or not ppo_time else f"{reach / ppo_time:.2f}"
        rows.append([
            algo, s["iterations"], s["env_steps"], f"{c['train_s'][-1]:.0f}", f"{final_hi:.1f}", f"{np.max(c['hi']):.1f}",
            f"{final_psnr:.2f}", "not reached" if reach is None else f"{reach:.0f}", ratio,
        ])
    base = summaries[next(iter(summaries))]["baseline_scores"]
    table = markdown_table(
        ["algorithm", "iterations", "env steps", "training s", f"final HI % (mean of last {k})", "best HI %",
         f"final PSNR dB (last {k})", "s to PPO's final HI", "vs PPO"],
        rows,
    )
    verdict = ""
    if "exposure" in curves and ppo_time:
        reach = first_reach(curves["exposure"], ppo_final, k)
        met = reach is not None and reach <= 0.5 * ppo_time
        verdict = (
            f"\n\nTarget (``exposure`` reaches PPO's final HI in at most half of PPO's time): "
            f"**{'met' if met else 'not met'}** in this run -- PPO's final HI {ppo_final:.1f}% (first reached, "
            f"as a {k}-evaluation running mean, after {ppo_time:.0f} s); exposure "
            + ("never reached it." if reach is None else f"after {reach:.0f} s.")
        )
    return (
        f"Written by `benchmarks/learners.py`. {machine_line()}; {load}. Each algorithm trained for "
        f"{budget_s:.0f} s of wall-clock time (validation included; the table's time axis excludes it), "
        f"one after the other, on the bundled demo set with its demo recipe ({', '.join(f'{a}: `{RECIPE[a]}`' for a in curves)})"
        f"{extra}. Besides the algorithm, `demo` differs from `demo-ppo` in its policy network (the `stats` "
        f"preset), its update (the episode update) and its rates (see `tune_configs/recipes.py`). "
        f"Validation: 128 held-out paired crops, deterministic policy, 5 steps; inputs score "
        f"HI {base['hi']:.1f}% / PSNR {base.get('psnr', float('nan')):.2f} dB. Short runs on a shared CPU are "
        f"noisy (the GAN reward moves with its critic; one seed per algorithm): read trends, not decimals. "
        f"\n\n"
        f"![learners](learners.png)\n\n{table}{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="wall-clock seconds per algorithm")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--smooth", type=int, default=3, help="evaluations averaged for 'final' and 'reached'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--override", action="append", default=[], help="ALGO:KEY=VALUE recipe override (repeatable)")
    parser.add_argument("--reuse", action="store_true", help="only re-read existing run folders in --results-dir")
    parser.add_argument("--write", action="store_true", help="write docs/learners.png and docs/benchmarks.md")
    args = parser.parse_args()
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    results = args.results_dir or Path(tempfile.mkdtemp(prefix="exposure-learners-"))
    for algo in args.algos:
        if not args.reuse:
            t0 = time.perf_counter()
            run(algo, args.budget, results, args.seed, args.override)
            print(f"{algo}: {time.perf_counter() - t0:.0f} s", flush=True)
    curves, summaries = {}, {}
    for algo in args.algos:
        d = results / f"learners-{algo}"
        curves[algo] = read_curve(d)
        summaries[algo] = json.loads((d / SUMMARY_FILE).read_text())
    baseline = dict(summaries[args.algos[0]]["baseline_scores"])
    load = load_line(results, args.algos)
    extra = "" if not args.override else "; overrides " + ", ".join(f"`{o}`" for o in args.override)
    body = report(curves, summaries, args.budget, args.smooth, load, extra)
    print(body)
    if args.write:
        plot(curves, baseline, PLOT, f"demo set, {args.budget:.0f} s per algorithm; {machine_line()}")
        write_section("Learners", body)
        print(f"wrote {PLOT} and docs/benchmarks.md")


if __name__ == "__main__":
    main()
