"""Retouching speed on a 12 MP 16-bit TIFF: end to end, and the edit application alone.

    python benchmarks/retouch.py [--policy policy.exposure] [--repeats 5] [--no-write]

Rows (medians over ``--repeats`` runs after one warm-up):

* end to end through the batch driver's per-photo path (:func:`policies.retoucher.process_job`):
  read the 16-bit linear TIFF, decide 5 edits on the 64x64 thumbnail, apply them once at full
  size, write a 16-bit TIFF plus the JSON sidecar; and its parts (read, thumbnail + decide,
  apply, write);
* the edit application alone (:meth:`Retoucher.apply` = ``exposure_env.edits.apply_edits``):
  NumPy and torch on CPU (tiled, all usable cores), CuPy on GPU when present (kernel only with
  the photo resident on the GPU, and with host<->device copies);
* loading the ``.exposure`` file (:func:`policies.export.load_policy`).

Without ``--policy`` a paper-sized :class:`ExposureRLModule` (random init, output biases set
so that every edit is a real change) is exported first; the apply cost depends on which
filters are chosen, so the edit list is printed. Targets: edit application <= 0.5 s on CPU
and <= 5 ms on GPU for 12 MP. Prints a markdown table and replaces the ``## Retouch`` section
of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, median_seconds, write_section  # noqa: E402
from exposure_env import io as image_io  # noqa: E402
from exposure_env.backend import cupy_or_none  # noqa: E402

H, W = 3000, 4000  # 12 MP


def synthetic_photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """A linear 'RAW-like' photo: smooth colour gradients, soft blobs and sensor noise in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 0.05 + 0.25 * x * (1 - y)
    img[..., 1] = 0.06 + 0.20 * y
    img[..., 2] = 0.04 + 0.15 * (1 - x)
    for _ in range(6):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(0.05, 0.4, 3).astype(np.float32)
    img += rng.normal(0.0, 0.004, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def benchmark_policy(folder: Path) -> Path:
    """Export a paper-sized random-init policy whose edits are all visible changes."""
    import gymnasium as gym
    import torch

    from exposure_env import filters
    from exposure_env.state import state_dim
    from policies.export import export_policy
    from policies.rl_module import ExposureRLModule

    flist = filters.DEFAULT_FILTERS
    obs = gym.spaces.Dict(
        image=gym.spaces.Box(-np.inf, np.inf, (64, 64, 3), np.float32),
        state=gym.spaces.Box(-np.inf, np.inf, (state_dim(len(flist)),), np.float32),
    )
    act = gym.spaces.Dict(
        filter=gym.spaces.Discrete(len(flist)), params=gym.spaces.Box(-1, 1, (filters.max_params(flist),), np.float32)
    )
    torch.manual_seed(0)
    module = ExposureRLModule(observation_space=obs, action_space=act, inference_only=False, model_config={})
    with torch.no_grad():
        module.pi.param_heads.bias.uniform_(-0.6, 0.6)
    return export_policy(module, folder / "benchmark.exposure", metadata={"data": "random init (benchmark)"})


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def run(policy_path: Path | None, repeats: int, write: bool) -> str:
    import torch

    from policies.export import load_policy
    from policies.retoucher import Job, Options, Retoucher, process_job

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tmp = Path(tempfile.mkdtemp(prefix="exposure-bench-"))
    photo_path = tmp / "photo.tif"
    image_io.write_image(photo_path, synthetic_photo(), bits=16, space="linear")
    if policy_path is None:
        policy_path = benchmark_policy(tmp)
        policy_note = "Paper-sized policy, random init (output biases spread so every edit changes the photo)"
    else:
        policy_note = f"Policy `{policy_path.name}`"

    load_s = median_seconds(lambda: load_policy(policy_path), repeats=3, warmup=1)
    rows: list[list[str]] = []
    image = image_io.read_image(photo_path)
    retoucher = Retoucher(policy_path, backend="numpy")
    edits = retoucher.decide(image).edits[0]
    edit_text = "; ".join(e.describe() for e in edits)

    # --- end to end (the batch driver's per-photo function) and its parts -------------
    opts = Options(format="tiff16", backend="numpy", policy_file=str(policy_path))
    parts: dict[str, list[float]] = {k: [] for k in ("read_s", "decide_s", "apply_s", "write_s")}
    totals = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        result = process_job(retoucher, Job(str(photo_path), str(tmp / "out" / f"r{i}"), f"r{i}"), opts)
        elapsed = time.perf_counter() - t0
        if result.status != "done":
            raise RuntimeError(result.reason)
        if i == 0:
            continue  # warm-up
        totals.append(elapsed)
        timings = json.loads(Path(result.outputs[-1]).read_text())["timings"]
        for k in parts:
            parts[k].append(timings[k])
    rows.append(["end to end: read + decide + apply + write 16-bit TIFF (+ sidecar)", "numpy, CPU", fmt(statistics.median(totals))])
    names = {"read_s": "read 16-bit TIFF", "decide_s": "thumbnail + decide 5 steps", "apply_s": "apply edit list", "write_s": "write 16-bit TIFF"}
    thumb = image_io.thumbnail(image, retoucher.policy.thumb_size)
    for k, label in names.items():
        rows.append([f"· {label}", "numpy, CPU", fmt(statistics.median(parts[k]))])
        if k == "decide_s":
            t_thumb = median_seconds(lambda: image_io.thumbnail(image, 64), repeats)
            t_policy = median_seconds(lambda: retoucher.decide(thumb), repeats)
            rows.append(["· · of which the 64x64 thumbnail (io.thumbnail)", "numpy, CPU", fmt(t_thumb)])
            rows.append(["· · of which 5 policy steps on the thumbnail (1 torch thread)", "torch, CPU", fmt(t_policy)])

    # --- edit application alone ---------------------------------------------------------
    rows.append(["edit application (apply_edits)", "numpy, CPU", fmt(median_seconds(lambda: retoucher.apply(image, edits), repeats))])
    rt = Retoucher(retoucher.policy, backend="torch")
    rows.append(["edit application (apply_edits)", "torch, CPU", fmt(median_seconds(lambda: rt.apply(image, edits), repeats))])
    cp = cupy_or_none()
    if cp is not None:
        from exposure_env.edits import apply_edits

        gpu_img = cp.asarray(image)
        sync = cp.cuda.Stream.null.synchronize
        kernel = median_seconds(lambda: apply_edits(gpu_img, edits), max(repeats, 20), warmup=3, sync=sync)
        rows.append(["edit application, photo resident on GPU", "cupy, GPU", fmt(kernel)])
        rg = Retoucher(retoucher.policy, backend="cupy")
        rows.append(["edit application incl. host<->device copies", "cupy, GPU", fmt(median_seconds(lambda: rg.apply(image, edits), repeats, sync=sync))])
        rows.append(["end to end with GPU apply", "cupy, GPU", fmt(median_seconds(
            lambda: process_job(rg, Job(str(photo_path), str(tmp / "out" / "gpu"), "gpu"), Options(format="tiff16", backend="cupy")),
            max(2, repeats // 2)))])
    rows.append(["load `.exposure` file (load_policy)", "torch, CPU", fmt(load_s)])

    table = markdown_table(["operation (12 MP = 4000 x 3000, float32 linear RGB)", "backend", "median"], rows)
    body = (
        f"Written by `benchmarks/retouch.py`. {machine_line()}; torch CPU apply on {torch.get_num_threads()} threads, "
        "policy inference on 1; "
        f"load average {load_avg:.1f} at the start of the run. {policy_note}; median of {repeats} runs after a warm-up. "
        f"Edit list decided on the thumbnail: {edit_text}.\n\n"
        f"{table}\n\n"
        "Targets: edit application <= 0.5 s on CPU and <= 5 ms on GPU for 12 MP."
        + ("" if cp is not None else " No GPU on this machine: CuPy rows are missing.")
    )
    print(body)
    if write:
        path = write_section("Retouch", body)
        print(f"\nwrote the Retouch section of {path}")
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", type=Path, default=None, help="an exported .exposure policy (default: a random-init one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    run(args.policy, args.repeats, not args.no_write)


if __name__ == "__main__":
    main()
