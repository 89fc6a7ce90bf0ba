"""Training throughput of the demo recipe: seconds per iteration, env steps/s, reward overhead.

Variants (each: build, 1 warm-up iteration, then ``--iters`` timed iterations):

* ``runners=1`` / ``runners=2``: the demo recipe (PPO, discriminator reward inside the vector
  env: one actor call per vector step that scores the batch and feeds the fake pool), plus
  one ``train(iteration, total)`` call of the discriminator actor per iteration, started when
  the learner update starts (``policies.ppo_learner.CriticTrigger``); "critic train" is the
  wait for it after ``algo.train()`` returns;
* ``statistics``: the same with the local, untrained ``StatisticsScorer`` instead of the
  actor -- the difference to ``runners=1`` is the cost of scoring through the actor.

The reward-scoring overhead is reported as ``(t_disc_env - t_stats) / t_disc_iteration``
and the discriminator's own training as its share of the iteration.
Writes the ``## Training throughput`` section of ``docs/benchmarks.md`` with ``--write``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from exposure_env.system import usable_cpus

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")


def measure(recipe, data, *, runners: int, scorer: str, iters: int, envs: int | None = None) -> dict:
    import ray

    from rewards.actor import get_or_create_discriminator
    from policies.ppo_learner import CRITIC_TRIGGER
    from rewards.discriminator import DiscriminatorConfig
    from tune_configs.settings import TrainSettings
    from tune_configs.wiring import build_algorithm_config, env_config_for

    r = recipe.replace(num_env_runners=runners, env={**recipe.env, "scorer": scorer})
    if envs:
        r = r.replace(num_envs_per_env_runner=envs)
    name = f"bench_disc_{runners}_{scorer}_{time.time_ns()}"
    disc = get_or_create_discriminator(name, str(data.targets), DiscriminatorConfig.from_any(r.discriminator))
    s = TrainSettings(data=None, recipe=r, seed=0)  # type: ignore[arg-type]
    algo = build_algorithm_config(s, env_config_for(r, data, name)).build_algo()
    try:
        def one(i):
            CRITIC_TRIGGER.arm(disc, i + 10, 1000)  # as the run loop: critic trains during the learner update
            t0 = time.perf_counter()
            res = algo.train()
            t1 = time.perf_counter()
            ref = CRITIC_TRIGGER.take()
            ray.get(ref if ref is not None else disc.train.remote(i + 10, 1000))
            t2 = time.perf_counter()
            return t1 - t0, t2 - t1, res["env_runners"].get("num_env_steps_sampled", 0)

        one(0)
        rows = [one(i + 1) for i in range(iters)]
    finally:
        algo.stop()
        ray.kill(disc, no_restart=True)
    train = statistics.median(r_[0] for r_ in rows)
    dtrain = statistics.median(r_[1] for r_ in rows)
    steps = statistics.median(r_[2] for r_ in rows)
    return {"runners": runners, "scorer": scorer, "envs": r.num_envs_per_env_runner, "train_s": train,
            "disc_train_s": dtrain, "iteration_s": train + dtrain, "env_steps": steps,
            "env_steps_per_s": steps / (train + dtrain)}


def scoring_options(data, recipe, repeats: int = 5) -> dict:
    """Actor round trips per iteration: in the env (one ``score_and_add`` per vector step of
    ``E`` envs, ``T / E`` calls) vs a learner connector (one call on every observation of the
    train batch: ``T`` steps plus one final observation per episode of 5 steps)."""
    import numpy as np
    import ray

    from rewards.actor import get_or_create_discriminator
    from rewards.discriminator import DiscriminatorConfig

    from _report import median_seconds

    disc = get_or_create_discriminator(f"bench_scoring_{time.time_ns()}", str(data.targets),
                                       DiscriminatorConfig.from_any(recipe.discriminator))
    try:
        steps = int(recipe.training["train_batch_size_per_learner"])
        envs = recipe.num_envs_per_env_runner
        rng = np.random.default_rng(0)
        small = rng.random((envs, 64, 64, 3), dtype=np.float32)
        big = rng.random((steps + steps // 5, 64, 64, 3), dtype=np.float32)
        calls = -(-steps // envs)
        env_s = median_seconds(lambda: [ray.get(disc.score_and_add.remote(small)) for _ in range(calls)], repeats)
        conn_s = median_seconds(lambda: ray.get(disc.score_and_add.remote(big)), repeats)
    finally:
        ray.kill(disc, no_restart=True)
    return {"steps": steps, "envs": envs, "calls": calls, "env_s": env_s, "connector_s": conn_s, "images": len(big)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    import ray
    import torch

    from tune_configs.data import DataSpec, prepare_data

    torch.set_num_threads(1)  # the learner shares the machine with the env runners
    from tune_configs.recipes import get_recipe

    recipe = get_recipe("demo-ppo")
    data = prepare_data(DataSpec.demo(), tempfile.mkdtemp(prefix="exposure-bench-"))
    ray.init(num_cpus=max(2, usable_cpus()), include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False, object_store_memory=1 << 30)
    logging.getLogger("ray.rllib").setLevel(logging.ERROR)
    opts = scoring_options(data, recipe)
    results = [
        measure(recipe, data, runners=1, scorer="discriminator", iters=args.iters),
        measure(recipe, data, runners=2, scorer="discriminator", iters=args.iters),
        measure(recipe, data, runners=1, scorer="statistics", iters=args.iters),
    ]
    ray.shutdown()
    base, stats = results[0], results[2]
    overhead = (base["train_s"] - stats["train_s"]) / base["iteration_s"]
    d_share = base["disc_train_s"] / base["iteration_s"]
    lines = ["| env runners x envs | reward | s / iteration (sample+learn / critic train) | env steps / iteration | env steps / s |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['runners']} x {r['envs']} | {r['scorer']} | {r['iteration_s']:.2f} ({r['train_s']:.2f} / "
                     f"{r['disc_train_s']:.2f}) | {r['env_steps']:.0f} | {r['env_steps_per_s']:.0f} |")
    scoring_share = opts["env_s"] / base["iteration_s"]
    text = "\n".join(lines) + (
        f"\n\nReward scoring through the discriminator actor (one `score_and_add` call per vector step of "
        f"{opts['envs']} envs: {opts['calls']} calls = {opts['env_s']:.3f} s per iteration of {opts['steps']} env steps): "
        f"**{100 * scoring_share:.1f}%** of the iteration time. Iteration time vs the local statistics scorer: "
        f"+{100 * overhead:.1f}% (this also counts the critic's training competing for the same cores); waiting for the "
        f"critic's training after the learner update: {100 * d_share:.1f}%.\n\n"
        f"A learner connector scoring the whole train batch in one call ({opts['images']} images: every observation "
        f"incl. episode ends) takes {opts['connector_s']:.3f} s: "
        f"{abs(opts['env_s'] - opts['connector_s']) / base['iteration_s'] * 100:.1f}% of an iteration apart. The env-side "
        f"reward is kept: it feeds the critic's fake pool in the same call and the episode returns RLlib reports include it.\n"
    )
    print(text)
    if args.write:
        from _report import machine_line, write_section

        write_section("Training throughput", f"`python benchmarks/training.py --write` (demo recipe, PPO).\n\n{machine_line()}\n\n{text}")


if __name__ == "__main__":
    main()
