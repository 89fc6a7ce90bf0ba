"""Run the real editors on a photo and a sidecar (verification: tests and ``benchmarks/sidecars.py``).

Both programs run headless and never touch the user's own configuration: darktable gets
``--core --configdir <scratch> --library :memory:``, RawTherapee ``RT_SETTINGS`` / ``RT_CACHE``
pointing into the scratch folder. Output: a 16-bit sRGB TIFF read back as float64 in [0, 1].
Lightroom cannot be run here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PROGRAMS = {"darktable": "darktable-cli", "rawtherapee": "rawtherapee-cli"}
TIMEOUT_S = 300


class EditorError(RuntimeError):
    """The editor failed or produced no output; the message names the program and the photo."""


def program(editor: str) -> str | None:
    """Path of the editor's command-line program, or None when it is not installed."""
    return shutil.which(PROGRAMS[editor]) if editor in PROGRAMS else None


def command(editor: str, photo, sidecar, out, scratch) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that render ``photo`` with ``sidecar`` into ``out`` (TIFF)."""
    exe = program(editor)
    if exe is None:
        raise EditorError(f"{PROGRAMS.get(editor, editor)} is not installed")
    env = dict(os.environ)
    if editor == "darktable":
        cmd = [exe, str(photo), str(sidecar), str(out), "--core", "--configdir", str(Path(scratch) / "darktable"),
               "--library", ":memory:", "--conf", "plugins/imageio/format/tiff/bpp=16"]
    else:
        env.update(RT_SETTINGS=str(Path(scratch) / "rt-settings"), RT_CACHE=str(Path(scratch) / "rt-cache"))
        # -a: also PNG/JPEG (not in RawTherapee's default parsed extensions); -c must come last
        cmd = [exe, "-o", str(out), "-t", "-b16", "-p", str(sidecar), "-Y", "-a", "-c", str(photo)]
    return cmd, env


def render(editor: str, photo, sidecar, *, scratch=None) -> np.ndarray:
    """Render ``photo`` with ``sidecar`` in ``editor`` -> ``(H, W, 3)`` float64 sRGB values in [0, 1]."""
    import tifffile

    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        out = Path(tmp) / "render.tif"
        cmd, env = command(editor, photo, sidecar, out, tmp)
        try:
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise EditorError(f"{cmd[0]}: no result for {photo} within {TIMEOUT_S} s") from None
        if run.returncode != 0 or not out.exists():
            tail = " | ".join((run.stderr or run.stdout or "").strip().splitlines()[-3:])
            raise EditorError(f"{cmd[0]} failed on {photo} (exit {run.returncode}): {tail}")
        data = tifffile.imread(out)
    if data.ndim != 3 or data.shape[-1] < 3:
        raise EditorError(f"{cmd[0]}: unexpected output shape {data.shape} for {photo}")
    scale = float(np.iinfo(data.dtype).max) if data.dtype.kind == "u" else 1.0
    return data[..., :3].astype(np.float64) / scale
