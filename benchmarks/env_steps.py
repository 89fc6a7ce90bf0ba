"""Environment steps per second: ``ExposureEnv`` and ``ExposureVectorEnv`` at 64x64 on the demo set.

    python benchmarks/env_steps.py [--repeats 5] [--steps 300]

Uniform random actions over the eight filters, autoreset steps included, median block rate
(see :func:`exposure_env.vector_env.benchmark_env`). Scorer time is excluded from the main
rows (the issue's target: >= 10,000 vector-env steps/s per CPU core at N = 64, i.e. <= 6.4 ms
per vector step) and reported separately for the training-free ``StatisticsScorer``.
``benchmarks/filters.py`` embeds :func:`env_benchmark_rows` in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exposure_env.episode_batch import default_source  # noqa: E402
from exposure_env.scorers import StatisticsScorer  # noqa: E402
from exposure_env.vector_env import benchmark_env  # noqa: E402

HEADER = ["environment (64x64, demo set, one process)", "env steps/s (wall)", "env steps/s per CPU core", "ms CPU per (vector) step"]
CASES = (("ExposureEnv (single env)", 1, False), ("ExposureVectorEnv, N = 8", 8, True), ("ExposureVectorEnv, N = 64", 64, True))


def env_benchmark_rows(repeats: int = 5, steps: int = 300, include_scorer: bool = False) -> list[list[str]]:
    """``[HEADER, row, ...]``: wall-clock and CPU-time rates for the single env and N = 8, 64.

    The CPU-time rate (this process's CPU seconds) is the per-core figure; the wall-clock one
    also counts time lost to other processes on a shared machine.
    """
    source, targets = default_source()
    scorer = StatisticsScorer(targets)  # fitted once, shared by every case
    rows = [HEADER]
    for label, n, vector in CASES:
        kw = {"vector": vector, "include_scorer": include_scorer, "blocks": repeats, "source": source, "scorer": scorer}
        wall = benchmark_env(n, steps, clock="wall", **kw)
        cpu = benchmark_env(n, steps, clock="cpu", **kw)
        rows.append([label, f"{wall:,.0f}", f"{cpu:,.0f}", f"{n / cpu * 1e3:.2f}"])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed blocks (median reported)")
    ap.add_argument("--steps", type=int, default=300, help="vector steps in all blocks together")
    args = ap.parse_args(argv)
    from benchmarks._report import machine_line, markdown_table

    print(f"Machine: {machine_line()}")
    for title, include in (("scorer excluded", False), ("StatisticsScorer included", True)):
        rows = env_benchmark_rows(args.repeats, args.steps, include)
        print(f"\n### Environment steps/s ({title})\n")
        print(markdown_table(rows[0], rows[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
