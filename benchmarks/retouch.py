"""Retouching speed on 12 MP 16-bit TIFFs: the edit list, the thumbnail, encoding, one photo end
to end and a whole folder, each next to the memory-bandwidth floor measured in the same run.

    python benchmarks/retouch.py [--policy policy.exposure] [--repeats 5] [--folder-photos 100] [--no-write]

Rows (medians over ``--repeats`` runs after one warm-up; the 1-minute load average is written
beside every figure, because the machine may be shared, and so is the CPU time the process
used, all threads together: on a busy machine wall time mostly measures the other programs,
CPU time what the work costs):

* the floor: ``np.copyto`` of the 12 MP float32 photo (one read + one write, 144 MB each way);
* the 5-step edit list decided on the thumbnail: fused numba pass (float32 out, into a fresh or
  a reused buffer, and straight to 16-bit samples), the NumPy tiled path, torch-CPU, CuPy on GPU
  when present; the ratio to the floor;
* the 64x64 thumbnail (numba kernel vs the NumPy reference);
* encoding: 16-bit TIFF and JPEG q95 from the quantised samples;
* the fused pass straight into a new memory-mapped 16-bit TIFF (:func:`exposure_env.io.mapped_tiff`:
  applying and writing in one pass);
* end to end per photo through :func:`tune_configs.batch.stages.process_job` (read 16-bit TIFF,
  thumbnail + 5 policy steps, fused apply into the mapped output TIFF, sidecar) and its parts;
* a folder of ``--folder-photos`` 12 MP 16-bit TIFFs (written to a temporary folder and deleted
  afterwards) through ``retouch_paths`` (the pipelined batch): photos/s and the peak memory
  above the start, in photos' worth (one photo = the 144 MB float32 image).

Without ``--policy`` a paper-sized :class:`ExposureRLModule` (random init, output biases set so
that every edit is a real change) is exported first. Prints a markdown table and replaces the
``## Retouch`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, write_section  # noqa: E402
from exposure_env import io as image_io  # noqa: E402
from exposure_env.backend import cupy_or_none  # noqa: E402
from exposure_env.system import usable_cpus

H, W = 3000, 4000  # 12 MP
PHOTO_BYTES = H * W * 3 * 4  # one photo's worth: the float32 working image


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


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def rss_bytes() -> int:
    """Resident memory of this process (Linux ``/proc/self/statm``), bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Samples RSS every 5 ms in a thread: ``peak - start`` bytes over a ``with`` block."""

    def __enter__(self):
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def above_start(self) -> int:
        return self.peak - self.start


def timed(fn, repeats: int = 5, warmup: int = 1) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (this process, all threads) of ``fn()``."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


class Table:
    """Rows of (operation, backend, median wall, x floor, CPU, target, load)."""

    def __init__(self, floor: float):
        self.floor, self.rows = floor, []

    def add(self, op: str, backend: str, times, target: str = "", ratio: bool = False):
        wall, cpu = times if isinstance(times, tuple) else (times, None)
        ratio_text = f"{wall / self.floor:.1f}x" if ratio else ""
        self.rows.append([op, backend, fmt(wall), ratio_text, "" if cpu is None else fmt(cpu), target, load()])


def folder_rate(policy_path: Path, image: np.ndarray, tmp: Path, count: int) -> tuple[float, float, float, float]:
    """``count`` 12 MP 16-bit TIFFs through the pipelined batch: (photos/s, peak above start in
    photos' worth, seconds, CPU seconds per photo). Inputs differ by exposure so decisions differ."""
    from policies.retoucher import Retoucher
    from tune_configs.batch.retouch import retouch_paths

    src, out = tmp / "folder_in", tmp / "folder_out"
    src.mkdir()
    for i in range(count):
        gain = np.float32(0.6 + 0.8 * i / max(1, count - 1))
        image_io.write_image(src / f"photo_{i:03d}.tif", np.minimum(image * gain, 1.0), bits=16, space="linear")
    retoucher = Retoucher(policy_path, backend="numpy")
    retoucher.decide(image)  # load and warm up outside the timed run
    try:
        cpu = time.process_time()
        with PeakMemory() as mem:
            summary = retouch_paths(retoucher, [src], out, format="tiff16", progress=False)
        cpu = time.process_time() - cpu
        if summary.done != count:
            raise RuntimeError(f"folder run: {summary.text()}")
        return count / summary.seconds, mem.above_start / PHOTO_BYTES, summary.seconds, cpu / count
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def run(policy_path: Path | None, repeats: int, write: bool, folder_photos: int) -> str:
    import json

    import torch

    from exposure_env import fused_cpu, resample
    from exposure_env.edits import Edit, apply_edits
    from policies.policy_file import load_policy
    from policies.retoucher import Retoucher
    from tune_configs.batch.jobs import Job
    from tune_configs.batch.options import Options
    from tune_configs.batch.stages import process_job, renders_into_file

    load_start = load()
    tmp = Path(tempfile.mkdtemp(prefix="exposure-bench-"))
    try:
        photo_path = tmp / "photo.tif"
        image_io.write_image(photo_path, synthetic_photo(), bits=16, space="linear")
        if policy_path is None:
            policy_path = benchmark_policy(tmp)
            policy_note = "Paper-sized policy, random init (output biases spread so every edit changes the photo)"
        else:
            policy_note = f"Policy `{policy_path.name}`"
        image = image_io.read_image(photo_path)
        retoucher = Retoucher(policy_path, backend="numpy")
        edits = retoucher.decide(image).edits[0]
        edit_text = "; ".join(e.describe() for e in edits)
        engine = fused_cpu.engine()

        # --- the floor and the edit list ------------------------------------------------
        buf = np.empty_like(image)
        floor = timed(lambda: np.copyto(buf, image), max(repeats, 7))
        t = Table(floor[0])
        t.add("np.copyto of the photo (bandwidth floor: 1 read + 1 write)", "numpy, CPU", floor, ratio=True)
        if engine == "numba-fused":
            t.add("apply 5 steps: fused pass into a reused buffer", "numba, CPU", timed(lambda: fused_cpu.apply_fused(image, edits, out=buf), repeats), "<= 4x floor", True)
            t.add("apply 5 steps: fused pass, fresh output (apply_edits)", "numba, CPU", timed(lambda: apply_edits(image, edits), repeats), "", True)
            t.add("apply 5 steps: fused pass straight to 16-bit samples", "numba, CPU", timed(lambda: fused_cpu.apply_fused(image, edits, out_dtype=np.uint16), repeats), "", True)
            files = iter(range(10**6))

            def into_file():
                with image_io.mapped_tiff(tmp / "mapped" / f"m{next(files)}.tif", image.shape, bits=16) as out:
                    fused_cpu.apply_fused(image, edits, out=out)

            t.add("apply 5 steps: fused pass into a new mapped 16-bit TIFF (mapped_tiff; = write it)", "numba, CPU", timed(into_file, repeats), "", True)
            shutil.rmtree(tmp / "mapped", ignore_errors=True)
        if engine == "numba-fused":
            plain = [Edit.parse("E:+0.5"), Edit.parse("W:1.1,1.0,0.9"), Edit("S+", (0.5,)), Edit("T", tuple(np.linspace(0.6, 1.9, 8))), Edit("BW", (0.2,))]
            t.add("apply E, W, S+, T, BW (no exp/pow/cos per pixel): fused, reused buffer", "numba, CPU", timed(lambda: fused_cpu.apply_fused(image, plain, out=buf), repeats), "", True)
        t.add("apply 5 steps: NumPy tiled (reference / fallback)", "numpy, CPU", timed(lambda: apply_edits(image, edits, fused=False), repeats), "", True)
        timg = torch.from_numpy(image)
        t.add("apply 5 steps: torch tiled", f"torch, CPU ({torch.get_num_threads()} threads)", timed(lambda: apply_edits(timg, edits), repeats), "", True)
        cp = cupy_or_none()
        if cp is not None:
            gpu_img = cp.asarray(image)
            sync = cp.cuda.Stream.null.synchronize
            t.add("apply 5 steps, photo resident on GPU", "cupy, GPU", timed(lambda: (apply_edits(gpu_img, edits), sync()), max(repeats, 20), warmup=3))

        # --- thumbnail, encoding ------------------------------------------------------------
        t.add("64x64 thumbnail (resample.thumbnail)", engine, timed(lambda: resample.thumbnail(image, 64), max(repeats, 7)), "<= 30 ms")
        views = len(resample.view_squares(H, W))
        t.add(f"64x64 decision views, {views} squares (resample.decision_views)", engine,
              timed(lambda: resample.decision_views(image, 64), max(repeats, 7)), "<= 30 ms")
        box = resample.centre_square(H, W)
        t.add("64x64 thumbnail, NumPy reference", "numpy, CPU", timed(lambda: resample.resize_area(image, 64, 64, box), repeats))
        s16 = fused_cpu.quantize(image, 16)
        s8 = fused_cpu.quantize(image, 8)
        t.add("encode 16-bit TIFF from samples (write_image)", "tifffile", timed(lambda: image_io.write_image(tmp / "e.tif", s16, bits=16), repeats))
        t.add("encode JPEG q95 4:4:4 from samples (write_image)", "libjpeg-turbo", timed(lambda: image_io.write_image(tmp / "e.jpg", s8), repeats))
        t.add("float photo -> 16-bit TIFF (quantise + encode)", "tifffile", timed(lambda: image_io.write_image(tmp / "f.tif", image, bits=16), repeats))

        # --- one photo end to end, and its parts ------------------------------------------
        opts = Options(format="tiff16", backend="numpy", policy_file=str(policy_path))
        direct = renders_into_file(retoucher, opts)
        parts: dict[str, list[float]] = {k: [] for k in ("read_s", "decide_s", "apply_s", "write_s")}
        totals, cpus = [], []
        for i in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            result = process_job(retoucher, Job(str(photo_path), str(tmp / "out" / f"r{i}"), f"r{i}"), opts)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            if result.status != "done":
                raise RuntimeError(result.reason)
            if i:
                totals.append(elapsed)
                cpus.append(cpu)
                timings = json.loads(Path(result.outputs[-1]).read_text())["timings"]
                for k in parts:
                    parts[k].append(timings[k])
        t.add("end to end per photo: read + decide + apply + write 16-bit TIFF (+ sidecar)", engine, (statistics.median(totals), statistics.median(cpus)), "<= 300 ms")
        names = {
            "read_s": "read 16-bit TIFF",
            "decide_s": "thumbnail + decide 5 steps",
            "apply_s": "apply edit list into the mapped 16-bit TIFF" if direct else "apply edit list -> 16-bit samples",
            "write_s": "close and rename the TIFF" if direct else "write 16-bit TIFF",
        }
        for k, label in names.items():
            t.add(f"· {label}", engine, statistics.median(parts[k]))
        t.add("load `.exposure` file (load_policy)", "torch, CPU", timed(lambda: load_policy(policy_path), repeats=3))
        shutil.rmtree(tmp / "out", ignore_errors=True)

        # --- a folder, pipelined ------------------------------------------------------------
        folder_note = ""
        if folder_photos > 0:
            rate, peak, seconds, cpu_per_photo = folder_rate(policy_path, image, tmp, folder_photos)
            cores = usable_cpus()
            t.rows.append([f"folder of {folder_photos} photos, pipelined (`exposure retouch`)", engine, f"{rate:.2f} photos/s", "", f"{fmt(cpu_per_photo)} / photo", ">= 3 photos/s", load()])
            t.rows.append(["· peak memory above the start, in photos' worth (144 MB each)", "", f"{peak:.2f}", "", "", "<= 4", load()])
            folder_note = (
                f" The folder run took {seconds:.1f} s and {cpu_per_photo:.2f} CPU-s per photo: {cores} idle cores would "
                f"give about {cores / cpu_per_photo:.1f} photos/s."
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = markdown_table(["operation (12 MP = 4000 x 3000)", "backend", "median (wall)", "x floor", "CPU (all threads)", "target", "load"], t.rows)
    body = (
        f"Written by `benchmarks/retouch.py`. {machine_line()}; CPU edit lists: `{engine}`; policy inference on 1 "
        f"torch thread; load average {load_start} at the start of the run (`load` column: the 1-minute average when "
        f"each row finished; the machine is shared, so ratios within the run matter more than absolute times). "
        f"{policy_note}; medians of {repeats} runs after a warm-up. Edit list decided on the thumbnail: {edit_text}."
        f"{folder_note}\n\n{table}\n"
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
    ap.add_argument("--folder-photos", type=int, default=100, help="12 MP photos in the folder run (0: skip it; ~72 MB each on disk, twice)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    run(args.policy, args.repeats, not args.no_write, args.folder_photos)


if __name__ == "__main__":
    main()
