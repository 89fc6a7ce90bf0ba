"""Training on a multi-node Ray: env steps/s with 1, 2 and 4 env runners, the serial share of an
iteration, and from those a *modelled* speedup for N nodes.

The cluster is local (:func:`tune_configs.ray_session.local_cluster`: a head with no CPU, where the
driver and its learner run, and worker nodes as separate raylets on this machine); the demo
recipe (PPO with the critic's reward) joins it by address exactly as ``exposure train --address``
does (:func:`tune_configs.wiring.prepare_run`, :func:`~tune_configs.wiring.start_critic`, env
runners and the critic placed by Ray resources). For each runner count: build, one warm-up
iteration, then ``--iters`` timed iterations (:func:`tune_configs.run_loop.train_iteration`:
``algo.train()`` plus the wait for the critic's training), each split into

* **sampling**: time inside RLlib's ``synchronous_parallel_sample`` (env runners stepping the
  envs and scoring through the critic actor): the part more nodes divide;
* **serial**: the rest, itself split into the learner update (``learner_group.update``), the
  wait for the critic's training after ``algo.train()`` (what the update did not hide) and the
  driver's remainder (weight sync, metrics, the loop).

Model (Amdahl): with ``T_p`` serial and ``T_s`` sampling seconds of the 1-runner iteration, N
nodes that each sample as fast as that runner take ``T_p + T_s / N``: speedup
``(T_p + T_s) / (T_p + T_s / N)``. It leaves out what a real cluster adds (network transfers of
episodes and weights) and that the one critic actor scores for every runner. Writes the
``## Scaling`` section of ``docs/benchmarks.md`` with ``--write``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")

#: Nodes of the modelled speedup.
MODEL_NODES = (1, 2, 4, 8, 16, 32)
_SAMPLING: list[float] = []
_LEARNING: list[float] = []


def _timed(fn, into: list[float]):
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - t0)

    return timed


def _time_sampling() -> None:
    """Time every ``synchronous_parallel_sample`` call of PPO's training step into :data:`_SAMPLING`."""
    from ray.rllib.algorithms.ppo import ppo

    ppo.synchronous_parallel_sample = _timed(ppo.synchronous_parallel_sample, _SAMPLING)


def recipe_for(runners: int, batch: int, envs: int):
    from tune_configs.overrides import apply_overrides
    from tune_configs.recipes import get_recipe

    r = get_recipe("demo-ppo").replace(num_env_runners=runners, num_envs_per_env_runner=envs, stop_iters=10 ** 6,
                                       stop_time=None)
    return apply_overrides(r, [f"train_batch_size_per_learner={batch}", f"minibatch_size={max(batch // 4, 8)}"])


def measure(address: str, runners: int, *, iters: int, batch: int, envs: int, out: Path) -> dict:
    """One runner count on the joined cluster: medians of ``iters`` timed iterations."""
    from rewards.actor import kill_discriminator
    from tune_configs.data import DataSpec
    from tune_configs.run_loop import train_iteration
    from tune_configs.settings import TrainSettings
    from tune_configs.wiring import prepare_run, start_critic, where_actors_run

    s = TrainSettings(DataSpec.demo(), recipe_for(runners, batch, envs), name=f"scale-{runners}", results_dir=out,
                      progress=False, address=address, data_dir=out / "data")
    run = prepare_run(s)
    disc = start_critic(s, run)
    algo = run.algorithm_config.build_algo()
    algo.learner_group.update = _timed(algo.learner_group.update, _LEARNING)
    try:
        nodes = len(set(where_actors_run(algo, disc)["env_runners"]))
        train_iteration(algo, disc, 0, 1000)  # warm-up
        rows = []
        for i in range(iters):
            _SAMPLING.clear()
            _LEARNING.clear()
            t0 = time.perf_counter()
            result, _, _, critic_wait = train_iteration(algo, disc, i + 1, 1000)
            total = time.perf_counter() - t0
            steps = float(result.get("env_runners", {}).get("num_env_steps_sampled", 0) or 0)
            rows.append((total, sum(_SAMPLING), steps, sum(_LEARNING), critic_wait))
    finally:
        algo.stop()
        kill_discriminator(run.discriminator_name)
    total = statistics.median(r[0] for r in rows)
    sample = statistics.median(r[1] for r in rows)
    steps = statistics.median(r[2] for r in rows)
    learn = statistics.median(r[3] for r in rows)
    critic = statistics.median(r[4] for r in rows)
    return {"runners": runners, "nodes": nodes, "iteration_s": total, "sampling_s": sample, "serial_s": total - sample,
            "serial_share": (total - sample) / total, "learner_s": learn, "critic_wait_s": critic,
            "driver_s": max(total - sample - learn - critic, 0.0), "env_steps": steps, "env_steps_per_s": steps / total}


