"""Discriminator speed: scoring latency (in-process vs through the Ray actor) and training updates/s.

Paper-sized critic (SPEC §5, 4096-wide feature), 64x64 images, one update = 64 real + 64 fake
crops with the gradient penalty. Writes the ``## Discriminator`` section of docs/benchmarks.md.

    python benchmarks/discriminator.py [--device cpu|cuda] [--updates 5] [--calls 30]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _report import machine_line, markdown_table, median_seconds, write_section  # noqa: E402
from exposure_env.datasets.pack import ImagePack  # noqa: E402
from rewards.critic_trainer import LocalDiscriminator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--updates", type=int, default=5, help="timed training updates")
    ap.add_argument("--calls", type=int, default=30, help="timed score calls")
    ap.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = ap.parse_args()
    dev = torch.device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if dev.type == "cpu":
        torch.set_num_threads(1)  # what the actor uses on CPU
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    rng = np.random.default_rng(0)
    pack = ImagePack(rng.uniform(0.2, 0.9, (64, 80, 80, 3)).astype(np.float32))
    x = rng.random((64, 64, 64, 3), dtype=np.float32)
    local = LocalDiscriminator(pack, device=dev)
    local.add_fake(x)
    t_update = median_seconds(local.update, repeats=args.updates, warmup=1, sync=sync)

    import ray

    from rewards.actor import get_or_create_discriminator

    with tempfile.TemporaryDirectory() as tmp:
        pack_path = pack.save(Path(tmp) / "targets.npz")
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                 object_store_memory=1 << 30)
        try:
            h = get_or_create_discriminator("bench_discriminator", str(pack_path),
                                            num_gpus=1 if dev.type == "cuda" else 0)
            calls = {
                "local": lambda: local.score(x),
                "remote": lambda: ray.get(h.score.remote(x)),
                "remote_add": lambda: ray.get(h.score_and_add.remote(x)),
            }
            # Interleaved, so that all three see the same load on a shared machine.
            times = {k: [] for k in calls}
            for i in range(args.calls + 3):
                for k, fn in calls.items():
                    t = median_seconds(fn, repeats=1, warmup=0, sync=sync)
                    if i >= 3:
                        times[k].append(t)
            t_local, t_remote, t_remote_add = (statistics.median(times[k]) for k in calls)
            t_train = median_seconds(lambda: ray.get(h.train.remote(11, 20_000)), repeats=2, warmup=1)
        finally:
            ray.shutdown()

    rows = [
        ["score 64 images, in-process (`LocalDiscriminator.score`)", f"{t_local * 1e3:.1f} ms"],
        ["score 64 images, `ray.get(actor.score.remote(x))`", f"{t_remote * 1e3:.1f} ms"],
        ["score + add to pool, `ray.get(actor.score_and_add.remote(x))`", f"{t_remote_add * 1e3:.1f} ms"],
        ["one update (64 real + 64 fake, GP), in-process", f"{t_update * 1e3:.0f} ms = {1 / t_update:.2f} updates/s"],
        ["`actor.train` call (5 updates), remote", f"{t_train * 1e3:.0f} ms = {5 / t_train:.2f} updates/s"],
    ]
    n_params = sum(p.numel() for p in local.model.parameters())
    body = (
        "Written by `benchmarks/discriminator.py`. Paper-sized critic (4096-wide feature, "
        f"{n_params / 1e6:.2f} M parameters), 64x64 images, device `{dev}`"
        + (", one torch thread (as in the CPU actor)" if dev.type == "cpu" else "")
        + f"; medians (score calls interleaved). {machine_line()}; load average {load:.1f} at the start of the run.\n\n"
        + markdown_table(["operation", "time"], rows)
    )
    print(body)
    if not args.no_write:
        print("wrote", write_section("Discriminator", body))


if __name__ == "__main__":
    main()
