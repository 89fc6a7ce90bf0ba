"""What a batch run writes per photo: output format, samples, strips and editor sidecars."""

from __future__ import annotations

from dataclasses import dataclass

from exposure_env import io as image_io
from exposure_env.sidecars import SUFFIXES

#: ``--format`` name -> (suffix, io format, bits).
OUTPUT_FORMATS = {"tiff16": (".tif", "tiff", 16), "png": (".png", "png", 8), "jpeg": (".jpg", "jpeg", 8)}


@dataclass
class Options:
    """The settings every photo of a run shares (see :func:`tune_configs.batch.retouch.retouch_paths`)."""

    format: str = "tiff16"
    quality: int = 95
    input_space: str = "auto"
    strip: bool = False
    samples: int | None = None
    seed: int | None = None
    backend: str = "auto"
    max_pixels: int = image_io.DEFAULT_MAX_PIXELS
    apply_workers: int | None = None
    policy_file: str = ""
    compression: str | None = None
    sidecars: tuple[str, ...] = ()  # editors (exposure_env.sidecars.EDITORS) to write sidecars for

    def output_paths(self, base: str) -> list[tuple[str, ...]]:
        """``(photo, sidecar, strip or "", *editor sidecars)`` per sample for an output stem."""
        suffix = OUTPUT_FORMATS[self.format][0]
        tags = [""] if self.samples is None else [f"_s{k + 1}" for k in range(self.samples)]
        return [
            (f"{base}{t}{suffix}", f"{base}{t}.json", f"{base}{t}_steps.png" if self.strip else "",
             *(f"{base}{t}{SUFFIXES[e]}" for e in self.sidecars))
            for t in tags
        ]