def modelled_speedup(serial_s: float, sampling_s: float, nodes: int) -> float:
    """Amdahl: ``(T_p + T_s) / (T_p + T_s / N)`` (module docstring)."""
    return (serial_s + sampling_s) / (serial_s + sampling_s / nodes)


def report(results: list[dict], args) -> str:
    from _report import markdown_table

    rows = [[f"{r['runners']} (on {r['nodes']} node{'s' if r['nodes'] != 1 else ''})", f"{r['iteration_s']:.2f}",
             f"{r['sampling_s']:.2f}", f"{r['serial_s']:.2f} ({100 * r['serial_share']:.0f}%)",
             f"{r['learner_s']:.2f} / {r['critic_wait_s']:.2f} / {r['driver_s']:.2f}", f"{r['env_steps']:.0f}",
             f"{r['env_steps_per_s']:.0f}"] for r in results]
    measured = markdown_table(["env runners", "s / iteration", "sampling s", "serial s (share)",
                               "serial: learner update / critic wait / driver s", "env steps / iteration", "env steps / s"],
                              rows)
    base = results[0]
    model = markdown_table(
        ["nodes (N)", "modelled speedup", "modelled env steps / s"],
        [[n, f"{modelled_speedup(base['serial_s'], base['sampling_s'], n):.2f}",
          f"{base['env_steps_per_s'] * modelled_speedup(base['serial_s'], base['sampling_s'], n):.0f}"] for n in MODEL_NODES])
    limit = 1.0 / base["serial_share"]
    return (
        f"Measured on a local multi-node Ray (a head with no CPU for the driver and learner, {args.workers} worker nodes "
        f"of {args.worker_cpus} logical CPUs as separate raylets, all on this machine's cores), demo recipe (PPO, critic "
        f"reward), {args.batch} env steps per iteration, {args.envs} envs per runner, median of {args.iters} iterations "
        f"after one warm-up:\n\n{measured}\n\n"
        f"All nodes share this machine's cores, so more runners here compete for the same CPUs: the rows show the "
        f"serial share, not a speedup. **Model, not a measurement** (Amdahl, from the 1-runner row: "
        f"{base['serial_s']:.2f} s serial, {base['sampling_s']:.2f} s sampling per iteration; N nodes each sampling as "
        f"fast as that runner; no network costs, one critic actor's scoring not counted as a limit):\n\n{model}\n\n"
        f"The serial share ({100 * base['serial_share']:.0f}%: learner update, weight sync, critic training, driver) "
        f"bounds the speedup at {limit:.1f}x however many nodes sample; beyond that, larger train batches (more env "
        f"steps per learner update) or a GPU learner are what help.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", default="1,2,4", help="env runner counts, comma-separated")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512, help="env steps per iteration (train_batch_size_per_learner)")
    parser.add_argument("--envs", type=int, default=8, help="envs per env runner")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes")
    parser.add_argument("--worker-cpus", type=int, default=3, help="logical CPUs per worker node")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    counts = [int(c) for c in args.runners.split(",")]

    import ray
    import torch

    from tune_configs.ray_session import connect_ray, local_cluster, quiet_rllib

    load = os.getloadavg()[0]
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="xs", dir="/tmp")  # short: Ray's socket paths
    cluster = local_cluster(head={"num_cpus": 0}, workers=[{"num_cpus": args.worker_cpus}] * args.workers,
                            temp_dir=tmp)
    results = []
    try:
        connect_ray(cluster.address)  # joined before any RLlib config is built (as `exposure train --address`)
        quiet_rllib()
        logging.getLogger("ray.rllib").setLevel(logging.ERROR)
        _time_sampling()
        for n in counts:
            results.append(measure(cluster.address, n, iters=args.iters, batch=args.batch, envs=args.envs,
                                   out=Path(tmp) / "runs"))
            print(results[-1], flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    text = report(results, args)
    print(text)
    if args.write:
        from _report import machine_line, write_section

        write_section("Scaling", f"`python benchmarks/scaling.py --write`.\n\n{machine_line()}; load average "
                                 f"{load:.1f} when it started (the machine is shared).\n\n{text}")


if __name__ == "__main__":
    main()
