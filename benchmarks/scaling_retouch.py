"""Batch retouching on Ray Data vs the local pipeline: photos/s over one folder, outputs compared.

    python benchmarks/scaling_retouch.py [--photos 200] [--megapixels 12] [--policy policy.exposure] [--tmp DIR] [--no-write]

A folder of ``--photos`` synthetic 16-bit TIFFs of ``--megapixels`` (4:3; each a different
exposure of :func:`benchmarks.retouch.synthetic_photo`, so decisions differ) is retouched to
16-bit TIFFs twice with the same policy:

* **local**: ``retouch_paths`` (the pipelined executor, every core);
* **Ray Data**: ``retouch_paths(use_ray=True)`` on a private local Ray with every usable core
  (:mod:`tune_configs.batch.ray_data`: read on this node, thumbnail tasks, a policy actor
  pool, render + encode tasks, bytes back to the driver). Ray's start-up is timed apart; the
  run's time includes starting its workers and actors.

Per run: photos/s, wall seconds, the peak memory of the whole process tree (driver, Ray's
servers and workers: summed PSS, so the object store's shared pages count once) and the
1-minute load average. The Ray outputs are compared with the local ones (every photo file's
bytes, every record without its timings). Without ``--policy`` a paper-sized random-init policy
is exported (:func:`benchmarks.retouch.benchmark_policy`). Replaces the ``## Retouch on Ray
Data`` section of ``docs/benchmarks.md``. Disk: two folders of ``photos x 6 bytes x pixels``
at once (inputs, one output), in ``--tmp``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, write_section  # noqa: E402
from benchmarks.retouch import benchmark_policy, load, synthetic_photo  # noqa: E402
from exposure_env import io as image_io  # noqa: E402
from exposure_env.system import usable_cpus  # noqa: E402

SECTION = "Retouch on Ray Data"


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_pss_bytes(root: int) -> int:
    """Summed PSS (Linux ``smaps_rollup``) of ``root`` and all its descendants, bytes."""
    kids, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) * 1024 for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total


class PeakTree:
    """Peak :func:`tree_pss_bytes` of this process over a ``with`` block (sampled every 0.5 s)."""

    def __enter__(self):
        self.peak, self._stop = tree_pss_bytes(os.getpid()), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, tree_pss_bytes(os.getpid()))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def outputs_digest(folder: Path) -> dict[str, object]:
    """Photo files by hash, records without their (run-dependent) timings."""
    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            if p.suffix == ".json":
                record = json.loads(p.read_text())
                record.pop("timings", None)
                out[p.name] = record
            else:
                out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def make_folder(folder: Path, count: int, megapixels: float) -> tuple[int, int]:
    """``count`` 16-bit linear TIFFs of about ``megapixels`` (4:3); returns (height, width)."""
    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    base = synthetic_photo(h, w)
    folder.mkdir(parents=True)
    for i in range(count):
        gain = np.float32(0.6 + 0.8 * i / max(1, count - 1))
        image_io.write_image(folder / f"photo_{i:03d}.tif", np.minimum(base * gain, 1.0), bits=16, space="linear")
    return h, w


def run(photos: int, megapixels: float, policy_path: Path | None, tmp_root: str | None, write: bool) -> str:
    import ray

    from policies.retoucher import Retoucher
    from tune_configs.batch.ray_data import RayDataOptions, connect
    from tune_configs.batch.retouch import retouch_paths

    load_start = load()
    tmp = Path(tempfile.mkdtemp(prefix="exposure-ray-bench-", dir=tmp_root))
    rows = []
    try:
        src = tmp / "in"
        t0 = time.perf_counter()
        h, w = make_folder(src, photos, megapixels)
        print(f"{photos} photos of {w} x {h} written in {time.perf_counter() - t0:.0f} s", flush=True)
        if policy_path is None:
            policy_path, policy_note = benchmark_policy(tmp), "a paper-sized random-init policy"
        else:
            policy_note = f"the policy `{policy_path.name}`"
        retoucher = Retoucher(policy_path, backend="numpy")
        retoucher.decide(image_io.read_image(next(src.iterdir())))  # load and warm up outside the runs

        with PeakTree() as mem:
            local = retouch_paths(retoucher, [src], tmp / "local", format="tiff16", progress=False)
        rows.append(["local pipeline (`exposure retouch`)", local.done, f"{local.done / local.seconds:.2f}",
                     f"{local.seconds:.0f}", f"{mem.peak / 2**30:.2f}", "(reference)", load()])
        print(rows[-1], flush=True)
        reference = outputs_digest(tmp / "local")
        shutil.rmtree(tmp / "local")

        options = RayDataOptions(cpus=usable_cpus())
        t0 = time.perf_counter()
        connect(options)
        ray_start = time.perf_counter() - t0
        try:
            with PeakTree() as mem:
                remote = retouch_paths(retoucher, [src], tmp / "ray", format="tiff16", progress=False,
                                       use_ray=True, ray_options=options)
        finally:
            ray.shutdown()
        same = outputs_digest(tmp / "ray") == reference
        rows.append([f"Ray Data, private local Ray ({options.cpus} CPUs; start-up {ray_start:.1f} s apart)", remote.done,
                     f"{remote.done / remote.seconds:.2f}", f"{remote.seconds:.0f}", f"{mem.peak / 2**30:.2f}",
                     "yes" if same else "NO", load()])
        print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    size = f"{w} x {h} ({h * w / 1e6:.1f} MP)"
    table = markdown_table(["run", "photos done", "photos/s", "wall s", "peak memory, process tree (GiB PSS)",
                            "outputs identical to local", "load"], rows)
    body = (
        f"Written by `benchmarks/scaling_retouch.py`. {machine_line()}; load average {load_start} at the start "
        f"(`load` column: the 1-minute average when each run finished; the machine is shared). A folder of {photos} "
        f"synthetic 16-bit TIFFs of {size} each, retouched to 16-bit TIFFs + JSON records by {policy_note}, once locally and once on Ray Data on this one machine (the same cores: "
        f"this measures Ray Data's overhead, not a cluster's speed-up; on a cluster the render tasks spread over every "
        f"node's cores while this node reads and writes). Peak memory: summed PSS of the driver and every Ray process. "
        f"Outputs identical: every photo file byte for byte and every record apart from its timings.\n\n{table}\n"
    )
    print(body)
    if write:
        print(f"wrote the {SECTION} section of {write_section(SECTION, body)}")
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--megapixels", type=float, default=12.0, help="photo size (4:3)")
    ap.add_argument("--policy", type=Path, default=None, help="an exported .exposure policy (default: a random-init one)")
    ap.add_argument("--tmp", default=None, help="folder for the photos (default: the system temp folder)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    if args.photos < 1 or args.megapixels <= 0:
        ap.error("--photos must be at least 1 and --megapixels positive")
    run(args.photos, args.megapixels, args.policy, args.tmp, not args.no_write)


if __name__ == "__main__":
    main()
