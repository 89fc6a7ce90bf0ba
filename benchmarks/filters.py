"""Filter throughput on a 12 MP photo, the 5-step edit list, and environment steps/s.

    python benchmarks/filters.py [--repeats 5] [--no-write]

Prints markdown tables and replaces the ``## Filters`` section of ``docs/benchmarks.md``.
Rows: every filter alone and a 5-step edit list, for NumPy and torch-CPU (CuPy when a GPU
is present), each as the plain path (``Filter.apply`` on the whole photo, one full-size
temporary per operation) and the production path (``apply_edits``: row tiles through a
thread pool on CPU, one fused kernel on GPU). The memory-bandwidth floor is one read and
one write of the photo at the speed of a large ``copyto``. Targets: 5-step list on 12 MP in
<= 0.5 s on 2 cores; >= 10,000 vector-env steps/s per core at 64x64 (scorer excluded).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, median_seconds, write_section  # noqa: E402
from exposure_env import filters as F  # noqa: E402
from exposure_env.backend import cupy_or_none  # noqa: E402
from exposure_env.edits import Edit, apply_edits  # noqa: E402
from exposure_env.system import usable_cpus

H, W = 3000, 4000  # 12 MP
MP = H * W / 1e6

FIVE_STEP = [
    Edit("E", (0.8,)),
    Edit("G", (0.45,)),
    Edit("W", (1.1, 1.0, 0.85)),
    Edit("S+", (0.5,)),
    Edit("T", tuple(np.linspace(0.7, 1.6, 8))),
]


def example_edit(f) -> Edit:
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.6, 0.6, (1, f.num_params)).astype(np.float32)
    if f.short_name in ("S+", "BW"):
        a = np.abs(a)
    return Edit(f.short_name, tuple(np.asarray(f.params_from_action(a))[0]))


def bandwidth_floor(img: np.ndarray, repeats: int) -> float:
    """Seconds for one read + one write of ``img`` (a large copy), the floor of any filter."""
    out = np.empty_like(img)
    return median_seconds(lambda: np.copyto(out, img), repeats)


def cpu_rows(img: np.ndarray, repeats: int) -> list[list[str]]:
    import torch

    timg = torch.from_numpy(img)
    rows = []
    cases = [(f.short_name, [example_edit(f)]) for f in F.DEFAULT_FILTERS] + [("5-step E,G,W,S+,T", FIVE_STEP)]
    for label, edits in cases:
        t_np_plain = median_seconds(lambda: apply_edits(img, edits, tiled=False), max(2, repeats // 2))
        t_np = median_seconds(lambda: apply_edits(img, edits), repeats)
        t_th_plain = median_seconds(lambda: apply_edits(timg, edits, tiled=False), max(2, repeats // 2))
        t_th = median_seconds(lambda: apply_edits(timg, edits), repeats)
        rows.append(
            [label]
            + [f"{MP / t:.0f} MP/s ({t * 1e3:.0f} ms)" for t in (t_np_plain, t_np, t_th_plain, t_th)]
        )
    return rows


def gpu_rows(img: np.ndarray, repeats: int) -> list[list[str]] | None:
    cp = cupy_or_none()
    if cp is None:
        return None
    gimg = cp.asarray(img)
    sync = cp.cuda.Stream.null.synchronize
    rows = []
    cases = [(f.short_name, [example_edit(f)]) for f in F.DEFAULT_FILTERS] + [("5-step E,G,W,S+,T", FIVE_STEP)]
    for label, edits in cases:
        t = median_seconds(lambda: apply_edits(gimg, edits), repeats * 4, warmup=2, sync=sync)
        rows.append([label, f"{MP / t:.0f} MP/s ({t * 1e3:.2f} ms)"])
    return rows


def env_rows(repeats: int) -> list[list[str]] | None:
    try:
        from benchmarks.env_steps import env_benchmark_rows
    except ImportError:
        return None
    return env_benchmark_rows(repeats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    img = rng.uniform(0.0, 1.0, (H, W, 3)).astype(np.float32)
    floor = bandwidth_floor(img, args.repeats)
    threads = usable_cpus()

    parts = [
        f"Machine: {machine_line()}. Photo: {W}x{H} ({MP:.0f} MP) float32 linear RGB; medians of "
        f"{args.repeats} runs in one process. Produced by `python benchmarks/filters.py`.",
        f"Memory-bandwidth floor (one read + one write of the photo, `np.copyto`): "
        f"{floor * 1e3:.0f} ms = {MP / floor:.0f} MP/s.",
        "### CPU: every filter alone and the 5-step edit list",
        "`plain` = `Filter.apply` on the whole photo (one full-size temporary per operation); "
        f"`tiled` = `apply_edits` (128 K-pixel row tiles over {threads} threads, the retoucher's path).",
        markdown_table(["edit", "NumPy plain", "NumPy tiled", "torch plain", "torch tiled"], cpu_rows(img, args.repeats)),
    ]
    g = gpu_rows(img, args.repeats)
    parts.append("### GPU (CuPy fused kernels)")
    parts.append(markdown_table(["edit", "CuPy fused"], g) if g else "No CUDA GPU with CuPy in this run: not measured.")
    e = env_rows(args.repeats)
    if e:
        parts.append("### Environment steps/s at 64x64 (scorer excluded)")
        parts.append(markdown_table(e[0], e[1:]))
    body = "\n\n".join(parts)
    print(body)
    if not args.no_write:
        write_section("Filters", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
